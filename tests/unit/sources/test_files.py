"""File sources: JSON lines, byte ranges, and Event Hubs Capture Avro above all."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.core.pipeline import Pipeline
from ingest.sources import SourceError, iter_events, line_ranges, read_line_range
from tests.capture import write_capture
from tests.conftest import load_fixture


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
    whole = [e.body for e in iter_events(str(path))]
    ranges = line_ranges(str(path), size)
    parts = [e.body for start, stop in ranges for e in read_line_range(str(path), start, stop)]
    assert parts == whole
    assert [b for b in (line.rstrip(b"\r") for line in lines) if b.strip()] == whole


def test_line_ranges_of_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        line_ranges(str(tmp_path / "missing.jsonl"), 1024)
    with pytest.raises(SourceError, match="cannot read"):
        list(read_line_range(str(tmp_path / "missing.jsonl"), 0, 10))
