"""A simulated day at 10x and 100x the demo's traffic, with a 10-minute ADX outage in the middle.

The demo (`make demo`) simulates 5 calls a minute. Each scale's day goes through the Functions
batch path in simulated time (tests/outage_world.py): 4 partitions, each read in order by its own
reader, the readers running concurrently as the Functions host runs them; host.json's batching
(256 / 32 / 10 s), the trigger's retry policy (5 retries, 10 s doubling to 15 minutes; the last
attempt keeps the batch in the dead-letter container), the sink's own retries (3, from 1 s),
queued ingestion with status tracking against Azurite and the local Data Management endpoint,
which answers 429/503 to every command during the outage (simulated time). Then ``redrive``
ingests the kept batches, and every record is accounted for: queued directly or through redrive,
none missing, none made up, a RecordId delivered twice always with the same row (so the dedup
views, one row per RecordId, leave the KPIs unchanged).

Traffic is generated in a separate process, in chunks of simulated minutes (the simulator's seed
changes per chunk), while the main process runs the batch path. Processing time is the real one
on this machine, the other readers running alongside; simulated time replaces only the waiting.
Lag is per event, from its arrival to its batch's checkpoint; ADX's ingestion batching (30 s,
kusto/40_policies.kql) comes on top. Recovery is the time from the outage's end until the last
event that arrived before it is checkpointed (the backlog drained), then redrive.

Not a test: numbers only, and a long run (each batch is several round trips to Azurite and the
endpoint, and at these rates batches are small: host.json waits at most 10 s). A stand-in for ADX
takes what was queued as the day goes (the queue message, the blob, and the app's pending copy, as
ADX and the app's status timer do), so storage stays the size it would be in production. Azurite
keeps its data on disk: in memory it holds every blob as an extent of its own, and its periodic
collection removes deleted ones one index rebuild at a time, which stalls it for minutes once
blobs are deleted all day. A line on stderr each simulated hour shows how far the run got.

    python benchmarks/bench_day.py [--hours 24] [--scales 10,100] [--outage-minutes 10]
        [--partitions 4] [--chunk-minutes 6] [--capture-text none]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measured import footer
from ingest.commands.simulate import DEFAULT_START, simulate

if TYPE_CHECKING:
    from tests.outage_world import Arrival

DEMO_CALLS_PER_MINUTE = 5.0
"""`make demo`: `python -m ingest simulate --rate 5` (calls per minute)."""

AHEAD = 2
"""Chunks of traffic generated ahead of the batch path."""

ADX_BATCHING_SECONDS = 30.0
"""kusto/40_policies.kql: the ingestion batching policy's time limit."""


def _chunk(job: tuple[int, float, float, float]) -> tuple[float, float, list[bytes]]:
    """One chunk of traffic: (start second, seconds, event bodies)."""
    seed, start, seconds, rate = job
    bodies, _ = simulate(seed, DEFAULT_START + timedelta(seconds=start), seconds / 3600, rate)
    return start, seconds, list(bodies)


def chunks(hours: float, rate: float, minutes: float, seed: int) -> Iterator[Any]:
    """The day's traffic, generated ahead in a worker process."""
    total = hours * 3600
    step = minutes * 60
    jobs = []
    start = 0.0
    while start < total:
        jobs.append((seed + len(jobs), start, min(step, total - start), rate))
        start += step
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        # At most AHEAD chunks wait in memory (a day at 100x is gigabytes of bodies).
        pending = deque(pool.apply_async(_chunk, (job,)) for job in jobs[:AHEAD])
        for job in [*jobs[AHEAD:], None]:
            chunk: tuple[float, float, list[bytes]] = pending.popleft().get()
            if job is not None:
                pending.append(pool.apply_async(_chunk, (job,)))
            yield chunk
        while pending:
            yield pending.popleft().get()


def progress(events: Iterable[Arrival], label: str) -> Iterator[Arrival]:
    """The events, with a line on stderr each simulated hour: how far the feed got, how fast."""
    began = time.perf_counter()
    hour = 1
    for event in events:
        if event.at >= hour * 3600:
            wall = time.perf_counter() - began
            print(f"  {label}: hour {hour} fed after {wall:,.0f} s", file=sys.stderr, flush=True)
            hour += 1
        yield event


