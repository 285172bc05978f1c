"""Replay event files into the local store, on every core.

The Functions app's batch path (``run_batch``: the core, then a sink) runs in worker processes,
each with its own ``Pipeline`` and a ``SpoolSink`` that encodes the rows into spool files; this
process reads the files, hands batches of events to the workers and lands their spools in the
store (``LocalSink.land``: one transaction per spool, on the store's thread). Flattening (pure
Python) and landing (DuckDB) then use both cores instead of taking turns on one GIL.

With ``workers=0`` everything runs in this process (``run_batch`` straight into ``LocalSink``).
Workers start with ``spawn``: they import the core, not DuckDB, and never share its threads.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING, Any

from ingest.config import CoreSettings
from ingest.model import BatchCounts, EventInput
from ingest.pipeline import Pipeline, run_batch
from ingest.sinks.spool import SpooledBatch, SpoolSink
from ingest.sources import SourceError, iter_events, line_ranges, read_line_range

if TYPE_CHECKING:  # workers import this module: they must not load DuckDB
    from ingest.sinks.local import LocalSink

BATCH_EVENTS = 100
"""Events per batch: Event Hub events can be large (up to 1 MB), so few are in flight at once."""

RANGE_BYTES = 4 << 20
"""Bytes of a JSON-lines file per worker task: workers read their part of the file themselves."""

WORKER_NICENESS = 5
"""Workers yield the CPU to the store's thread, the replay's critical path, when both want it."""

MAX_WORKERS = 4
"""Worker processes at most (each one costs about 40 MB)."""


def default_workers() -> int:
    """One worker per core (the store's own work runs inside DuckDB, off the GIL); none on one."""
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, MAX_WORKERS)


@dataclass
class ReplayStats:
    """What a replay did."""

    counts: BatchCounts = field(default_factory=BatchCounts)
    seconds: float = 0.0
    workers: int = 0
    errors: list[str] = field(default_factory=list)
    """Inputs that could not be read (the others are replayed all the same)."""

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.counts.records / self.seconds if self.seconds else 0.0


Progress = Callable[[ReplayStats], None]


class WorkerError(RuntimeError):
    """A replay worker failed (its traceback is the message)."""


@dataclass(frozen=True)
class LineRange:
    """A task: the lines of a JSON-lines file that start in ``[start, end)`` (the worker reads)."""

    path: str
    start: int
    end: int


@dataclass(frozen=True)
class WholeFile:
    """A task: every event of one file (Capture Avro, a single body) for the worker to read."""

    path: str


Task = list[EventInput] | LineRange | WholeFile
"""Events read by the parent (stdin), or a file or part of one for the worker to read itself."""


