"""The worker against both backends: processing, hostile input, redelivery, deadlines, retries."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from server.engine import Engine, detect_engine
from shared import keys
from shared.config import Settings
from shared.errors import NotFound, Unreachable
from shared.formats import sniff_file
from shared.protocol import encode
from tests.pipeline import Pipeline, RunningWorker, make_image, wait_for


@pytest.fixture(scope="session")
def engine() -> Engine:
    return detect_engine()


@pytest.fixture
def pipeline(settings: Settings) -> Pipeline:
    opened = Pipeline(settings)
    yield opened  # type: ignore[misc]
    opened.close()


def oplog_records(settings: Settings) -> list[dict[str, object]]:
    path = settings.op_log_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_job_is_converted_replied_and_cleaned_up(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "cat photo.jpg", 320, 200)
    request = pipeline.submit(source, fmt="webp")
    with RunningWorker(settings, engine):
        result = pipeline.results_for([request.job_id])[request.job_id]
    assert result.status == "done", result.error
    assert result.output is not None
    assert (result.output.format, result.output.width, result.output.height) == ("webp", 320, 200)
    assert set(result.timings) >= {"queue_wait", "download", "convert", "upload"}
    assert pipeline.collected.progress[request.job_id][0].stage == "processing"

    downloaded = tmp_path / "out.webp"
    pipeline.store.get_file(result.output.key, downloaded, sha256=result.output.sha256)
    assert sniff_file(downloaded) == "webp"
    # Clean-up: the input object and the request message are gone; the result stays for the
    # client, with the recorded reply beside it.
    assert not pipeline.store.exists(request.input.key)
    assert pipeline.requests.depth() == (0, 0)
    assert pipeline.store.exists(keys.reply_key(pipeline.client_id, request.job_id))

    (record,) = oplog_records(settings)
    assert record["job_id"] == request.job_id
    assert record["status"] == "done"
    assert record["input_name"] == "cat photo.jpg"
    assert record["output_sha256"] == result.output.sha256
    assert record["width"] == 320
    assert set(record["timings"]) >= {"queue_wait", "download", "convert", "upload", "total"}


def test_a_redelivered_finished_job_is_not_redone(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "a.png")
    request = pipeline.submit(source)
    with RunningWorker(settings, engine):
        first = pipeline.results_for([request.job_id])[request.job_id]
        # The same request again, as SQS would redeliver it after a lost delete.
        pipeline.requests.send(encode(request))
        wait_for(lambda: (pipeline.collect(), len(pipeline.collected.results.get(
            request.job_id, [])) >= 2)[1], what="the replayed reply")
    second = pipeline.collected.results[request.job_id][1]
    assert second == first  # the recorded answer, re-sent as is
    records = oplog_records(settings)
    assert [r["event"] for r in records] == ["job", "replay"]
    assert "convert" not in records[1]["timings"]  # nothing converted the second time


def test_a_job_past_its_deadline_is_expired_without_work(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "late.png")
    request = pipeline.request(source)
    late = type(request)(**{**{f: getattr(request, f) for f in request.__struct_fields__},
                            "submitted_at": time.time() - 100, "deadline": time.time() - 1})
    pipeline.requests.send(encode(late))
    with RunningWorker(settings, engine):
        result = pipeline.results_for([request.job_id])[request.job_id]
    assert result.status == "expired"
    assert result.error is not None and result.error.code == "expired"
    assert request.job_id not in pipeline.collected.progress  # never started
    assert not pipeline.store.exists(request.input.key)


def test_a_job_whose_input_is_gone_fails(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "gone.png")
    request = pipeline.submit(source, upload=False)
    with RunningWorker(settings, engine):
        result = pipeline.results_for([request.job_id])[request.job_id]
    assert result.status == "failed"
    assert result.error is not None and result.error.code == "input_missing"


def test_an_input_that_does_not_match_its_hash_fails(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    source = make_image(tmp_path / "x.png")
    request = pipeline.submit(source, sha256="0" * 64)
    with RunningWorker(settings, engine):
        result = pipeline.results_for([request.job_id])[request.job_id]
    assert result.error is not None and result.error.code == "checksum_mismatch"


def _zero(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _truncated_jpeg(path: Path) -> Path:
    make_image(path, 400, 300, extra=["-quality", "90", "+noise", "Random"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _text_named_jpg(path: Path) -> Path:
    path.write_text("this is not an image, just text\n" * 20)
    return path


def _png_bomb(path: Path) -> Path:
    import struct
    import zlib

    width = height = 30000
    row = b"\x00" + b"\x00" * (width // 8)  # 1-bit rows
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data)
                     + chunk(b"IEND", b""))
    return path


def _mvg(path: Path) -> Path:
    path.write_text("push graphic-context\nviewbox 0 0 640 480\nimage over 0,0 0,0 "
                    "'text:/etc/passwd'\npop graphic-context\n")
    return path


def _svg(path: Path) -> Path:
    path.write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
                    'height="10"><image href="text:/etc/passwd"/></svg>')
    return path


def _postscript(path: Path) -> Path:
    path.write_text("%!PS-Adobe-3.0\n/Helvetica findfont 20 scalefont setfont\n"
                    "72 72 moveto (hello) show showpage\n")
    return path


def _many_frames(path: Path) -> Path:
    # A GIF of thousands of 1x1 frames, written by hand: a few KB.
    frame = (b"\x21\xf9\x04\x00\x00\x00\x00\x00" + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"
             + b"\x02\x02\x44\x01\x00")
    header = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    path.write_bytes(header + frame * 5000 + b"\x3b")
    return path


BAD_INPUTS = {
    "zero-byte.jpg": (_zero, "unsupported_input"),
    "truncated.jpg": (_truncated_jpeg, "corrupt_input"),
    "text.jpg": (_text_named_jpg, "unsupported_input"),
    "bomb.png": (_png_bomb, "too_large"),
    "mvg.jpg": (_mvg, "unsupported_input"),
    "svg.png": (_svg, "unsupported_input"),
    "postscript.jpg": (_postscript, "unsupported_input"),
    "frames.gif": (_many_frames, "too_large"),
}


def test_each_bad_input_fails_on_first_delivery_and_the_worker_keeps_serving(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    requests = {}
    for name, (build, _code) in BAD_INPUTS.items():
        requests[name] = pipeline.submit(build(tmp_path / name))
    good = pipeline.submit(make_image(tmp_path / "good.png"), fmt="jpeg")
    with RunningWorker(settings, engine):
        results = pipeline.results_for([r.job_id for r in (*requests.values(), good)])
    for name, (_build, code) in BAD_INPUTS.items():
        result = results[requests[name].job_id]
        assert result.status == "failed", name
        assert result.error is not None
        assert result.error.code == code, (name, result.error)
        assert result.error.message and "\n" not in result.error.message
    assert results[good.job_id].status == "done"
    receive_counts = {r["job_id"]: r["receive_count"] for r in oplog_records(settings)}
    assert set(receive_counts.values()) == {1}  # answered on the first delivery, not retried


def test_an_unknown_output_format_fails_cleanly(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    request = pipeline.request(make_image(tmp_path / "a.png"))
    body = json.loads(encode(request))
    body["ops"]["format"] = "exe"
    pipeline.requests.send(json.dumps(body))
    with RunningWorker(settings, engine):
        result = pipeline.results_for([request.job_id])[request.job_id]
    assert result.status == "failed"
    assert result.error is not None and result.error.code == "bad_request"
    assert "format" in result.error.message


@pytest.mark.parametrize("body", [
    "{not json", json.dumps({"v": 99, "kind": "request"}), "x" * 200_000, "[]",
], ids=["malformed", "unknown-version", "huge", "not-an-object"])
def test_poison_messages_are_parked_and_the_worker_keeps_serving(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path, body: str
) -> None:
    pipeline.requests.send(body)
    good = pipeline.submit(make_image(tmp_path / "good.png"))
    with RunningWorker(settings, engine):
        assert pipeline.results_for([good.job_id])[good.job_id].status == "done"
        wait_for(lambda: any(r.get("event") == "poison" for r in oplog_records(settings)))
    dead = pipeline.backend.queue(keys.dead_letter_name(settings.queue))
    parked = dead.receive(10, wait_seconds=2)
    assert [m.body for m in parked] == [body]
    assert pipeline.requests.depth() == (0, 0)


def test_transient_store_trouble_is_retried_then_dead_lettered(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    """A store that cannot be reached cannot be produced on demand mid-job, so this one fault
    is injected: every upload of a result fails as unreachable."""
    settings = settings.with_values(max_receives="2", visibility_timeout="5")
    request = pipeline.submit(make_image(tmp_path / "a.png"))
    with RunningWorker(settings, engine) as running:
        store = running.worker.context.store

        def unreachable(*_args: object, **_kwargs: object) -> object:
            raise Unreachable("injected: S3 unreachable")

        store.put_file = unreachable  # type: ignore[method-assign]
        running.worker.context.store = store
        wait_for(lambda: sum(r.get("status") == "retry" for r in oplog_records(settings)) >= 2,
                 timeout=40, what="two retries")
        dead = pipeline.backend.queue(keys.dead_letter_name(settings.queue))
        parked = wait_for(lambda: dead.receive(1, wait_seconds=1), timeout=40,
                          what="the message in the dead-letter queue")
    assert json.loads(parked[0].body)["job_id"] == request.job_id  # type: ignore[index]
    retries = [r for r in oplog_records(settings) if r.get("status") == "retry"]
    assert [r["retry_in"] for r in retries[:2]] == [2, 4]  # backoff doubles


def test_the_heartbeat_keeps_a_slow_job_hidden(
    settings: Settings, pipeline: Pipeline, engine: Engine, big_png: Path
) -> None:
    request = pipeline.submit(big_png, fmt="png")
    with RunningWorker(settings, engine, concurrency=1) as running:
        # Far shorter than the conversion: only the heartbeat keeps the message hidden.
        running.worker.visibility_timeout = 2
        started = time.monotonic()
        result = pipeline.results_for([request.job_id], timeout=120)[request.job_id]
        took = time.monotonic() - started
    assert result.status == "done"
    assert took > 2.5, f"conversion took {took:.1f} s, not longer than the visibility timeout"
    (record,) = oplog_records(settings)
    assert record["receive_count"] == 1  # never redelivered while it ran
    assert len(pipeline.collected.results[request.job_id]) == 1


def test_job_temp_dirs_are_removed(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    requests = [pipeline.submit(make_image(tmp_path / "ok.png")),
                pipeline.submit(_truncated_jpeg(tmp_path / "bad.jpg"))]
    with RunningWorker(settings, engine) as running:
        pipeline.results_for([r.job_id for r in requests])
        root = running.worker.context.work_root
        wait_for(lambda: not list(root.glob(f"imgpipe-job-{os.getpid()}-*")),
                 what="job dirs removed")


def test_reply_to_another_clients_queue_is_refused(
    settings: Settings, pipeline: Pipeline, engine: Engine, tmp_path: Path
) -> None:
    other = Pipeline(settings)
    try:
        request = pipeline.request(make_image(tmp_path / "a.png"))
        hijack = json.loads(encode(request))
        hijack["reply_to"] = other.reply_name
        pipeline.requests.send(json.dumps(hijack))
        good = pipeline.submit(make_image(tmp_path / "b.png"))
        with RunningWorker(settings, engine):
            pipeline.results_for([good.job_id])
            wait_for(lambda: len(oplog_records(settings)) >= 2, what="both jobs logged")
        other.collect(0.5)
        assert other.collected.results == {}
        assert other.collected.progress == {}
    finally:
        other.close()


def test_missing_queue_on_aws_says_run_init(tmp_path: Path, aws_env: object) -> None:
    from server.commands import build_worker
    from shared.backends import open_backend

    settings = Settings(backend="aws", state_dir=tmp_path, bucket="b-test-x",
                        log_bucket="b-test-y")
    backend = open_backend(settings)
    with pytest.raises(NotFound, match="run 'imgserver init'"):
        build_worker(settings, backend, detect_engine())
