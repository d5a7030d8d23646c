"""The project's error types.

Every error a user can cause surfaces as one of these, and ``str(error)`` is a one-line reason fit
to print as is. Commands catch ``ImgpipeError`` at the top and never show a traceback for it.
"""

from __future__ import annotations


class ImgpipeError(Exception):
    """Base of every error the project raises on purpose; the message is one line for a user."""

    #: True when repeating the same operation later may succeed (network, throttling).
    transient: bool = False


class ConfigError(ImgpipeError):
    """Invalid configuration: names the key and what is allowed. Commands exit 2 on it."""


class ProtocolError(ImgpipeError):
    """A message that is not a valid imgpipe request or result."""


class BackendError(ImgpipeError):
    """A store or queue operation failed."""


class NotFound(BackendError):
    """The object, queue or bucket does not exist."""


class AccessDenied(BackendError):
    """The credentials in use are not allowed to do this."""


class Throttled(BackendError):
    """The service asked us to slow down; retry with backoff."""

    transient = True


class Unreachable(BackendError):
    """The service could not be reached or did not answer in time."""

    transient = True


class ChecksumMismatch(BackendError):
    """Bytes read or written do not hash to the SHA-256 they were promised."""


class InvalidKey(BackendError):
    """An object key or queue name outside the allowed alphabet (never built from user input)."""
