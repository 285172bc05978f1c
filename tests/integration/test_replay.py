"""Replay into the local store on worker processes: the same store as one process, errors kept."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import duckdb
import pytest

from ingest.commands.replay import ReplayStats, WorkerError, replay
from ingest.commands.simulate import DEFAULT_START, simulate
from ingest.config import CoreSettings
from ingest.core.pipeline import Pipeline
from ingest.model import BatchId, EventInput
from ingest.schema import LANDING_TABLE
from ingest.sinks.local.spool import RowsFile, SpooledBatch
from ingest.sinks.local.store import LocalSink
from tests.capture import write_capture
from tests.conftest import ROOT, load_fixture

pytestmark = pytest.mark.integration

SNAPSHOT = (
    "LlmUsage | summarize Rows = count(), Ids = dcount(RecordId), Tokens = sum(TotalTokens) "
    "| extend Requests = toscalar(ApimRequests | count), "
    "DeadLetters = toscalar(IngestDeadLetters | count), "
    "Messages = toscalar(LlmMessages | count)"
)


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    events, _ = simulate(5, DEFAULT_START, 1.0, 20.0)
    return list(events)  # simulate streams


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory, bodies: list[bytes]) -> Path:
    path = tmp_path_factory.mktemp("replay") / "events.jsonl"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path


def _replay(
    paths: list[str], db: Path, *, workers: int, flush_rows: int = 700
) -> tuple[ReplayStats, list[dict[str, object]]]:
    sink = LocalSink(db, flush_rows=flush_rows)
    try:
        stats = replay(paths, sink, CoreSettings(), workers=workers, batch_events=37)
        snapshot = sink.query(SNAPSHOT)
    finally:
        sink.close()
    return stats, snapshot


def test_workers_fill_the_store_exactly_as_one_process(events: Path, tmp_path: Path) -> None:
    one, one_store = _replay([str(events)], tmp_path / "one.duckdb", workers=0)
    many, many_store = _replay([str(events)], tmp_path / "many.duckdb", workers=2)
    assert one.counts == many.counts
    assert one.counts.reconciles
    assert one.counts.records > 1000  # several transactions of 700 rows on each side
    assert many_store == one_store


def test_capture_files_are_read_by_the_workers_one_file_each(
    events: Path, bodies: list[bytes], tmp_path: Path
) -> None:
    # JSON-lines files are split by byte range; any other file (Capture Avro above all, as Capture
    # writes many files) is read whole by one worker.
    half = len(bodies) // 2
    captures = [tmp_path / "capture-0.avro", tmp_path / "capture-1.avro"]
    write_capture(captures[0], bodies[:half])
    write_capture(captures[1], bodies[half:])
    paths = [str(p) for p in captures]
    lines, lines_store = _replay([str(events)], tmp_path / "lines.duckdb", workers=2)
    avro, avro_store = _replay(paths, tmp_path / "avro.duckdb", workers=2)
    one, one_store = _replay(paths, tmp_path / "one.duckdb", workers=0)
    assert avro.counts == one.counts
    assert avro_store == one_store
    assert (avro.counts.events, avro.counts.records) == (lines.counts.events, lines.counts.records)
    assert avro_store[0]["Tokens"] == lines_store[0]["Tokens"]


def test_stdin_is_read_by_the_parent_and_handed_to_the_workers_in_batches(
    events: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(events.read_bytes())))
    piped, piped_store = _replay(["-"], tmp_path / "stdin.duckdb", workers=2)
    lines, lines_store = _replay([str(events)], tmp_path / "lines.duckdb", workers=2)
    assert piped.counts == lines.counts
    assert piped_store == lines_store


def test_unreadable_inputs_are_reported_and_the_others_replayed(
    events: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "folder.jsonl"  # a JSON-lines path that cannot be read as a file
    folder.mkdir()
    missing = [str(tmp_path / "missing.jsonl"), str(tmp_path / "missing.avro")]
    capture = tmp_path / "capture.avro"
    other, _ = simulate(6, DEFAULT_START, 0.2, 20.0)  # other calls than the JSON-lines file's
    write_capture(capture, list(other)[:10], sync_interval=1)  # a block per event
    truncated = tmp_path / "truncated.avro"  # Capture files that break part-way, or at once
    truncated.write_bytes(capture.read_bytes()[:-40])
    garbage = tmp_path / "garbage.avro"
    garbage.write_bytes(b"Obj\x01" + b"\xff" * 64)
    faults = [str(truncated), str(garbage)]
    paths = [*missing, str(folder), *faults, str(events)]
    _, whole = _replay([str(events)], tmp_path / "whole.duckdb", workers=0)
    for workers in (0, 2):
        stats, store = _replay(paths, tmp_path / f"w{workers}.duckdb", workers=workers)
        assert len(stats.errors) == 5, stats.errors
        assert sum("cannot read" in e for e in stats.errors) == 3
        assert any("truncated.avro" in e and "unreadable after" in e for e in stats.errors)
        assert any("garbage.avro" in e and "not an Avro container" in e for e in stats.errors)
        assert stats.counts.reconciles
        # the events the truncated file held before its fault were replayed too
        assert whole[0]["Rows"] < store[0]["Rows"]


def test_a_failing_worker_stops_the_replay_with_its_traceback(events: Path, tmp_path: Path) -> None:
    settings = CoreSettings(policy_mapping_file=tmp_path / "no-such-mapping.toml")
    sink = LocalSink(tmp_path / "store.duckdb")
    try:
        with pytest.raises(WorkerError, match="no-such-mapping"):
            replay([str(events)], sink, settings, workers=2)
    finally:
        sink.close()


def test_a_failed_transaction_is_raised_and_lands_nothing(tmp_path: Path) -> None:
    # Sinks admit only rows that fit (sinks.base.admit); a spool written past that check, by a
    # bug, must still fail as a whole transaction, never half-land.
    result = Pipeline().process([EventInput(load_fixture("throttled_429"))])
    broken = dict(result.rows[0], RecordId="broken", DurationMs="not a number")
    folder = tmp_path / "spool"
    folder.mkdir()
    landing, letters = RowsFile(str(folder)), RowsFile(str(folder))
    landing.add([*result.rows, broken])
    spooled = SpooledBatch(landing.finish(), letters.finish())
    sink = LocalSink(tmp_path / "store.duckdb")
    try:
        sink.land(spooled)
        with pytest.raises(duckdb.InvalidInputException, match="not a number"):
            sink.flush()
        assert sink.query("ApimRequests | count") == [{"Count": 0}]  # all or nothing
        assert not Path(spooled.landing.path).exists()  # the spool is removed either way
    finally:
        sink.close()


def test_a_store_that_cannot_open_says_so_when_used(tmp_path: Path) -> None:
    # The store opens on its own thread (a replay starts its workers meanwhile): the error waits.
    folder = tmp_path / "a-folder.duckdb"
    folder.mkdir()
    sink = LocalSink(folder)
    with pytest.raises(duckdb.Error, match=r"a-folder\.duckdb"):
        sink.query("ApimRequests | count")
    sink.close()  # nothing to close, nothing raised


def test_a_second_process_on_the_same_store_is_refused_clearly(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "busy.duckdb"
    holder = LocalSink(db)
    holder.con  # noqa: B018 - opens the store (and takes its lock)
    try:
        for args in (
            ["query", "--db", str(db), "ModelPrices | count"],
            ["replay", "-", "--db", str(db), "--workers", "0"],
            ["report", "--db", str(db)],
            ["serve", "--db", str(db), "--port", "0"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "ingest", *args],
                cwd=ROOT,
                capture_output=True,
                text=True,
                input="",
                check=False,
                timeout=120,
            )
            assert done.returncode == 2, done.stderr
            assert "is in use by another process" in done.stderr
            assert "Traceback" not in done.stderr
    finally:
        holder.close()


def test_what_a_killed_replay_left_is_removed_by_the_next_one(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    stale = tmp_path / "store.duckdb.spool" / "ingest-spool-killed"
    stale.mkdir(parents=True)
    (stale / "rows-1.json").write_bytes(b"{}\n" * 1000)
    store = LocalSink(db)
    store.write(BatchId(), {LANDING_TABLE: []}, final_attempt=True)
    store.con  # noqa: B018 - opened: the stale spool is gone
    assert not stale.exists()
    store.close()
    assert not (tmp_path / "store.duckdb.spool").exists()


def test_a_replay_is_held_to_its_memory_and_a_reader_gets_the_query_limit(tmp_path: Path) -> None:
    # A replay's store shares the machine with its workers (64 MB); a report or a query over
    # 100,000 calls needs more than that (it ran out at about 77,000 with the replay's limit).
    from ingest.sinks.local.store import MEMORY_LIMIT, QUERY_MEMORY_LIMIT

    def limit(sink: LocalSink) -> str:
        try:
            return str(sink.con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        finally:
            sink.close()

    def as_duckdb_says(value: str) -> str:
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{value}'")
        return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    db = tmp_path / "store.duckdb"
    assert limit(LocalSink(db)) == as_duckdb_says(MEMORY_LIMIT) == as_duckdb_says("64MB")
    assert limit(LocalSink(db, for_queries=True)) == as_duckdb_says(QUERY_MEMORY_LIMIT)
    assert as_duckdb_says(QUERY_MEMORY_LIMIT) == as_duckdb_says("2GB")
