"""Simulated time through the Functions batch path: partitions, the trigger's retries, an outage.

A discrete-event model of what the Functions host does with an Event Hub, run on the real batch
path (``run_batch``, the real ``AdxSink`` with queued ingestion and status tracking, Azurite, the
local Data Management endpoint of ``tests/adx_world.py``):

* events arrive at their simulated times, spread over the hub's partitions (round robin: the APIM
  diagnostic setting sends no partition key);
* one reader per partition (Event Hubs' rule) forms batches as host.json says
  (``maxEventBatchSize``, ``minEventBatchSize``, ``maxWaitTime``) and takes the next batch only
  when the previous one is checkpointed, so each partition keeps its order;
* the readers run concurrently, one thread each, as the host runs one invocation per partition at
  a time in one worker process: each has its own simulated clock (partitions share nothing but
  the outage's window), its own ingest client and sink, and its own endpoint, whose answers
  follow that reader's clock; a reader is fed its partition's events in order;
* a batch whose sink fails transiently is replayed by the trigger's retry policy (function_app.py:
  exponential backoff, 10 s doubling to at most 15 minutes, 5 retries); on the last attempt the sink
  keeps it in the dead-letter container and the partition moves on;
* inside an invocation the sink retries with backoff (``ADX_RETRIES``), sleeping in simulated time;
* between ``outage_start`` and ``outage_end`` (simulated time) the local endpoint answers every Data
  Management command with 429 or 503. Every ingestion asks the endpoint (the SDK's one-hour cache
  of ingestion resources is turned off, and its own throttling backoff does not sleep), so every
  ingestion in the window sees the outage: the worst case;
* processing takes the wall-clock time the real batch path takes here, with the other readers
  running alongside (as they do in one worker); simulated time only replaces waiting (arrivals,
  backoff, retries).

What the sink queued is recorded at the client (the payload the SDK accepted); ``delivered``
holds (table, RecordId, row) for each, from normal ingestion and from ``redrive`` afterwards.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import queue
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ingest.batch import run_batch
from ingest.config import CaptureMode, CoreSettings
from ingest.core.coerce import format_datetime
from ingest.core.pipeline import Pipeline
from ingest.errors import TransientIngestError
from ingest.model import EventInput, EventMeta
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE
from ingest.sinks import adx
from ingest.sinks.dead_letters import PENDING
from tests.adx_world import DEAD_LETTERS, dm_answer
from tests.azurite import Azurite
from tests.kusto_endpoint import KustoEndpoint, error_reply

ROOT = Path(__file__).resolve().parents[1]

MAX_RETRIES = 5
RETRY_MIN_SECONDS = 10.0
RETRY_MAX_SECONDS = 900.0
"""function_app.py's retry policy (exponential_backoff, 5 retries, 00:00:10 to 00:15:00)."""

LINEAGE = frozenset(
    {"EventPartitionId", "EventSequenceNumber", "EventOffset", "EventEnqueuedTime", "IngestedAt"}
)
"""Columns that say where a copy of an event came from: a duplicate event differs only there."""

Fingerprint = tuple[bytes, int]
"""A row without its lineage, hashed, and its TotalTokens (what the KPI check adds up)."""


def fingerprint(row: dict[str, Any]) -> Fingerprint:
    """A row's content (lineage aside) as a digest, and its token count."""
    content = {k: v for k, v in row.items() if k not in LINEAGE}
    digest = hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return digest.digest(), int(row.get("TotalTokens") or 0)


ADX_RETRIES = 3
ADX_RETRY_BASE_SECONDS = 1.0
"""The app's defaults (ADX_RETRIES, ADX_RETRY_BASE_SECONDS)."""


def host_batching() -> tuple[int, int, float]:
    """(maxEventBatchSize, minEventBatchSize, maxWaitTime seconds) from host.json."""
    hubs = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]["eventHubs"]
    hours, minutes, seconds = (float(x) for x in hubs["maxWaitTime"].split(":"))
    wait = hours * 3600 + minutes * 60 + seconds
    return int(hubs["maxEventBatchSize"]), int(hubs["minEventBatchSize"]), wait


