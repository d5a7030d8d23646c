"""The wire protocol: round trips, and rejection of everything that is not a valid message."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import ProtocolError
from shared.formats import INPUT_FORMATS, OUTPUT_FORMATS
from shared.protocol import (
    MAX_BODY_BYTES,
    MAX_NAME_CHARS,
    MAX_TAG_CHARS,
    InputRef,
    JobError,
    JobRequest,
    JobResult,
    Operations,
    OutputRef,
    TagOptions,
    decode_request,
    decode_result,
    encode,
    new_id,
)

#: Characters the protocol refuses in names and tags besides categories Cc and Cs.
REFUSED = "\x85\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068" \
          "\u2069\ufffe\uffff"
ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
key = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,30}(/[A-Za-z0-9._-]{1,30}){0,3}\Z")
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"),
                           blacklist_characters="/\\" + REFUSED),
    min_size=1, max_size=MAX_NAME_CHARS,
).filter(lambda s: s not in (".", ".."))
tag_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=REFUSED),
    max_size=MAX_TAG_CHARS,
)
times = st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False)

tags = st.builds(
    TagOptions,
    text=tag_text,
    mode=st.sampled_from(["tile", "corner"]),
    point_size=st.integers(6, 200),
    color=st.sampled_from(["black", "white", "#fff", "#00ff00aa", "red"]),
)
operations = st.builds(Operations, format=st.sampled_from(OUTPUT_FORMATS),
                       tag=st.none() | tags)


@st.composite
def requests(draw: st.DrawFn) -> JobRequest:
    submitted = draw(times)
    return JobRequest(
        job_id=draw(ids), client_id=draw(ids),
        reply_to=draw(st.from_regex(r"\A[A-Za-z0-9_-]{1,80}\Z")),
        input=InputRef(key=draw(key), sha256=draw(sha), bytes=draw(st.integers(0, 2**32)),
                       name=draw(names), format=draw(st.none() | st.sampled_from(INPUT_FORMATS))),
        ops=draw(operations), submitted_at=submitted,
        deadline=submitted + draw(st.floats(0, 86400, allow_nan=False)),
    )


@st.composite
def results(draw: st.DrawFn) -> JobResult:
    status = draw(st.sampled_from(["done", "failed", "expired"]))
    output = error = None
    if status == "done":
        output = OutputRef(key=draw(key), sha256=draw(sha), bytes=draw(st.integers(0, 2**32)),
                           format=draw(st.sampled_from(OUTPUT_FORMATS)),
                           width=draw(st.integers(1, 100_000)),
                           height=draw(st.integers(1, 100_000)))
    else:
        error = JobError(code=draw(st.sampled_from(["corrupt_input", "expired", "internal"])),
                         message=draw(st.text(max_size=100)))
    return JobResult(
        job_id=draw(ids), client_id=draw(ids), status=status,
        worker_id=draw(st.from_regex(r"\A[A-Za-z0-9._:@-]{1,40}\Z")), output=output, error=error,
        timings=draw(st.dictionaries(st.sampled_from(["download", "convert", "upload", "total"]),
                                     st.floats(0, 1000, allow_nan=False))),
        finished_at=draw(times),
    )


@given(requests())
def test_request_round_trips(request: JobRequest) -> None:
    assert decode_request(encode(request)) == request


@given(results())
def test_result_round_trips(result: JobResult) -> None:
    assert decode_result(encode(result)) == result


def _request() -> JobRequest:
    return JobRequest(
        job_id=new_id(), client_id=new_id(), reply_to="imgpipe-reply-x",
        input=InputRef(key="in/a/b", sha256="0" * 64, bytes=10, name="cat.jpg", format="jpeg"),
        ops=Operations(), submitted_at=1000.0, deadline=1060.0,
    )


def _mutated(**changes: object) -> str:
    body = json.loads(encode(_request()))
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return json.dumps(body)


_DELETE = object()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "malformed JSON"),
        ("", "malformed JSON"),
        ("[1, 2]", "not a JSON object"),
        ("null", "not a JSON object"),
        (_mutated(v=2), "unknown schema version 2"),
        (_mutated(v="1"), "unknown schema version '1'"),
        (_mutated(v=_DELETE), "unknown schema version None"),
        (_mutated(kind="result"), "kind is 'result'"),
        (_mutated(job_id=_DELETE), "missing required field `job_id`"),
        (_mutated(input=_DELETE), "missing required field `input`"),
        (_mutated(input__bytes="10"), "Expected `int`, got `str` - at `$.input.bytes`"),
        (_mutated(input__bytes=-1), "`$.input.bytes`"),
        (_mutated(job_id="../../etc"), "`$.job_id`"),
        (_mutated(input__key="../escape"), "`$.input.key`"),
        (_mutated(input__name="a/b.jpg"), "path separator"),
        (_mutated(input__name="..\\b.jpg"), "path separator"),
        (_mutated(input__name="bad\nname.jpg"), "control characters"),
        (_mutated(input__name="bell\x07.jpg"), "control characters"),
        (_mutated(input__name="\x1b[31mred.jpg"), "control characters"),
        (_mutated(input__name="invoice\u202egpj.exe"), "control characters"),
        (_mutated(input__name=".."), "'.' or '..'"),
        (_mutated(input__name=""), "1 to 255 characters"),
        (_mutated(input__name="x" * 256), "1 to 255 characters"),
        (_mutated(ops__format="exe"), "`$.ops.format`"),
        (_mutated(ops__format="svg"), "`$.ops.format`"),
        (_mutated(ops__format="PNG"), "`$.ops.format`"),
        (_mutated(input__format="svg"), "`$.input.format`"),
        (_mutated(ops__tag__text="x" * (MAX_TAG_CHARS + 1)), "at most 200 characters"),
        (_mutated(ops__tag__point_size=10_000), "`$.ops.tag.point_size`"),
        (_mutated(ops__tag__color="red; rm -rf /"), "`$.ops.tag.color`"),
        (_mutated(reply_to="https://sqs.example/other"), "`$.reply_to`"),
        (_mutated(deadline=1.0), "deadline must not be before"),
        ('{"v": 1, "kind": "request", "x": "' + "a" * MAX_BODY_BYTES + '"}', "over 65536"),
    ],
)
def test_request_rejection_names_the_reason(body: str, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(body)
    message = str(caught.value)
    assert message.startswith("invalid request: ")
    assert reason in message
    assert "\n" not in message


def test_result_must_be_consistent() -> None:
    base = {"v": 1, "kind": "result", "job_id": new_id(), "client_id": new_id(),
            "worker_id": "w1", "status": "done"}
    with pytest.raises(ProtocolError, match="done result must carry an output"):
        decode_result(json.dumps(base))
    with pytest.raises(ProtocolError, match="failed result must carry an error"):
        decode_result(json.dumps({**base, "status": "failed"}))
    with pytest.raises(ProtocolError, match="kind is 'request'"):
        decode_result(encode(_request()))


# Anything at all: decoding raises ProtocolError or returns a valid message, nothing else.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | json_values.map(lambda v: json.dumps(v).encode()))
def test_decoding_garbage_raises_only_protocol_error(body: bytes) -> None:
    for decode in (decode_request, decode_result):
        try:
            decode(body)
        except ProtocolError as error:
            assert "\n" not in str(error).strip()


@given(requests(), st.sampled_from(["job_id", "client_id", "reply_to", "input", "ops",
                                     "submitted_at", "deadline"]),
       json_values)
def test_mutated_requests_are_valid_or_rejected_cleanly(
    request: JobRequest, field: str, value: object
) -> None:
    body = json.loads(encode(request))
    body[field] = value
    try:
        decoded = decode_request(json.dumps(body))
    except ProtocolError:
        return
    assert isinstance(decoded, JobRequest)


@given(st.text(alphabet=string.printable, max_size=300))
def test_file_names_with_separators_never_decode(name: str) -> None:
    body = _mutated(input__name=name)
    try:
        decoded = decode_request(body)
    except ProtocolError:
        return
    assert "/" not in decoded.input.name and "\\" not in decoded.input.name
    assert not any(ord(c) < 32 or ord(c) == 127 for c in decoded.input.name)
