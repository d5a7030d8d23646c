"""Map boto3, botocore and s3transfer errors to the project's error types.

Callers of the ports only ever see ``shared.errors`` types, each with a one-line reason: the
adapter wraps every AWS call in ``translate(what)``, where ``what`` says what was being done
("get in/… from bucket imgpipe-data"). Codes are matched first (they say the most), then the
HTTP status, then botocore's own exception classes for failures that never got an answer.

Messages carry AWS's error code and message, never request headers or credentials.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from botocore import exceptions as bce  # type: ignore[import-untyped, unused-ignore]

from shared.errors import (
    AccessDenied,
    BackendError,
    ChecksumMismatch,
    ImgpipeError,
    InvalidKey,
    NotFound,
    Throttled,
    Unreachable,
)

NO_CREDENTIALS: Final = (
    "no AWS credentials found: configure a profile, environment or instance role"
)
NO_REGION: Final = (
    "no AWS region configured: set region in imgpipe.toml or IMGPIPE_REGION, "
    "or AWS_REGION / a profile's region"
)
#: Longest AWS message kept in a reason; the rest is noise for a one-line error.
MAX_MESSAGE_CHARS: Final = 200

ErrorType = type[BackendError]

#: Error codes as S3, SQS (query and JSON protocols) and STS spell them.
ERROR_CODES: Final[Mapping[str, ErrorType]] = {
    # absent things
    "NoSuchKey": NotFound,
    "NoSuchBucket": NotFound,
    "NoSuchUpload": NotFound,
    "NotFound": NotFound,
    "404": NotFound,
    "AWS.SimpleQueueService.NonExistentQueue": NotFound,
    "QueueDoesNotExist": NotFound,
    # credentials and permissions
    "AccessDenied": AccessDenied,
    "AccessDeniedException": AccessDenied,
    "Forbidden": AccessDenied,
    "403": AccessDenied,
    "AllAccessDisabled": AccessDenied,
    "AccountProblem": AccessDenied,
    "InvalidAccessKeyId": AccessDenied,
    "InvalidClientTokenId": AccessDenied,
    "UnrecognizedClientException": AccessDenied,
    "SignatureDoesNotMatch": AccessDenied,
    "IncompleteSignature": AccessDenied,
    "InvalidSecurity": AccessDenied,
    "ExpiredToken": AccessDenied,
    "ExpiredTokenException": AccessDenied,
    "InvalidToken": AccessDenied,
    "RequestExpired": AccessDenied,
    "RequestTimeTooSkewed": AccessDenied,
    # slow down
    "Throttling": Throttled,
    "ThrottlingException": Throttled,
    "ThrottledException": Throttled,
    "RequestThrottled": Throttled,
    "RequestThrottledException": Throttled,
    "RequestLimitExceeded": Throttled,
    "TooManyRequestsException": Throttled,
    "SlowDown": Throttled,
    "ServiceUnavailable": Throttled,
    "503": Throttled,
    "AWS.SimpleQueueService.PurgeQueueInProgress": Throttled,
    "PurgeQueueInProgress": Throttled,
    "AWS.SimpleQueueService.QueueDeletedRecently": Throttled,
    "QueueDeletedRecently": Throttled,
    # the service failed to answer properly: transient like a network failure
    "InternalError": Unreachable,
    "InternalFailure": Unreachable,
    "ServiceFailure": Unreachable,
    "RequestTimeout": Unreachable,
    "RequestTimeoutException": Unreachable,
    "500": Unreachable,
    "502": Unreachable,
    "504": Unreachable,
    # bytes that do not match their checksum
    "BadDigest": ChecksumMismatch,
    "InvalidDigest": ChecksumMismatch,
    "XAmzContentSHA256Mismatch": ChecksumMismatch,
    # a receipt handle that is not one (SQS)
    "ReceiptHandleIsInvalid": InvalidKey,
    "InvalidIdFormat": InvalidKey,
    "InvalidBucketName": InvalidKey,
    "KeyTooLongError": InvalidKey,
}

#: Fallback on the HTTP status when the code is unknown.
HTTP_STATUSES: Final[Mapping[int, ErrorType]] = {
    403: AccessDenied,
    404: NotFound,
    429: Throttled,
    500: Unreachable,
    502: Unreachable,
    503: Throttled,
    504: Unreachable,
}

#: Words for a reason, so a user reads "not found" rather than a class name.
_REASONS: Final[Mapping[ErrorType, str]] = {
    NotFound: "not found",
    AccessDenied: "access denied",
    Throttled: "throttled, retry later",
    Unreachable: "service error, retry later",
    ChecksumMismatch: "checksum mismatch",
    InvalidKey: "invalid name or handle",
}


def _one_line(text: object) -> str:
    line = re.sub(r"\s+", " ", str(text)).strip()
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 1] + "…"


def error_code(error: Any) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' when there is none)."""
    return str((error.response.get("Error") or {}).get("Code") or "")


