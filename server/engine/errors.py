"""The engine's two error types: the binary is missing, or one conversion failed."""

from __future__ import annotations

from shared.errors import ImgpipeError
from shared.protocol import ErrorCode


class EngineMissing(ImgpipeError):
    """No usable ImageMagick here; the message names the package to install."""


class ConversionError(ImgpipeError):
    """One conversion failed, with a stable code for programs and a short reason for people.

    ``permanent`` is False only for faults of this worker's environment (the binary vanished,
    the disk is full), where the same job may succeed later or elsewhere; every problem caused
    by the input is permanent, so that a hostile image is answered once and never retried.
    """

    def __init__(self, code: ErrorCode, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.permanent = permanent
        self.transient = not permanent

    def __repr__(self) -> str:
        return f"ConversionError({self.code!r}, {self.message!r}, permanent={self.permanent})"
