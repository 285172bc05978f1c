"""Replay event files into the local store, on every core.

The Functions app's batch path (``run_batch``: the core, then a sink) runs in worker processes
(``WorkerPool``), each with its own ``Pipeline`` and a ``SpoolSink`` that encodes the rows into
spool files; this process reads the inputs (or hands whole files and byte ranges to the workers)
and lands their spools in the store (``Store.land``: one transaction per spool, on the store's
thread). Flattening (pure Python) and landing (DuckDB) then use both cores instead of taking turns
on one GIL.

With ``workers=0`` everything runs in this process (``run_batch`` straight into the store).
Workers start with ``spawn``: they import the core, not DuckDB, and never share its threads.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from types import TracebackType
from typing import Any, Protocol

from ingest.batch import run_batch
from ingest.config import CoreSettings
from ingest.core.pipeline import Pipeline
from ingest.model import BatchCounts, BatchId, EventInput
from ingest.sinks.base import Tables
from ingest.sinks.local.spool import SpooledBatch, SpoolSink
from ingest.sources import SourceError, iter_events, line_ranges, read_line_range
from ingest.sources.files import is_stream

BATCH_EVENTS = 100
"""Events per batch in the local tools (``flatten``, ``replay``): Event Hub events can be large
(up to 1 MB), so few are in flight at once."""

BATCH_BYTES = 16 << 20
"""Event bytes per batch at most, whatever the event count: a batch's rows are held in memory
(about ten times its bodies with text captured), so it is bounded in bytes, not only in events."""

RANGE_BYTES = 4 << 20
"""Bytes of a JSON-lines file per worker task: workers read their part of the file themselves."""

WORKER_NICENESS = 5
"""Workers yield the CPU to the store's thread, the replay's critical path, when both want it."""

MAX_WORKERS = 4
"""Worker processes at most (each holds a Python interpreter and the core: memory adds up)."""


class Store(Protocol):
    """What a replay needs of the store it fills (``sinks.local.store.LocalSink``)."""

    @property
    def flush_rows(self) -> int:
        """Rows per store transaction (workers spool that many before a spool is ready)."""
        ...

    @property
    def spool_folder(self) -> str:
        """Where workers write their spool files."""
        ...

    def write(self, batch: BatchId, tables: Tables, *, final_attempt: bool) -> None:
        """Take a batch's rows (the one-process path)."""
        ...

    def write_slices(
        self, batch: BatchId, slices: Iterable[Tables], *, final_attempt: bool
    ) -> None:
        """Take a batch's rows slice by slice (the one-process path: ``run_batch``)."""
        ...

    def land(self, spooled: SpooledBatch) -> None:
        """Queue a transaction spooled by a worker."""
        ...

    def flush(self) -> None:
        """Land everything taken and wait for the store to commit it."""
        ...


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

    def unreadable(self, error: str) -> None:
        """Note an input that could not be read (once)."""
        if error not in self.errors:
            self.errors.append(error)


Progress = Callable[[ReplayStats], None]


class WorkerError(RuntimeError):
    """A replay worker failed (its traceback is the message)."""


# -- tasks, parent -> worker ----------------------------------------------------------------------


@dataclass(frozen=True)
class LineRange:
    """The lines of a JSON-lines file that start in ``[start, end)`` (the worker reads them)."""

    path: str
    start: int
    end: int


@dataclass(frozen=True)
class WholeFile:
    """Every event of one file (Capture Avro, a single body), for the worker to read."""

    path: str


Task = list[EventInput] | LineRange | WholeFile
"""Events read by the parent (stdin), or a file or part of one for the worker to read itself."""


# -- messages, worker -> parent -------------------------------------------------------------------


@dataclass(frozen=True)
class BatchDone:
    """A batch went through the core; ``spooled`` are the spools it filled."""

    counts: BatchCounts
    spooled: list[SpooledBatch]


@dataclass(frozen=True)
class InputUnreadable:
    """An input could not be read (reported; the replay goes on)."""

    error: str
    spooled: list[SpooledBatch]


@dataclass(frozen=True)
class WorkerDone:
    """The worker's last message: its partial spool."""

    spooled: list[SpooledBatch]


@dataclass(frozen=True)
class WorkerFailed:
    """The worker died of an exception."""

    traceback: str


Message = BatchDone | InputUnreadable | WorkerDone | WorkerFailed


