"""imgpipe's shared core: the wire protocol, configuration, and the storage and queue ports.

Both commands stand on this package; it must never import textual, ``tui`` or ``server``
(a contract checked by import-linter and by tests/test_boundaries.py).
"""

__version__ = "0.1.0"
