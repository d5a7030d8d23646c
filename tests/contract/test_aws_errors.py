"""The aws adapter's error mapping: every SDK failure becomes a project error, on one line."""

from __future__ import annotations

import pytest
from botocore import exceptions as bce
from s3transfer.exceptions import RetriesExceededError

from shared.backends.aws_errors import (
    ERROR_CODES,
    NO_CREDENTIALS,
    NO_REGION,
    map_error,
    translate,
)
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


def client_error(code: str, message: str = "", status: int = 400) -> bce.ClientError:
    return bce.ClientError(
        {"Error": {"Code": code, "Message": message},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        "AnyOperation",
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, NotFound),
        ("404", 404, NotFound),
        ("NoSuchBucket", 404, NotFound),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, NotFound),
        ("QueueDoesNotExist", 400, NotFound),
        ("AccessDenied", 403, AccessDenied),
        ("403", 403, AccessDenied),
        ("InvalidClientTokenId", 403, AccessDenied),
        ("SignatureDoesNotMatch", 403, AccessDenied),
        ("ExpiredToken", 400, AccessDenied),
        ("Throttling", 400, Throttled),
        ("SlowDown", 503, Throttled),
        ("RequestThrottled", 403, Throttled),  # the code wins over the status
        ("503", 503, Throttled),
        ("AWS.SimpleQueueService.PurgeQueueInProgress", 403, Throttled),
        ("InternalError", 500, Unreachable),
        ("BadDigest", 400, ChecksumMismatch),
        ("ReceiptHandleIsInvalid", 400, InvalidKey),
        ("SomethingNew", 404, NotFound),  # unknown code: the status decides
        ("SomethingNew", 429, Throttled),
        ("SomethingNew", 502, Unreachable),
    ],
)
def test_client_error_codes(code: str, status: int, expected: type[BackendError]) -> None:
    error = map_error(client_error(code, "details here", status), "get in/k in bucket b")
    assert type(error) is expected
    assert str(error).startswith("get in/k in bucket b: ")


def test_every_code_in_the_table_maps_to_its_type() -> None:
    for code, expected in ERROR_CODES.items():
        assert type(map_error(client_error(code), "x")) is expected, code


def test_unknown_client_error_keeps_code_and_message() -> None:
    error = map_error(client_error("WeirdError", "it went\nwrong   twice", 400), "put k")
    assert type(error) is BackendError
    assert str(error) == "put k: WeirdError: it went wrong twice"


def test_reason_is_one_line_and_short() -> None:
    error = map_error(client_error("AccessDenied", "line\n" * 200, 403), "head k")
    assert "\n" not in str(error)
    assert len(str(error)) < 300
    assert "access denied" in str(error)


def test_expired_receipt_reads_as_invalid_receipt() -> None:
    message = "Value x for parameter ReceiptHandle is invalid. Reason: Message does not exist."
    error = client_error("InvalidParameterValue", message)
    assert type(map_error(error, "x")) is InvalidKey
    assert type(map_error(error, "x", {"ReceiptHandleIsInvalid": NotFound})) is NotFound
    assert type(map_error(client_error("InvalidParameterValue", "other"), "x")) is BackendError


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (bce.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unreachable),
        (bce.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), Unreachable),
        (bce.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Unreachable),
        (bce.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), Unreachable),
        (bce.IncompleteReadError(actual_bytes=1, expected_bytes=2), Unreachable),
        (bce.NoCredentialsError(), AccessDenied),
        (bce.PartialCredentialsError(provider="env", cred_var="AWS_SECRET"), AccessDenied),
        (bce.NoRegionError(), BackendError),
        (bce.FlexibleChecksumError(error_msg="sha256 differs"), ChecksumMismatch),
        (bce.ParamValidationError(report="bad"), BackendError),
        (RetriesExceededError(bce.ReadTimeoutError(endpoint_url="http://x")), Unreachable),
    ],
)
def test_sdk_exceptions(error: Exception, expected: type[BackendError]) -> None:
    assert type(map_error(error, "do it")) is expected


def test_no_credentials_message() -> None:
    assert str(map_error(bce.NoCredentialsError(), "x")) == NO_CREDENTIALS


def test_no_region_message() -> None:
    assert str(map_error(bce.NoRegionError(), "x")) == NO_REGION


def test_our_error_inside_the_sdk_comes_out_as_is() -> None:
    ours = ChecksumMismatch("file changed")
    wrapped = bce.HTTPClientError(error=ours)
    assert map_error(wrapped, "put k") is ours


def test_translate() -> None:
    with pytest.raises(NotFound) as caught, translate("head k"):
        raise client_error("404", "Not Found", 404)
    assert isinstance(caught.value.__cause__, bce.ClientError)

    ours = InvalidKey("bad key")
    with pytest.raises(InvalidKey) as same, translate("head k"):
        raise ours
    assert same.value is ours

    with pytest.raises(ValueError), translate("head k"):
        raise ValueError("a bug of ours stays a bug")


def test_mapped_errors_are_project_errors() -> None:
    errors = [client_error("X"), bce.NoCredentialsError(), bce.ReadTimeoutError(endpoint_url="u")]
    for error in errors:
        assert isinstance(map_error(error, "x"), ImgpipeError)