def chunks(
    events: Iterable[EventInput], size: int, max_bytes: int = BATCH_BYTES
) -> Iterator[list[EventInput]]:
    """Batches of at most ``size`` events and about ``max_bytes`` of bodies (one event at least).

    An input that fails part-way (a Capture file cut short, a torn last line) raises its
    SourceError only after the batch of the events read before the fault: they are replayed.
    """
    batch: list[EventInput] = []
    held = 0
    try:
        for event in events:
            batch.append(event)
            held += len(event.body)
            if len(batch) >= size or held >= max_bytes:
                yield batch
                batch, held = [], 0
    except SourceError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _task_batches(task: Task, batch_events: int) -> Iterable[list[EventInput]]:
    if isinstance(task, LineRange):
        return chunks(read_line_range(task.path, task.start, task.end), batch_events)
    if isinstance(task, WholeFile):
        return chunks(iter_events(task.path), batch_events)
    return [task]


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
            try:
                for batch in _task_batches(task, batch_events):
                    counts = run_batch(pipeline, spool, batch, final_attempt=True).counts()
                    results.put(BatchDone(counts, spool.take_ready()))
            except SourceError as exc:  # an input that cannot be read, as in one process
                results.put(InputUnreadable(str(exc), spool.take_ready()))
        results.put(WorkerDone(spool.finish()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        results.put(WorkerFailed(traceback.format_exc()))


class WorkerPool:
    """Worker processes fed tasks; their spools land in the store as they report them.

    Use as a context manager: leaving it terminates any worker still running. A worker's failure
    (or death) is raised as ``WorkerError`` from the call that notices it.
    """

    def __init__(
        self,
        store: Store,
        settings: CoreSettings,
        workers: int,
        batch_events: int,
        on_batch: Callable[[BatchCounts], None],
        on_unreadable: Callable[[str], None],
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.store = store
        self.on_batch = on_batch
        self.on_unreadable = on_unreadable
        self.tasks = context.Queue(maxsize=2 * workers)  # read ahead a little, never the whole file
        self.results = context.Queue()
        self.processes: list[SpawnProcess] = [
            context.Process(
                target=_work,
                args=(
                    settings,
                    store.flush_rows,
                    batch_events,
                    store.spool_folder,
                    self.tasks,
                    self.results,
                ),
                name=f"ingest-replay-{n}",
                daemon=True,
            )
            for n in range(workers)
        ]
        self.running = 0
        """Workers that have not said they are done."""

    def __enter__(self) -> WorkerPool:
        for process in self.processes:
            process.start()
        self.running = len(self.processes)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for channel in (self.tasks, self.results):  # on failure, tasks may wait in a pipe
            channel.cancel_join_thread()
            channel.close()

    def submit(self, task: Task | None) -> None:
        """Queue a task (``None``: a worker's signal to finish), landing spools while it waits."""
        while True:
            try:
                self.tasks.put(task, timeout=0.05)
                return
            except queue.Full:
                self.collect(block=False)

    def finish(self) -> None:
        """Tell every worker to finish, land everything they spooled, and flush the store."""
        for _ in self.processes:
            self.submit(None)
        while self.running:
            self.collect(block=True)
        self.store.flush()

    def collect(self, *, block: bool) -> None:
        """Handle the workers' messages: all that are waiting, or (``block``) the next one."""
        while True:
            try:
                message: Message = self.results.get(block=block, timeout=1 if block else None)
            except queue.Empty:
                self._check_alive()
                if block:
                    continue
                return
            self._handle(message)
            if block:
                return

    def _handle(self, message: Message) -> None:
        if isinstance(message, WorkerFailed):
            raise WorkerError(message.traceback)
        for spooled in message.spooled:
            self.store.land(spooled)
        if isinstance(message, BatchDone):
            self.on_batch(message.counts)
        elif isinstance(message, InputUnreadable):
            self.on_unreadable(message.error)
        else:
            self.running -= 1

    def _check_alive(self) -> None:
        # "done" is a worker's last message and reaches the pipe before the worker exits, so
        # fewer live workers than running ones means one died without finishing.
        if sum(p.is_alive() for p in self.processes) < self.running:
            codes = [p.exitcode for p in self.processes if p.exitcode]
            raise WorkerError(f"a replay worker died without a word (exit codes {codes})")


def _batches(paths: Iterable[str], size: int, stats: ReplayStats) -> Iterator[list[EventInput]]:
    """Batches of events of every readable input; unreadable ones go to ``stats.errors``."""
    for path in paths:
        try:
            yield from chunks(iter_events(path), size)
        except SourceError as exc:
            stats.unreadable(str(exc))


def _tasks(paths: Iterable[str], size: int, stats: ReplayStats) -> Iterator[Task]:
    """Work for the workers: JSON-lines files by byte range, other files whole, stdin as batches."""
    for path in paths:
        if is_stream(path):  # stdin, pipes and FIFOs: read once, here, as JSON lines
            yield from _batches([path], size, stats)
        elif path.lower().endswith(".jsonl"):
            try:
                ranges = line_ranges(path, RANGE_BYTES)
            except SourceError as exc:
                stats.unreadable(str(exc))
                continue
            yield from (LineRange(path, start, end) for start, end in ranges)
        else:  # a Capture file (Capture writes many of them) or a single body
            yield WholeFile(path)


def replay(
    paths: Iterable[str],
    store: Store,
    settings: CoreSettings,
    *,
    workers: int,
    batch_events: int = BATCH_EVENTS,
    progress: Progress | None = None,
) -> ReplayStats:
    """Push every event of the files at ``paths`` (``-``: stdin) into the local store.

    The store is flushed before this returns. ``progress`` is called about once a second.
    """
    stats = ReplayStats(workers=workers)
    started = last_report = time.perf_counter()

    def counted(counts: BatchCounts) -> None:
        nonlocal last_report
        stats.counts.add(counts)
        now = time.perf_counter()
        stats.seconds = now - started
        if progress is not None and now - last_report >= 1:
            progress(stats)
            last_report = now

    if workers <= 0:
        pipeline = Pipeline(settings)
        for batch in _batches(paths, batch_events, stats):
            counted(run_batch(pipeline, store, batch, final_attempt=True).counts())
        store.flush()
    else:
        with WorkerPool(store, settings, workers, batch_events, counted, stats.unreadable) as pool:
            for task in _tasks(paths, batch_events, stats):
                pool.submit(task)
                pool.collect(block=False)
            pool.finish()
    stats.seconds = time.perf_counter() - started
    return stats