def run_scale(scale: float, args: argparse.Namespace) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from ingest.config import CaptureMode
    from tests.azurite import azurite
    from tests.kusto_endpoint import kusto_endpoints
    from tests.outage_world import Day, Outage, account, arrivals, dedup, kpis, percentile

    began_scale = time.perf_counter()
    rate = DEMO_CALLS_PER_MINUTE * scale
    day_seconds = args.hours * 3600
    outage_start = day_seconds / 2
    outage = Outage(outage_start, outage_start + args.outage_minutes * 60)
    with (
        azurite() as storage,
        kusto_endpoints(args.partitions, keep_alive=True) as endpoints,
    ):
        blobs = BlobServiceClient.from_connection_string(storage.connection_string)
        blobs.create_container("tempstorage")
        queues = QueueServiceClient.from_connection_string(storage.connection_string)
        for name in ("readyforaggregation", "failed", "success"):
            queues.create_queue(name)
        day = Day(
            storage, endpoints, outage=outage, capture=CaptureMode(args.capture_text), settle=True
        )
        traffic = chunks(args.hours, rate, args.chunk_minutes, 100 + int(scale))
        report = day.run(progress(arrivals(traffic, args.partitions), f"{scale:g}x"))
        redrive_from = len(day.delivered)
        began = time.perf_counter()
        day.redrive()
        redrive_wall = time.perf_counter() - began
    delivered = day.delivered
    result = account(report, delivered, redrive_from)
    lag = report.lag
    ok = (
        result.missing == 0
        and result.unexpected == 0
        and result.conflicting_duplicates == 0
        and report.order_violations == 0
        and report.redrive_failed == 0
        and kpis(dedup(delivered)) == kpis(report.expected.values())
    )
    return {
        "scale": scale,
        "calls_per_minute": rate,
        "events": report.events,
        "records": report.records,
        "rows": report.rows,
        "dead_letters": report.dead_letters,
        "mb": report.bytes / 1e6,
        "batches": report.batches,
        "attempts": report.attempts,
        "failed_attempts": report.failed_attempts,
        "kept_batches": report.kept_batches,
        "redriven": report.redriven,
        "refused": report.refused_commands,
        "settled": report.settled,
        "settle_errors": report.settle_errors,
        "lag_p50": percentile(lag, 0.5),
        "lag_p95": percentile(lag, 0.95),
        "lag_p99": percentile(lag, 0.99),
        "lag_max": max(lag, default=0.0),
        "recovery_s": (report.backlog_drained_at or outage.end) - outage.end,
        "redrive_wall_s": redrive_wall,
        "wall_s": report.wall_seconds,
        "total_wall_s": time.perf_counter() - began_scale,
        "expected": result.expected,
        "missing": result.missing,
        "unexpected": result.unexpected,
        "duplicate_deliveries": result.duplicate_deliveries,
        "replays": result.redeliveries,
        "conflicts": result.conflicting_duplicates,
        "by_redrive": result.by_redrive,
        "order_violations": report.order_violations,
        "ok": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--scales", default="10,100", help="multiples of the demo's 5 calls/min")
    parser.add_argument("--outage-minutes", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--chunk-minutes", type=float, default=6.0)
    parser.add_argument("--capture-text", default="none", choices=("none", "redacted", "full"))
    args = parser.parse_args()
    for scale in (float(s) for s in args.scales.split(",")):
        r = run_scale(scale, args)
        print(
            f"\n{r['scale']:g}x ({r['calls_per_minute']:g} calls/min, {args.hours:g} h, "
            f"{args.partitions} partitions, outage {args.outage_minutes:g} min at mid-run)"
        )
        print(
            f"  traffic   {r['events']:,} events, {r['records']:,} records, "
            f"{r['rows']:,} rows, {r['dead_letters']:,} dead letters, {r['mb']:,.0f} MB"
        )
        print(
            f"  batches   {r['batches']:,} ({r['attempts']:,} attempts, "
            f"{r['failed_attempts']:,} failed), {r['kept_batches']:,} kept on the last attempt, "
            f"{r['redriven']:,} payloads redriven; {r['refused']:,} DM commands refused; "
            f"{r['settled']:,} queued ingestions taken by the stand-in for ADX "
            f"({r['settle_errors']} failed rounds)"
        )
        print(
            f"  lag       p50 {r['lag_p50']:.0f} s, p95 {r['lag_p95']:.0f} s, "
            f"p99 {r['lag_p99']:.0f} s, max {r['lag_max']:.0f} s "
            f"(+ {ADX_BATCHING_SECONDS:.0f} s ADX batching)"
        )
        print(
            f"  recovery  backlog drained {r['recovery_s']:.0f} s after the outage ended; "
            f"redrive took {r['redrive_wall_s']:.1f} s"
        )
        print(
            f"  records   {r['expected']:,} distinct, {r['missing']} missing, "
            f"{r['unexpected']} unexpected, {r['by_redrive']:,} delivered by redrive, "
            f"{r['duplicate_deliveries']:,} duplicate deliveries ({r['replays']} replays, "
            f"{r['conflicts']} with other content), {r['order_violations']} order violations: "
            f"{'OK' if r['ok'] else 'FAILED'}"
        )
        print(
            f"  wall      {r['wall_s']:,.0f} s for the batch path, {r['total_wall_s']:,.0f} s in "
            "all (start-up, redrive and accounting included)"
        )
    print(f"\n{footer()}")


if __name__ == "__main__":
    main()
