"""Content sniffing and key building: names never become addresses."""

from __future__ import annotations

import pytest

from shared.errors import InvalidKey
from shared.formats import normalise_format, sniff
from shared.keys import check_key, input_key, reply_queue_name, result_key
from shared.protocol import new_id


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"GIF89a\x01\x00", "gif"),
        (b"GIF87a\x01\x00", "gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff"),
        (b"BM" + b"\x00" * 12 + bytes([40]) + b"\x00" * 3, "bmp"),
        (b"", None),
        (b"BM is a band", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
        (b"push graphic-context\nviewbox 0 0 1 1", None),
        (b"%!PS-Adobe-3.0", None),
        (b"%PDF-1.7", None),
        (b"hello, I am text", None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
    ],
)
def test_sniff_decides_by_content(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


def test_format_aliases() -> None:
    assert normalise_format(" JPG ") == "jpeg"
    assert normalise_format("tif") == "tiff"
    assert normalise_format("webp") == "webp"


def test_keys_come_from_ids_only() -> None:
    client, job = new_id(), new_id()
    assert input_key(client, job) == f"in/{client}/{job}"
    assert result_key(client, job, "jpeg") == f"out/{client}/{job}.jpg"
    with pytest.raises(InvalidKey):
        input_key("../../etc", job)
    with pytest.raises(InvalidKey):
        result_key(client, "cat.jpg", "png")


@pytest.mark.parametrize("key", ["../x", "/abs", "a/../../b", "a//b", "a/./b", "", "a b",
                                  "in/\x00", "x" * 600])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


def test_reply_queue_names_are_per_client_and_valid() -> None:
    a, b = new_id(), new_id()
    assert reply_queue_name("imgpipe-requests", a) != reply_queue_name("imgpipe-requests", b)
    assert len(reply_queue_name("q" * 80, a)) <= 80
