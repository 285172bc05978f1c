"""A batch in slices (``ingest/batch.py``): the rows of a whole batch never exist at once.

``run_batch`` hands the sink a slice of rows at a time; the ADX sink compresses each slice into the
batch's one payload per table (or streaming parts) as it comes. What must not change: the payloads
themselves (rows, raw size, earliest creation time, the very lines), streaming parts under their
limit, a row that does not fit its columns dead-lettered alone, a transient failure raised (or
the payloads kept on the last attempt), and counts that reconcile.
"""

from __future__ import annotations

import gc
import gzip
import os
import tempfile
import tracemalloc
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest import batch as batch_module
from ingest.batch import run_batch
from ingest.core.pipeline import Pipeline
from ingest.errors import TerminalIngestError, TransientIngestError
from ingest.model import BatchId, BatchResult, EventInput, EventMeta
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks import adx
from ingest.sinks.adx import AdxSink, Payload
from ingest.sinks.base import Tables
from ingest.sinks.dead_letters import DeadLetterStore
from ingest.sinks.memory import MemorySink
from ingest.sinks.spooled import SPOOL_MEMORY_BYTES, Span, Spool
from tests.conftest import golden_settings

RECORD = (
    b'{"time": "2024-09-30T12:%02d:31.4465902Z", "category": "GatewayLlmLogs", '
    b'"correlationId": "c%d-%d", "properties": {"deploymentName": "gpt-4o", '
    b'"promptTokens": 5, "completionTokens": 7}}'
)
"""The smallest records that make rows (the worst case per byte), each with its time and id."""


def _events(count: int = 12, records: int = 40) -> list[EventInput]:
    """Events of small records; every third one poison beside good records (dead letters)."""
    events = []
    for i in range(count):
        minute = 59 - i if i != 7 else 1  # the earliest record sits in a middle slice
        body = [RECORD % (minute, i, r) for r in range(records)]
        if i % 3 == 0:
            body.append(b'{"time": NaN, "category": "GatewayLogs"}')
        document = b'{"records": [' + b",".join(body) + b"]}"
        events.append(EventInput(document, EventMeta("0", i, str(i), "2025-10-01T00:00:00Z")))
    events.append(EventInput(b"\x00 not json", EventMeta("0", count, str(count), None)))
    return events


@dataclass(frozen=True)
class Sent:
    """What an ingestion was handed: the payload's bytes, read while its spool was open."""

    data: bytes
    raw_size: int
    rows: int
    creation_time: str | None
    on_disk: bool


class Recording(AdxSink):
    """The ADX sink with its ingestion recorded instead of sent (the encoding is the real one)."""

    def __init__(
        self,
        mode: str = "queued",
        fail: bool = False,
        *,
        max_raw_bytes: int | None = None,
        spool_bytes: int = SPOOL_MEMORY_BYTES,
    ) -> None:
        super().__init__(
            None,
            "apimlogs",
            Keeping(),
            retries=0,
            mode=mode,
            track_status=False,
            max_raw_bytes=max_raw_bytes,
            spool_bytes=spool_bytes,
        )
        self.sent: list[tuple[str, Sent]] = []
        self.spools: list[Spool] = []
        self.fail = fail

    def ingest(self, table: str, payload: Payload, batch: BatchId | None = None) -> None:
        self.spools.append(payload.body.spool)
        if self.fail:
            raise TransientIngestError(f"ingesting into `{table}` failed: 503")
        on_disk = payload.body.spool.on_disk
        data = payload.read()
        self.sent.append(
            (table, Sent(data, payload.raw_size, payload.rows, payload.creation_time, on_disk))
        )

    def lines(self, table: str) -> list[bytes]:
        return [
            line
            for name, payload in self.sent
            if name == table
            for line in gzip.decompress(payload.data).splitlines()
        ]


class Keeping(DeadLetterStore):
    """A dead-letter store that keeps payloads in a list."""

    def __init__(self) -> None:
        super().__init__(None)
        self.kept: list[tuple[str, bytes, int, str | None]] = []

    def put(
        self,
        batch: BatchId,
        table: str,
        payload: Span,
        rows: int,
        error: str,
        creation_time: str | None = None,
        part: int = 0,
    ) -> str:
        self.kept.append((table, payload.read(), rows, creation_time))
        return f"{batch.name}/{table}.{part}.jsonl.gz"