def retry_delay(retry: int) -> float:
    """Delay before the trigger's retry number ``retry`` (1-based)."""
    return min(RETRY_MIN_SECONDS * 2 ** (retry - 1), RETRY_MAX_SECONDS)


@dataclass
class Clock:
    """Simulated seconds since the start of the run."""

    now: float = 0.0


@dataclass
class Outage:
    """A window of simulated time in which the Data Management endpoint refuses everything."""

    start: float
    end: float
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def refuse(self) -> int:
        """Count one refused command (the readers' endpoints refuse concurrently)."""
        with self._lock:
            self.refused += 1
            return self.refused


ANSWER_REUSE_SECONDS = 600.0
"""How long (wall clock) the endpoint reuses a healthy answer to the same command: the ingestion
resources are the same Azurite URLs each time, only their SAS signatures would be new, and they
stay valid for two hours."""


def outage_answer(storage: Azurite, clock: Clock, outage: Outage) -> Any:
    """The endpoint's answers: 429 and 503 in turn inside the window, Azurite resources outside."""
    healthy = dm_answer(storage)
    answers: dict[str, tuple[float, tuple[int, dict[str, Any]]]] = {}

    def answer(request: Any) -> tuple[int, dict[str, Any]]:
        if outage.active(clock.now):
            if outage.refuse() % 2:
                return error_reply(429, "TooManyRequests", "ADX is throttling", permanent=False)
            return error_reply(503, "ServiceUnavailable", "ADX is unavailable", permanent=False)
        command = str(request.body.get("csl", ""))
        now = time.monotonic()
        reused = answers.get(command)
        if reused is None or now - reused[0] > ANSWER_REUSE_SECONDS:
            reused = (now, healthy(request))
            answers[command] = reused
        return reused[1]

    return answer


Delivery = tuple[str, str, Fingerprint]
"""(table, RecordId, fingerprint) of a row the ingest client accepted."""


class RecordingClient:
    """The real queued ingest client; remembers each payload it accepted (table, rows)."""

    def __init__(self, client: Any, delivered: list[Delivery]):
        self.client = client
        self.delivered = delivered
        """Where accepted rows go (``Day.redrive`` points it at its own list)."""

    def ingest_from_stream(self, stream: Any, properties: Any) -> Any:
        data = stream.stream.read()  # the payload, as the sink hands it over (a seekable file)
        stream.stream.seek(0)
        result = self.client.ingest_from_stream(stream, properties)
        for line in gzip.decompress(data).splitlines():
            row = orjson.loads(line)
            self.delivered.append((properties.table, str(row["RecordId"]), fingerprint(row)))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def worst_case_client(endpoint: KustoEndpoint) -> Any:
    """A queued ingest client that asks the endpoint for every ingestion and never sleeps."""
    from azure.kusto.data.exceptions import KustoThrottlingError
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

    client = adx.ingest_client("queued", endpoint.url, endpoint.url, None)
    manager = client._resource_manager
    manager._refresh_period = timedelta(0)
    manager._retryer = Retrying(
        retry=retry_if_exception_type(KustoThrottlingError),
        stop=stop_after_attempt(4),
        reraise=True,
    )
    return client


@dataclass
class Arrival:
    """One event on its way to a partition."""

    at: float
    partition: int
    body: bytes


@dataclass
class Partition:
    """One partition and its reader's position."""

    index: int
    buffer: deque[tuple[float, int, bytes]] = field(default_factory=deque)
    """(arrival, sequence number, body) not yet taken."""
    next_sequence: int = 0
    checkpoint: int = -1
    """Last sequence number checkpointed."""
    busy_until: float = 0.0
    wake_at: float | None = None
    """The reader's one pending wake-up."""
    retry: tuple[list[tuple[float, int, bytes]], int] | None = None
    """A batch waiting for its next attempt, and that attempt's number (1 = first retry)."""


