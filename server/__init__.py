"""imgserver: the headless worker (queue → ImageMagick → store) and its operations.

Never imports textual or ``tui`` (checked by import-linter and tests/test_boundaries.py).
"""
