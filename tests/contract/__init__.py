"""The contract suite: one set of tests that every backend adapter must pass."""