def _sliced(
    monkeypatch: pytest.MonkeyPatch, per_slice: int, events: list[EventInput] | None = None
) -> None:
    """Slices of ``per_slice`` events of ``events`` (their bodies are all about the same size)."""
    size = len((events or _events())[1].body)
    monkeypatch.setattr(batch_module, "SLICE_BYTES", size * per_slice - size // 2)


def _run(sink: Any, events: list[EventInput], **kwargs: Any) -> BatchResult:
    return run_batch(Pipeline(golden_settings()), sink, events, final_attempt=False, **kwargs)


def test_each_slice_reaches_the_sink_alone_and_is_let_go(monkeypatch: pytest.MonkeyPatch) -> None:
    _sliced(monkeypatch, 3)
    seen: list[tuple[int, int]] = []

    class Spy(MemorySink):
        def write_slices(
            self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
        ) -> None:
            previous: list[Tables] = []

            def watched() -> Iterable[Tables]:
                for tables in slices:
                    # By the time the next slice is built, the last one holds no rows.
                    assert all(not rows for t in previous for rows in t.values())
                    seen.append((len(tables[LANDING_TABLE]), len(tables[DEAD_LETTER_TABLE])))
                    previous[:] = [tables]
                    yield tables

            super().write_slices(batch, watched(), final_attempt=final_attempt)

    sink = Spy()
    result = _run(sink, _events())
    assert len(seen) == 5  # 13 events, 3 a slice
    assert max(rows for rows, _ in seen) <= 3 * 40
    counts = result.counts()
    assert counts.reconciles
    assert result.rows == result.dead_letters == []  # counted, not held
    assert (counts.rows, counts.dead_letters) == (12 * 40, 4 + 1)
    assert (counts.rows, counts.dead_letters) == tuple(
        len(sink.tables[t]) for t in (LANDING_TABLE, DEAD_LETTER_TABLE)
    )
    assert sink.batches == [BatchId("0", 0, 12)]


def test_the_batch_path_holds_a_slice_of_rows_not_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Measured, not timed: the most the batch path allocates at once, against what the rows of the
    # whole batch take when they are built together (the path before slices).
    events = _events(count=48, records=400)
    _sliced(monkeypatch, 2, events)
    tracemalloc.start()
    try:
        Pipeline(golden_settings()).process(events)
        _, whole = tracemalloc.get_traced_memory()
        gc.collect()  # what the first run left for a collection is not the second run's
        tracemalloc.reset_peak()
        counts = _run(Recording(), events).counts()
        _, sliced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts.rows == 48 * 400
    assert sliced < whole / 4


@pytest.mark.parametrize("mode", ["queued", "streaming"])
def test_sliced_payloads_are_the_unsliced_ones(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setattr(adx, "STREAMING_MAX_RAW_BYTES", 20_000)
    whole = Recording(mode)
    _run(whole, _events())
    _sliced(monkeypatch, 2)
    sliced = Recording(mode)
    result = _run(sliced, _events(), keep_rows=True)

    def described(sink: Recording) -> list[tuple[str, bytes, int, int, str | None]]:
        return [(t, p.data, p.rows, p.raw_size, p.creation_time) for t, p in sink.sent]

    assert described(sliced) == described(whole)  # byte for byte, part for part
    tables = [table for table, _ in sliced.sent]
    assert tables == sorted(tables, key=lambda t: t == DEAD_LETTER_TABLE)  # dead letters last
    if mode == "queued":
        assert tables == [LANDING_TABLE, DEAD_LETTER_TABLE]  # one payload per table per batch
        assert sliced.sent[0][1].creation_time == "2024-09-30T12:01:31.4465902Z"
    else:
        landing = [p for t, p in sliced.sent if t == LANDING_TABLE]
        assert len(landing) > 3
        assert all(p.raw_size <= 20_000 for p in landing)
    assert sliced.lines(LANDING_TABLE) == [orjson.dumps(r) for r in result.rows]


class Unfit(Pipeline):
    """The core, letting through a value its column cannot hold in every fifth event's first row."""

    def process_event(self, event: EventInput, result: BatchResult) -> None:
        before = len(result.rows)
        super().process_event(event, result)
        if (event.meta.sequence_number or 0) % 5 == 1 and len(result.rows) > before:
            result.rows[before]["ResponseCode"] = 3_000_000_000  # type: ignore[typeddict-unknown-key]


def test_a_row_that_does_not_fit_is_a_dead_letter_in_whichever_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def through(sink: Recording) -> None:
        run_batch(Unfit(golden_settings()), sink, _events(), final_attempt=False)

    whole = Recording()
    through(whole)
    _sliced(monkeypatch, 2)
    sliced = Recording()
    through(sliced)
    refused = [orjson.loads(x) for x in sliced.lines(DEAD_LETTER_TABLE)]
    assert [x["Reason"] for x in refused].count("bad_field") == 3  # events 1, 6, 11
    assert len(sliced.lines(LANDING_TABLE)) == 12 * 40 - 3  # their neighbours landed
    assert sliced.lines(LANDING_TABLE) == whole.lines(LANDING_TABLE)
    # Each slice's refusals follow its own dead letters: the same lines, in another order.
    assert sorted(sliced.lines(DEAD_LETTER_TABLE)) == sorted(whole.lines(DEAD_LETTER_TABLE))
    assert len(sliced.sent) == 2


def test_a_transient_failure_raises_and_the_last_attempt_keeps_the_payloads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = Recording()
    _run(whole, _events())
    _sliced(monkeypatch, 2)
    failing = Recording(fail=True)
    with pytest.raises(TransientIngestError):
        _run(failing, _events())
    store = failing.dead_letters
    assert isinstance(store, Keeping)
    assert store.kept == []
    run_batch(Pipeline(golden_settings()), failing, _events(), final_attempt=True)
    assert store.kept == [(t, p.data, p.rows, p.creation_time) for t, p in whole.sent]
    assert len(failing.kept) == 2


def test_a_sink_that_stops_reading_slices_fails_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    _sliced(monkeypatch, 3)

    class Hasty(MemorySink):
        def write_slices(
            self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
        ) -> None:
            super().write_slices(batch, [next(iter(slices))], final_attempt=final_attempt)

    with pytest.raises(RuntimeError, match="must read every slice"):
        _run(Hasty(), _events())


# -- payloads in spools: memory, then a temporary file ----------------------------------------


@pytest.mark.parametrize("mode", ["queued", "streaming"])
def test_payloads_spooled_to_disk_are_the_ones_kept_in_memory(mode: str) -> None:
    in_memory = Recording(mode, max_raw_bytes=20_000)
    _run(in_memory, _events())
    spooled = Recording(mode, max_raw_bytes=20_000, spool_bytes=1024)
    result = _run(spooled, _events(), keep_rows=True)

    def described(sink: Recording) -> list[tuple[str, bytes, int, int, str | None]]:
        return [(t, p.data, p.rows, p.raw_size, p.creation_time) for t, p in sink.sent]

    assert not any(p.on_disk for _, p in in_memory.sent)
    assert all(p.on_disk for t, p in spooled.sent if t == LANDING_TABLE)
    assert described(spooled) == described(in_memory)  # byte for byte, part for part
    assert spooled.lines(LANDING_TABLE) == [orjson.dumps(r) for r in result.rows]


def test_queued_parts_stay_under_the_raw_limit_and_describe_their_own_rows() -> None:
    whole = Recording()
    _run(whole, _events())
    parted = Recording(max_raw_bytes=5_000, spool_bytes=2_000)
    _run(parted, _events())
    landing = [p for t, p in parted.sent if t == LANDING_TABLE]
    assert len(landing) > 10
    for part in landing:
        lines = gzip.decompress(part.data).splitlines(keepends=True)
        assert part.raw_size == sum(map(len, lines)) <= 5_000
        assert part.rows == len(lines)
        assert part.creation_time == min(orjson.loads(line)["Timestamp"] for line in lines)
    assert parted.lines(LANDING_TABLE) == whole.lines(LANDING_TABLE)
    assert parted.lines(DEAD_LETTER_TABLE) == whole.lines(DEAD_LETTER_TABLE)
    tables = [table for table, _ in parted.sent]
    assert tables == sorted(tables, key=lambda t: t == DEAD_LETTER_TABLE)  # dead letters last


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


class Refused(Recording):
    """An ADX that refuses every table for good: every payload is kept."""

    def ingest(self, table: str, payload: Payload, batch: BatchId | None = None) -> None:
        self.spools.append(payload.body.spool)
        raise TerminalIngestError(f"ingesting into `{table}` failed: mapping")


class Broken(Recording):
    """An ingest client that fails with a bug, not an ADX error."""

    def ingest(self, table: str, payload: Payload, batch: BatchId | None = None) -> None:
        self.spools.append(payload.body.spool)
        raise RuntimeError("a bug")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
@pytest.mark.parametrize("ending", ["sent", "kept", "transient", "bug", "slice fails"])
def test_spools_are_closed_and_their_files_gone_however_the_batch_ends(
    ending: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _sliced(monkeypatch, 3)
    sink = {
        "sent": Recording,
        "kept": Refused,
        "transient": partial(Recording, fail=True),
        "bug": Broken,
        "slice fails": Recording,
    }[ending](max_raw_bytes=20_000, spool_bytes=512)
    spools: list[Spool] = []

    class Opened(Spool):
        def __init__(self, max_memory: int) -> None:
            super().__init__(max_memory)
            spools.append(self)

    monkeypatch.setattr(adx, "Spool", Opened)
    pipeline = (Crashing if ending == "slice fails" else Pipeline)(golden_settings())
    before = _open_files()
    if ending in ("sent", "kept"):
        run_batch(pipeline, sink, _events(), final_attempt=ending == "kept")
    else:
        with pytest.raises((TransientIngestError, RuntimeError)):
            run_batch(pipeline, sink, _events(), final_attempt=False)
    if ending == "kept":
        assert len(sink.kept) == len(sink.spools) > 2
    if ending != "slice fails":
        assert sink.spools  # payloads were made and handed over
    assert len(spools) == 2  # one a table
    assert spools[0].on_disk  # the landing rows' payloads went to a temporary file
    assert all(spool.closed for spool in spools)
    assert _open_files() == before
    assert os.listdir(tmp_path) == []


class Crashing(Pipeline):
    """The core failing with a bug in the third slice, once the first two are spooled."""

    def process_event(self, event: EventInput, result: BatchResult) -> None:
        if event.meta.sequence_number == 7:
            raise RuntimeError("a bug in the core")
        super().process_event(event, result)


def test_the_batch_holds_its_compressed_payloads_on_disk_not_in_memory() -> None:
    # Measured, not timed: what the batch path still holds (beyond its inputs) when it ingests
    # its first payload, once its rows are gone: the compressed payloads when they stay in
    # memory; when they are spooled to disk past 64 KB, only what does not grow with the batch
    # (the compressor of the table not sent yet, some 270 KB of zlib state, and up to 64 KB of
    # its payload).
    events = _events(count=60, records=600)

    class Measuring(Recording):
        held: tuple[int, int] | None = None

        def ingest(self, table: str, payload: Payload, batch: BatchId | None = None) -> None:
            if self.held is None:  # the landing rows' payload, read by nobody yet
                gc.collect()  # garbage awaiting a collection is not held
                self.held = (tracemalloc.get_traced_memory()[0] - baseline, payload.size)

    def held(spool_bytes: int) -> tuple[int, int]:
        sink = Measuring(spool_bytes=spool_bytes)
        _run(sink, events)
        assert sink.held is not None
        return sink.held

    tracemalloc.start()
    try:
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        in_memory, size = held(1 << 30)
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        on_disk, _ = held(64 << 10)
    finally:
        tracemalloc.stop()
    assert size > 1_000_000  # the landing payload, compressed
    assert in_memory > size
    assert in_memory - on_disk > 0.9 * size
    assert on_disk < size / 3