def _work(
    settings: CoreSettings,
    flush_rows: int,
    batch_events: int,
    folder: str,
    tasks: Any,
    results: Any,
) -> None:  # pragma: no cover - runs in a worker process (tested through replay())
    """A worker: flatten batches through the Functions app's path, spool rows, report spools."""
    try:
        os.nice(WORKER_NICENESS)
        pipeline = Pipeline(settings)
        spool = SpoolSink(flush_rows, folder)
        while (task := tasks.get()) is not None:
            if isinstance(task, LineRange):
                events = read_line_range(task.path, task.start, task.end)
                batches: Iterable[list[EventInput]] = _chunks(events, batch_events)
            elif isinstance(task, WholeFile):
                batches = _chunks(iter_events(task.path), batch_events)
            else:
                batches = [task]
            try:
                for batch in batches:
                    counts = run_batch(pipeline, spool, batch, final_attempt=True).counts()
                    results.put(("batch", counts, spool.take_ready()))
            except SourceError as exc:  # an input that cannot be read, as in one process
                results.put(("unreadable", str(exc), spool.take_ready()))
        results.put(("done", BatchCounts(), spool.finish()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        results.put(("error", traceback.format_exc(), []))


def _chunks(events: Iterable[EventInput], size: int) -> Iterator[list[EventInput]]:
    iterator = iter(events)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _batches(paths: Iterable[str], size: int, stats: ReplayStats) -> Iterator[list[EventInput]]:
    """Batches of events of every readable input; unreadable ones go to ``stats.errors``."""
    for path in paths:
        try:
            yield from _chunks(iter_events(path), size)
        except SourceError as exc:
            stats.errors.append(str(exc))


def _tasks(paths: Iterable[str], size: int, stats: ReplayStats) -> Iterator[Task]:
    """Work for the workers: JSON-lines files by byte range, other files whole, stdin as batches."""
    for path in paths:
        if path == "-":
            yield from _batches([path], size, stats)
        elif path.lower().endswith(".jsonl"):
            try:
                ranges = line_ranges(path, RANGE_BYTES)
            except SourceError as exc:
                stats.errors.append(str(exc))
                continue
            yield from (LineRange(path, start, end) for start, end in ranges)
        else:  # a Capture file (Capture writes many of them) or a single body
            yield WholeFile(path)


def replay(
    paths: Iterable[str],
    sink: LocalSink,
    settings: CoreSettings,
    *,
    workers: int,
    batch_events: int = BATCH_EVENTS,
    progress: Progress | None = None,
) -> ReplayStats:
    """Push every event of the files at ``paths`` (``-``: stdin) into the local store.

    The sink is flushed before this returns. ``progress`` is called about once a second.
    """
    stats = ReplayStats(workers=workers)
    started = time.perf_counter()
    last_report = started

    def report() -> None:
        nonlocal last_report
        now = time.perf_counter()
        stats.seconds = now - started
        if progress is not None and now - last_report >= 1:
            progress(stats)
            last_report = now

    if workers <= 0:
        pipeline = Pipeline(settings)
        for batch in _batches(paths, batch_events, stats):
            stats.counts.add(run_batch(pipeline, sink, batch, final_attempt=True).counts())
            report()
        sink.flush()
    else:
        tasks = _tasks(paths, batch_events, stats)
        _replay_on_workers(tasks, sink, settings, workers, batch_events, stats, report)
    stats.seconds = time.perf_counter() - started
    return stats


def _replay_on_workers(
    batches: Iterable[Task],
    sink: LocalSink,
    settings: CoreSettings,
    workers: int,
    batch_events: int,
    stats: ReplayStats,
    report: Callable[[], None],
) -> None:
    context = multiprocessing.get_context("spawn")
    tasks = context.Queue(maxsize=2 * workers)  # read ahead a little, never the whole file
    results = context.Queue()
    processes: list[SpawnProcess] = [
        context.Process(
            target=_work,
            args=(settings, sink.flush_rows, batch_events, sink.spool_folder, tasks, results),
            name=f"ingest-replay-{n}",
            daemon=True,
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    running = workers  # workers that have not said "done"

    def check_alive() -> None:
        # "done" is a worker's last message and reaches the pipe before the worker exits, so
        # fewer live workers than running ones means one died without finishing.
        if sum(p.is_alive() for p in processes) < running:
            codes = [p.exitcode for p in processes if p.exitcode]
            raise WorkerError(f"a replay worker died without a word (exit codes {codes})")

    def collect(*, block: bool) -> None:
        nonlocal running
        while True:
            try:
                kind, payload, spooled = results.get(block=block, timeout=1 if block else None)
            except queue.Empty:
                check_alive()
                if block:
                    continue
                return
            _land_all(sink, spooled)
            if kind == "error":
                raise WorkerError(str(payload))
            if kind == "unreadable":
                if payload not in stats.errors:
                    stats.errors.append(payload)
            elif kind == "done":
                running -= 1
            else:
                stats.counts.add(payload)
                report()
            if block:
                return

    def send(task: Task | None) -> None:
        while True:  # a full queue: collect meanwhile (a worker's failure is raised here)
            try:
                tasks.put(task, timeout=0.05)
                return
            except queue.Full:
                collect(block=False)

    try:
        for batch in batches:
            send(batch)
            collect(block=False)
        for _ in processes:
            send(None)
        while running:
            collect(block=True)
        sink.flush()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for channel in (tasks, results):  # on failure, tasks may still wait in a pipe nobody reads
            channel.cancel_join_thread()
            channel.close()


def _land_all(sink: LocalSink, spooled: list[SpooledBatch]) -> None:
    for item in spooled:
        sink.land(item)