def _client_error(
    error: Any, what: str, overrides: Mapping[str, ErrorType]
) -> BackendError:
    details = error.response.get("Error") or {}
    code = error_code(error)
    message = _one_line(details.get("Message") or "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "InvalidParameterValue" and "ReceiptHandle" in message:
        # SQS's word for an expired or superseded receipt, e.g. on a visibility change.
        code = "ReceiptHandleIsInvalid"
    kind = overrides.get(code) or ERROR_CODES.get(code)
    if kind is None and isinstance(status, int):
        kind = HTTP_STATUSES.get(status)
    if kind is None:
        kind = BackendError
        reason = f"{code or status}: {message}" if message else str(code or status)
    else:
        reason = _REASONS.get(kind, kind.__name__)
        label = code if code and not code.isdigit() else f"HTTP {status or code}"
        reason += f" ({label}{': ' + message if message and message != code else ''})"
    return kind(f"{what}: {reason}")


def _cause(error: BaseException) -> BaseException | None:
    """The exception a wrapper carries: s3transfer's and boto3's, or botocore's HTTP errors."""
    for name in ("last_exception", "original_error"):
        inner = getattr(error, name, None)
        if isinstance(inner, BaseException):
            return inner
    kwargs = getattr(error, "kwargs", None)
    wrapped = kwargs.get("error") if isinstance(kwargs, dict) else None
    if isinstance(wrapped, BaseException):
        return wrapped
    return error.__cause__


def map_error(
    error: BaseException, what: str, overrides: Mapping[str, ErrorType] | None = None
) -> BackendError:
    """The project error for ``error`` raised while doing ``what``; never raises itself.

    ``overrides`` maps AWS error codes to another type for one call (a receipt that is not
    valid for a change of visibility means "no longer held", not "malformed").
    """
    overrides = overrides or {}
    inner = _cause(error)
    # Our own checks can run inside botocore/s3transfer (a verifying reader): unwrap them.
    if isinstance(inner, ImgpipeError):
        return inner if isinstance(inner, BackendError) else BackendError(str(inner))
    if isinstance(error, bce.ClientError):
        return _client_error(error, what, overrides)
    if isinstance(error, bce.NoCredentialsError):
        return AccessDenied(NO_CREDENTIALS)
    if isinstance(
        error,
        bce.PartialCredentialsError | bce.CredentialRetrievalError | bce.TokenRetrievalError
        | bce.SSOError | bce.ProfileNotFound,
    ):
        return AccessDenied(f"{what}: AWS credentials unusable: {_one_line(error)}")
    if isinstance(error, bce.NoRegionError):
        return BackendError(NO_REGION)
    if isinstance(error, bce.FlexibleChecksumError | bce.ChecksumError):
        return ChecksumMismatch(f"{what}: bytes did not match their checksum in transit")
    if isinstance(
        error,
        bce.ConnectionError | bce.HTTPClientError | bce.IncompleteReadError
        | bce.ResponseStreamingError,
    ):
        return Unreachable(f"{what}: AWS unreachable: {_one_line(error)}")
    if isinstance(error, bce.ParamValidationError):
        return BackendError(f"{what}: invalid request: {_one_line(error)}")
    if inner is not None and inner is not error:
        return map_error(inner, what, overrides)
    return BackendError(f"{what}: {type(error).__name__}: {_one_line(error)}")


def _is_aws_error(error: BaseException) -> bool:
    """True for exceptions raised by the AWS SDK layers, whatever their class."""
    module = type(error).__module__.split(".", 1)[0]
    return module in ("botocore", "boto3", "s3transfer", "urllib3")


@contextlib.contextmanager
def translate(what: str, overrides: Mapping[str, ErrorType] | None = None) -> Iterator[None]:
    """Run a block of AWS calls, re-raising SDK errors as project errors about ``what``.

    Project errors pass through untouched. The SDK error stays chained as the cause, for
    debug logs; its text holds no credentials.
    """
    try:
        yield
    except ImgpipeError:
        raise
    except Exception as error:
        if not (_is_aws_error(error) or isinstance(_cause(error), ImgpipeError)):
            raise
        raise map_error(error, what, overrides) from error
