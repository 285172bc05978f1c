"""Rows spooled to JSON-lines files on their way into the local store."""

from __future__ import annotations

from pathlib import Path

import orjson

from ingest.batch import run_batch
from ingest.core.pipeline import Pipeline
from ingest.model import BatchId, EventInput
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks.local.spool import SpoolSink
from tests.conftest import load_fixture


def _lines(path: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def test_a_spool_holds_the_rows_as_json_lines_and_is_ready_when_full() -> None:
    sink = SpoolSink(flush_rows=3)
    rows = [{"RecordId": str(i), "PromptTokens": i, "IsStreaming": i % 2 == 0} for i in range(2)]
    sink.write(BatchId(), {LANDING_TABLE: rows}, final_attempt=True)
    assert sink.take_ready() == []  # 2 rows < 3
    dead = [{"Reason": "not_json", "RawPayload": "x"}]
    sink.write(BatchId(), {LANDING_TABLE: rows[:1], DEAD_LETTER_TABLE: dead}, final_attempt=True)
    (full,) = sink.take_ready()
    assert (full.landing.rows, full.dead_letters.rows, full.rows) == (3, 1, 4)
    assert _lines(full.landing.path) == [*rows, rows[0]]
    assert _lines(full.dead_letters.path) == dead
    full.discard()
    assert not Path(full.landing.path).exists()
    assert not Path(full.dead_letters.path).exists()


def test_finish_returns_the_partial_spool_and_drops_empty_ones() -> None:
    sink = SpoolSink(flush_rows=1000)
    assert sink.finish() == []  # nothing written: no file left behind
    sink = SpoolSink(flush_rows=1000)
    result = run_batch(
        Pipeline(),
        sink,
        [EventInput(load_fixture("throttled_429"))],
        final_attempt=True,
        keep_rows=True,
    )
    (last,) = sink.finish()
    assert last.landing.rows == len(result.rows) > 0
    assert [r["RecordId"] for r in _lines(last.landing.path)] == [
        r["RecordId"] for r in result.rows
    ]
    last.discard()


def test_a_spool_is_also_ready_when_its_json_reaches_the_byte_bound() -> None:
    # Rows with captured text are large: the byte bound keeps a transaction's memory small.
    sink = SpoolSink(flush_rows=1_000_000, flush_bytes=10_000)
    row = {"RecordId": "r", "PromptText": "x" * 3_000}
    for _ in range(3):
        sink.write(BatchId(), {LANDING_TABLE: [row]}, final_attempt=True)
    assert sink.take_ready() == []  # about 9 KB
    sink.write(BatchId(), {LANDING_TABLE: [row]}, final_attempt=True)
    (full,) = sink.take_ready()
    assert full.landing.rows == 4
    assert 12_000 < full.landing.longest * 4 == Path(full.landing.path).stat().st_size
    full.discard()
