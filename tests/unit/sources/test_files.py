"""File sources: JSON lines, byte ranges, and Event Hubs Capture Avro above all."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.core.pipeline import Pipeline
from ingest.model import EventInput
from ingest.sources import SourceError, iter_events, line_ranges, read_line_range
from tests.capture import CAPTURE_SCHEMA, write_capture
from tests.conftest import ROOT, load_fixture


def test_capture_file_replays_every_body_with_lineage(tmp_path: Path, pipeline: Pipeline) -> None:
    # Capture's default naming:
    # {Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}
    path = tmp_path / "ns" / "apim-logs" / "7" / "2024" / "09" / "30" / "12" / "30" / "00.avro"
    bodies = [
        load_fixture("throttled_429"),
        gzip.compress(load_fixture("llm_logs_stream")),
        b"not json at all",
        None,
    ]
    write_capture(path, bodies)

    events = list(iter_events(str(path)))
    assert [e.meta.sequence_number for e in events] == [5000, 5001, 5002, 5003]
    assert [e.meta.partition_id for e in events] == ["7"] * 4
    assert events[1].meta.offset == str(1_048_576 + 4096)
    assert events[1].meta.enqueued_time == "2024-09-30T12:31:01.0000000Z"

    result = pipeline.process(events)
    assert result.counts().as_dict()["rows"] == 2 + 3
    assert sorted(d["Reason"] for d in result.dead_letters) == ["empty_body", "not_json"]
    assert result.counts().reconciles
    assert {r["EventPartitionId"] for r in result.rows} == {"7"}
    assert [r["EventSequenceNumber"] for r in result.rows] == [5000, 5000, 5001, 5001, 5001]


def test_jsonl_streams_one_body_per_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    line = load_fixture("policy_aihub").replace(b"\n", b"")
    path.write_bytes(line + b"\n\n" + line + b"\r\n")
    assert [e.body for e in iter_events(str(path))] == [line, line]


def test_unreadable_inputs_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        list(iter_events(str(tmp_path / "missing.json")))
    fake = tmp_path / "fake.avro"
    fake.write_bytes(b"this is not avro")
    with pytest.raises(SourceError, match="not an Avro container"):
        list(iter_events(str(fake)))


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.one_of(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), st.just(b"")),
        max_size=30,
    ),
    crlf=st.booleans(),
    trailing=st.booleans(),
    size=st.integers(min_value=1, max_value=64),
)
def test_line_ranges_tile_a_file_and_yield_every_line_once(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    crlf: bool,
    trailing: bool,
    size: int,
) -> None:
    # Workers share a JSON-lines file by byte range: together they must read what one reader reads.
    path = tmp_path_factory.mktemp("ranges") / "events.jsonl"
    end = b"\r\n" if crlf else b"\n"
    path.write_bytes(end.join(lines) + (end if trailing and lines else b""))
    whole, torn = _read(iter_events(str(path)))
    ranges = line_ranges(str(path), size)
    parts: list[bytes] = []
    torn_parts = False
    for start, stop in ranges:
        bodies, failed = _read(read_line_range(str(path), start, stop))
        parts += bodies
        torn_parts = torn_parts or failed
    assert (parts, torn_parts) == (whole, torn)
    expected = [b for b in (line.rstrip(b"\r") for line in lines) if b.strip()]
    # A last line without its newline that is not JSON is held back (the file may be growing).
    if torn:
        assert not trailing
        assert expected[:-1] == whole
    else:
        assert expected == whole


def _read(events: Iterator[EventInput]) -> tuple[list[bytes], bool]:
    """Bodies read, and whether the input stopped at a torn last line."""
    bodies = []
    error = ""
    try:
        for event in events:
            bodies.append(event.body)
    except SourceError as exc:
        error = str(exc)
    torn = "has no newline and is not complete JSON" in error
    assert torn or not error, error
    return bodies, torn


def test_line_ranges_of_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        line_ranges(str(tmp_path / "missing.jsonl"), 1024)
    with pytest.raises(SourceError, match="cannot read"):
        list(read_line_range(str(tmp_path / "missing.jsonl"), 0, 10))


# -- inputs that are not well-behaved files ------------------------------------------------------


def test_a_fifo_is_read_as_json_lines_whatever_its_name(tmp_path: Path) -> None:
    import os
    import threading

    lines = [load_fixture("chat_nonstream").replace(b"\n", b""), b'{"records": []}']
    for name in ("events.jsonl", "events.json", "no-suffix"):
        fifo = tmp_path / name
        os.mkfifo(fifo)

        def write(path: Path = fifo) -> None:
            with path.open("wb") as out:
                out.write(b"\n".join(lines) + b"\n")

        writer = threading.Thread(target=write)
        writer.start()
        assert [e.body for e in iter_events(str(fifo))] == lines, name
        writer.join(timeout=10)


def test_standard_input_redirected_from_a_file_is_read_as_json_lines(tmp_path: Path) -> None:
    import subprocess
    import sys

    lines = [load_fixture("chat_nonstream").replace(b"\n", b""), b'{"records": []}']
    events = tmp_path / "events.json"  # a name that alone would make it one body
    events.write_bytes(b"\n".join(lines) + b"\n")
    script = (
        "import sys; from ingest.sources import iter_events; "
        "print(len([e for path in sys.argv[1:] for e in iter_events(path)]))"
    )

    def events_read(path: str, **how: object) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", script, path],
            capture_output=True, text=True, cwd=ROOT, check=True, timeout=60, **how,
        )  # fmt: skip
        return done.stdout.split()

    with events.open("rb") as stdin:  # `< events.json`: a regular file to stat
        assert events_read("/dev/stdin", stdin=stdin) == ["2"]
    with events.open("rb") as file:  # and the same file as a descriptor of its own
        descriptor = f"/dev/fd/{file.fileno()}"
        assert events_read(descriptor, stdin=subprocess.DEVNULL, pass_fds=(file.fileno(),)) == ["2"]


def test_a_torn_last_line_is_held_back_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "growing.jsonl"
    complete = b'{"records": []}'
    path.write_bytes(complete + b"\n" + complete[:7])
    events = iter_events(str(path))
    assert next(events).body == complete
    with pytest.raises(SourceError, match="has no newline and is not complete JSON"):
        next(events)
    path.write_bytes(complete + b"\n" + complete)  # complete JSON without a newline is a line
    assert [e.body for e in iter_events(str(path))] == [complete, complete]


def _capture(path: Path, schema: dict[str, Any], records: list[dict[str, Any]]) -> None:
    with path.open("wb") as out:
        fastavro.writer(out, fastavro.parse_schema(schema), records)


def _string_schema() -> dict[str, Any]:
    schema = json.loads(json.dumps(CAPTURE_SCHEMA))
    for field in schema["fields"]:
        if field["name"] == "Body":
            field["type"] = ["null", "string"]
        if field["name"] == "SequenceNumber":
            field["type"] = "string"
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "SystemProperties"]
    return schema


def test_capture_faults_are_reported_after_the_events_before_them(tmp_path: Path) -> None:
    good = tmp_path / "good.avro"
    write_capture(good, [b'{"records": []}'] * 50)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.avro"
    truncated.write_bytes(data[: len(data) - 40])
    with pytest.raises(SourceError, match="unreadable after"):
        list(iter_events(str(truncated)))
    garbage = tmp_path / "garbage.avro"
    garbage.write_bytes(b"Obj\x01" + b"\xff" * 64)
    with pytest.raises(SourceError, match="not an Avro container"):
        list(iter_events(str(garbage)))


def test_capture_with_string_bodies_odd_times_and_plain_strings(tmp_path: Path) -> None:
    path = tmp_path / "strings.avro"
    records = [
        {
            "SequenceNumber": "12",
            "Offset": "4096",
            "EnqueuedTimeUtc": when,
            "Properties": {},
            "Body": '{"records": []}',
        }
        for when in ("1/1/0001 12:00:00 AM", "12/31/9999 11:59:59 PM", "not a time", "")
    ]
    _capture(path, _string_schema(), records)
    events = list(iter_events(str(path)))
    assert [e.body for e in events] == [b'{"records": []}'] * 4
    assert [e.meta.sequence_number for e in events] == [12] * 4
    assert events[2].meta.enqueued_time is None


def test_capture_body_that_is_not_utf8_is_reported_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad-utf8.avro"
    schema = _string_schema()
    body = {"SequenceNumber": "1", "Offset": "0", "EnqueuedTimeUtc": "", "Properties": {}}
    _capture(path, schema, [{**body, "Body": "ok"}, {**body, "Body": "MARKER"}])
    data = path.read_bytes().replace(b"MARKER", b"\xff\xfe\xfd\xfc\xfb\xfa")
    path.write_bytes(data)
    events: list[bytes] = []
    with pytest.raises(SourceError, match="unreadable after 1 events"):
        events.extend(event.body for event in iter_events(str(path)))  # keeps what came first
    assert events == [b"ok"]