@dataclass
class DayReport:
    """What a run did, in simulated and wall-clock time."""

    events: int = 0
    records: int = 0
    rows: int = 0
    dead_letters: int = 0
    bytes: int = 0
    batches: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    kept_batches: int = 0
    kept_payloads: int = 0
    redriven: int = 0
    redrive_failed: int = 0
    refused_commands: int = 0
    settled: int = 0
    """Queued ingestions the stand-in for ADX took (``Day(settle=True)``)."""
    settle_errors: int = 0
    """Its rounds that failed (the next round takes what they left)."""
    lag: list[float] = field(default_factory=list)
    """Per event: checkpoint time minus arrival time (simulated seconds)."""
    backlog_drained_at: float | None = None
    """When the last event that arrived before the outage's end was checkpointed."""
    order_violations: int = 0
    wall_seconds: float = 0.0
    simulated_seconds: float = 0.0
    expected: dict[tuple[str, str], Fingerprint] = field(default_factory=dict)
    """(table, RecordId) -> row, from each batch's last attempt: what the pipeline produced."""
    produced: Counter[tuple[str, str]] = field(default_factory=Counter)
    """How many rows the pipeline produced per (table, RecordId): more than one when the traffic
    itself repeats an event (Event Hubs and APIM deliver at least once)."""

    def add(self, other: DayReport) -> None:
        """Add one reader's report to this one (counts add up, times take the latest)."""
        for name in (
            "events",
            "records",
            "rows",
            "dead_letters",
            "bytes",
            "batches",
            "attempts",
            "failed_attempts",
            "kept_batches",
            "kept_payloads",
            "order_violations",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.lag.extend(other.lag)
        if other.backlog_drained_at is not None:
            self.backlog_drained_at = max(self.backlog_drained_at or 0.0, other.backlog_drained_at)
        self.simulated_seconds = max(self.simulated_seconds, other.simulated_seconds)
        self.expected.update(other.expected)
        self.produced.update(other.produced)


def arrivals(
    chunks: Iterable[tuple[float, float, list[bytes]]], partitions: int
) -> Iterator[Arrival]:
    """Events of each (start, seconds, bodies) chunk spread evenly over its span (the simulator's
    calls are a Poisson process at a constant rate), round robin over the partitions."""
    index = 0
    for start, seconds, bodies in chunks:
        gap = seconds / max(len(bodies), 1)
        for position, body in enumerate(bodies):
            yield Arrival(start + position * gap, index % partitions, body)
            index += 1


INBOX_EVENTS = 512
"""Events waiting for a reader: the feed stops there until the reader catches up (memory)."""


class Reader:
    """One partition's reader: its own simulated clock, endpoint, ingest client and sink."""

    def __init__(self, day: Day, index: int, endpoint: KustoEndpoint) -> None:
        self.day = day
        self.part = Partition(index)
        self.clock = Clock()
        self.report = DayReport()
        self.delivered: list[Delivery] = []
        endpoint.answer = outage_answer(day.storage, self.clock, day.outage)
        self.client = RecordingClient(worst_case_client(endpoint), self.delivered)
        container = adx.dead_letter_container(day.storage.connection_string, "", DEAD_LETTERS, None)
        self.sink = adx.AdxSink(
            self.client,
            "apimlogs",
            adx.DeadLetterStore(container),
            retries=ADX_RETRIES,
            retry_base_seconds=ADX_RETRY_BASE_SECONDS,
            sleep=self._sleep,
            track_status=True,
        )

    def _sleep(self, seconds: float) -> None:
        self.clock.now += seconds

    def _wake(self, at: float) -> None:
        """Look at the buffer at ``at`` (one pending wake-up: the earliest wins)."""
        part = self.part
        if part.wake_at is None or at < part.wake_at:
            part.wake_at = at

    def run(self, inbox: queue.Queue[Arrival | None]) -> None:
        """The partition's events (from ``inbox``; ``None`` ends them) through the batch path."""
        part = self.part
        day = self.day
        upcoming = inbox.get()
        while True:
            # Arrivals come first, up to the pending wake-up (all of them, if none is pending).
            horizon = part.wake_at
            if upcoming is not None and (horizon is None or upcoming.at <= horizon):
                part.buffer.append((upcoming.at, part.next_sequence, upcoming.body))
                part.next_sequence += 1
                self.report.events += 1
                self.report.bytes += len(upcoming.body)
                if len(part.buffer) == 1 or len(part.buffer) >= day.min_batch:
                    self._wake(max(upcoming.at, part.busy_until))
                upcoming = inbox.get()
                continue
            if horizon is None:
                break
            now = horizon
            part.wake_at = None
            if now < part.busy_until:
                self._wake(part.busy_until)
                continue
            if part.retry is not None:
                batch, attempt = part.retry
                part.retry = None
                self._attempt(batch, attempt, now)
                continue
            if not part.buffer:
                continue
            oldest = part.buffer[0][0]
            waiting = len(part.buffer) < day.min_batch and now < oldest + day.max_wait
            if waiting and upcoming is not None:
                self._wake(oldest + day.max_wait)
                continue
            take = min(len(part.buffer), day.max_batch)
            batch = [part.buffer.popleft() for _ in range(take)]
            self._attempt(batch, 0, now)

    def _attempt(self, batch: list[tuple[float, int, bytes]], attempt: int, now: float) -> None:
        part = self.part
        report = self.report
        final = attempt == MAX_RETRIES
        inputs = [
            EventInput(
                body,
                EventMeta(
                    str(part.index),
                    sequence,
                    str(sequence * 1024),
                    # As function_app.event_inputs writes it (ISO 8601 UTC, 7 digits, Z).
                    format_datetime(self.day.start + timedelta(seconds=arrived)),
                ),
            )
            for arrived, sequence, body in batch
        ]
        if batch[0][1] != part.checkpoint + 1:
            report.order_violations += 1
        self.clock.now = now
        kept_before = len(self.sink.kept)
        report.attempts += 1
        began = time.perf_counter()
        try:
            result = run_batch(
                self.day.pipeline, self.sink, inputs, final_attempt=final, keep_rows=True
            )
        except TransientIngestError:
            done = self.clock.now + (time.perf_counter() - began)
            report.failed_attempts += 1
            part.retry = (batch, attempt + 1)
            part.busy_until = done + retry_delay(attempt + 1)
            self._wake(part.busy_until)
            return
        done = self.clock.now + (time.perf_counter() - began)
        part.checkpoint = batch[-1][1]
        part.busy_until = done
        report.batches += 1
        report.records += result.records
        report.rows += len(result.rows)
        report.dead_letters += len(result.dead_letters)
        for table, rows in ((LANDING_TABLE, result.rows), (DEAD_LETTER_TABLE, result.dead_letters)):
            for row in rows:
                key = (table, str(row["RecordId"]))
                report.expected[key] = fingerprint(dict(row))
                report.produced[key] += 1
        kept = len(self.sink.kept) - kept_before
        if kept:
            report.kept_batches += 1
            report.kept_payloads += kept
        report.lag.extend(done - arrived for arrived, _, _ in batch)
        before_end = any(arrived < self.day.outage.end for arrived, _, _ in batch)
        drained = report.backlog_drained_at
        if before_end and (drained is None or done > drained):
            report.backlog_drained_at = done
        report.simulated_seconds = max(report.simulated_seconds, done)
        if part.buffer:
            self._wake(done)


SETTLE_EVERY_SECONDS = 5.0
"""How often (wall clock) the stand-in for ADX takes what was queued."""


class Settler:
    """Stands in for what runs beside the batch path in production, so that storage holds what it
    would hold there instead of every payload of the day: ADX takes each queued ingestion (its
    message and its blob go) and reports success, and the app's status timer drops the payload's
    pending copy (the blob ``DeadLetterStore.release`` deletes when ``StatusWatcher`` reads a
    success report).

    Without it the emulator's storage grows all day, and Azurite looks a blob up by scanning the
    blobs it holds: every request gets slower as the day goes on, which production does not see.
    """

    def __init__(self, storage: Azurite) -> None:
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueClient

        self.queue = QueueClient.from_connection_string(
            storage.connection_string, "readyforaggregation"
        )
        blobs = BlobServiceClient.from_connection_string(storage.connection_string)
        self.temp = blobs.get_container_client("tempstorage")
        self.copies = blobs.get_container_client(DEAD_LETTERS)
        self.settled = 0
        self.errors = 0

    def settle(self) -> int:
        """Take every queued ingestion; returns how many."""
        taken = 0
        while True:
            messages = list(
                self.queue.receive_messages(
                    messages_per_page=32, max_messages=32, visibility_timeout=300
                )
            )
            if not messages:
                return taken
            temporary, copies = [], []
            for message in messages:
                posted = json.loads(base64.b64decode(message.content))
                temporary.append(str(posted["BlobPath"]).split("/tempstorage/", 1)[1].split("?")[0])
                copies.append(f"{PENDING}{posted['Id']}.jsonl.gz")  # DeadLetterStore.release
            # One batch request each (at most 32 blobs): the deletes, not their round trips.
            self.temp.delete_blobs(*temporary, raise_on_any_failure=False)
            self.copies.delete_blobs(*copies, raise_on_any_failure=False)
            for message in messages:
                self.queue.delete_message(message)
            taken += len(messages)
            self.settled += len(messages)

    def run(self, stop: threading.Event) -> None:
        """Settle every few seconds until ``stop`` is set, then once more.

        A round that fails (the emulator too busy to answer in time, say) is reported on stderr
        and left to the next one: what it did not take is still queued.
        """
        while True:
            last = stop.wait(SETTLE_EVERY_SECONDS)
            try:
                self.settle()
            except Exception as exc:  # noqa: BLE001 - any failure: report it, try again later
                self.errors += 1
                print(f"settler: round failed ({type(exc).__name__}: {exc})"[:500], file=sys.stderr)
            if last:
                return


class Day:
    """Runs events through the batch path in simulated time, one concurrent reader per partition.

    ``endpoints``: one local Data Management endpoint per partition (``kusto_endpoints``), so
    that each answers by its own reader's clock. ``settle``: a ``Settler`` takes what is queued
    while the day runs (the queue and the temporary blobs are then empty at the end).
    """

    def __init__(
        self,
        storage: Azurite,
        endpoints: Sequence[KustoEndpoint],
        *,
        outage: Outage,
        capture: CaptureMode = CaptureMode.NONE,
        settle: bool = False,
    ) -> None:
        self.storage = storage
        self.outage = outage
        self.settler = Settler(storage) if settle else None
        self.pipeline = Pipeline(CoreSettings(capture_text=capture))
        self.max_batch, self.min_batch, self.max_wait = host_batching()
        self.start = datetime(2025, 10, 1, tzinfo=UTC)
        self.readers = [Reader(self, index, endpoint) for index, endpoint in enumerate(endpoints)]
        self.partitions = [reader.part for reader in self.readers]
        self.report = DayReport()
        self.redriven: list[Delivery] = []

    @property
    def delivered(self) -> list[Delivery]:
        """Every row the client accepted: each reader's, then redrive's."""
        rows = [row for reader in self.readers for row in reader.delivered]
        return rows + self.redriven

    @property
    def kept(self) -> list[str]:
        """Names of the batches the sinks kept (in the dead-letter container, for redrive)."""
        return [name for reader in self.readers for name in reader.sink.kept]

    def run(self, events: Iterable[Arrival]) -> DayReport:
        """Every event through the batch path; returns when every partition is drained."""
        started = time.perf_counter()
        inboxes: list[queue.Queue[Arrival | None]] = [
            queue.Queue(INBOX_EVENTS) for _ in self.readers
        ]
        stop = threading.Event()
        settling = self.settler
        with ThreadPoolExecutor(len(self.readers) + 1, thread_name_prefix="partition") as pool:
            settler = pool.submit(settling.run, stop) if settling is not None else None
            try:
                readers = [
                    pool.submit(reader.run, inbox)
                    for reader, inbox in zip(self.readers, inboxes, strict=True)
                ]
                try:
                    for event in events:
                        if not _feed(inboxes[event.partition], event, readers[event.partition]):
                            break  # a reader stopped: its error is raised below
                finally:
                    for inbox, reader in zip(inboxes, readers, strict=True):
                        _feed(inbox, None, reader)
                for reader in readers:
                    reader.result()
            finally:
                stop.set()
            if settler is not None:
                settler.result()
        if settling is not None:
            self.report.settled, self.report.settle_errors = settling.settled, settling.errors
        for one in self.readers:
            self.report.add(one.report)
        self.report.wall_seconds = time.perf_counter() - started
        self.report.refused_commands = self.outage.refused
        return self.report

    def redrive(self) -> tuple[int, int]:
        """After the outage: re-ingest every kept batch (the endpoint healthy again)."""
        reader = self.readers[0]
        reader.clock.now = max(reader.clock.now, self.outage.end, self.report.simulated_seconds)
        reader.client.delivered = self.redriven
        lines: list[str] = []
        try:
            done, failed = adx.redrive(reader.sink, lines.append)
        finally:
            reader.client.delivered = reader.delivered
        self.report.redriven, self.report.redrive_failed = done, failed
        self.report.refused_commands = self.outage.refused
        return done, failed


def _feed(inbox: queue.Queue[Arrival | None], event: Arrival | None, reader: Future[None]) -> bool:
    """Hand an event to a reader, waiting while its inbox is full; False if the reader stopped."""
    while not reader.done():
        try:
            inbox.put(event, timeout=1.0)
            return True
        except queue.Full:
            continue
    return False


@dataclass(frozen=True)
class Accounting:
    """Where every expected record ended, and how often it was delivered."""

    expected: int
    delivered_once_or_more: int
    missing: int
    unexpected: int
    duplicate_deliveries: int
    """Deliveries of a (table, RecordId) already delivered, whatever the cause."""
    redeliveries: int
    """Deliveries beyond what the pipeline produced: replays of a batch after a partial success."""
    conflicting_duplicates: int
    """RecordIds delivered more than once with different content (would break dedup)."""
    by_redrive: int
    """Records whose first delivery was by redrive (they sat in a kept batch)."""


def account(report: DayReport, delivered: list[Delivery], redrive_from: int) -> Accounting:
    """Compare what was delivered with what the pipeline produced."""
    seen: dict[tuple[str, str], Fingerprint] = {}
    counts: Counter[tuple[str, str]] = Counter()
    duplicates = conflicts = by_redrive = 0
    for index, (table, record_id, print_) in enumerate(delivered):
        key = (table, record_id)
        counts[key] += 1
        if key in seen:
            duplicates += 1
            if seen[key][0] != print_[0]:
                conflicts += 1
            continue
        seen[key] = print_
        if index >= redrive_from:
            by_redrive += 1
    expected = set(report.expected)
    return Accounting(
        expected=len(expected),
        delivered_once_or_more=len(expected & set(seen)),
        missing=len(expected - set(seen)),
        unexpected=len(set(seen) - expected),
        duplicate_deliveries=duplicates,
        redeliveries=sum(max(0, n - report.produced[key]) for key, n in counts.items()),
        conflicting_duplicates=conflicts,
        by_redrive=by_redrive,
    )


def kpis(rows: Iterable[Fingerprint]) -> tuple[int, int]:
    """(rows, total tokens): what a KPI over one row per (table, RecordId) adds up."""
    count = total = 0
    for _, tokens in rows:
        count += 1
        total += tokens
    return count, total


def dedup(delivered: Iterable[Delivery]) -> list[Fingerprint]:
    """One row per (table, RecordId), as the dedup views keep."""
    rows: dict[tuple[str, str], Fingerprint] = {}
    for table, record_id, print_ in delivered:
        rows.setdefault((table, record_id), print_)
    return list(rows.values())


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (0..1) of values, nearest rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
