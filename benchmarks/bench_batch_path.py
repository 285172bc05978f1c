"""The Functions app's batch path under load: events/s, MB/s, rows/s and peak memory per worker.

Runs ``ingest.batch.run_batch`` with the real ``AdxSink`` (queued ingestion, status tracking on,
so every payload is also held as a pending copy) against Azurite and the local Data Management
endpoint of ``tests/adx_world.py``, fed simulated traffic (``ingest.commands.simulate``) as fast
as it takes it, for each capture mode and batch size. Each combination runs in a fresh worker
process (like a Functions worker) that reads the corpus batch by batch, so its peak resident set
(``ru_maxrss``) is that combination's alone; the baseline is the same process before its first
batch (interpreter, the app's imports, the SDK clients).

Not a test: numbers only. The default run (2 hours of simulated traffic at 120 calls/minute,
about 4,000 events and 110 MB of bodies; at most ``--seconds`` per combination) takes about two
to three minutes on the 2-core development machine.

    python benchmarks/bench_batch_path.py [--hours 2] [--rate 120] [--seconds 12]
        [--modes none,redacted,full] [--batches 64,256,1024] [--json FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measured import footer, write_json
from ingest.commands.simulate import DEFAULT_START, simulate
from ingest.core.coerce import format_datetime


def _rss_kb() -> int:
    """Peak resident set of this process so far, in KiB (Linux ``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _worker(job: dict[str, Any], out: Any) -> None:
    """One combination in its own process: read the corpus in batches, run the batch path."""
    from azure.storage.blob import BlobServiceClient

    from ingest.batch import run_batch
    from ingest.config import CaptureMode, CoreSettings
    from ingest.core.pipeline import Pipeline
    from ingest.model import EventInput, EventMeta
    from ingest.sinks import adx

    connection = job["connection_string"]
    client = adx.ingest_client("queued", job["endpoint"], job["endpoint"], None)
    container = adx.dead_letter_container(connection, "", job["dead_letters"], None)
    sink = adx.AdxSink(
        client, "apimlogs", adx.DeadLetterStore(container), retries=0, track_status=True
    )
    pipeline = Pipeline(CoreSettings(capture_text=CaptureMode(job["mode"])))
    enqueued = datetime(2025, 10, 1, tzinfo=UTC)
    baseline = _rss_kb()

    events = rows = dead = size = batches = 0
    latencies: list[float] = []
    started = time.perf_counter()
    sequence = 0
    with open(job["corpus"], "rb") as corpus:
        while time.perf_counter() - started < job["seconds"]:
            batch: list[EventInput] = []
            for line in corpus:
                body = line.rstrip(b"\n")
                meta = EventMeta(
                    "0",
                    sequence,
                    str(sequence * 1024),
                    format_datetime(enqueued + timedelta(seconds=sequence)),
                )
                batch.append(EventInput(body, meta))
                sequence += 1
                if len(batch) == job["batch"]:
                    break
            if not batch:
                corpus.seek(0)  # the corpus is exhausted: go round again (new sequence numbers)
                continue
            begin = time.perf_counter()
            counts = run_batch(pipeline, sink, batch, final_attempt=False).counts()
            latencies.append(time.perf_counter() - begin)
            events += len(batch)
            size += sum(len(e.body) for e in batch)
            rows += counts.rows
            dead += counts.dead_letters
            batches += 1
    seconds = time.perf_counter() - started
    # Held copies are this run's: remove them so the next combination starts from the same state.
    blobs = BlobServiceClient.from_connection_string(connection).get_container_client(
        job["dead_letters"]
    )
    latencies.sort()
    out.put(
        {
            "mode": job["mode"],
            "batch": job["batch"],
            "batches": batches,
            "events": events,
            "rows": rows,
            "dead_letters": dead,
            "bytes": size,
            "seconds": seconds,
            "events_per_s": events / seconds,
            "mb_per_s": size / seconds / 1e6,
            "rows_per_s": rows / seconds,
            "batch_p50_s": latencies[len(latencies) // 2],
            "batch_p95_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))],
            "baseline_rss_mb": baseline / 1024,
            "peak_rss_mb": _rss_kb() / 1024,
        }
    )
    for blob in blobs.list_blobs():
        blobs.delete_blob(blob.name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=2.0, help="simulated traffic in the corpus")
    parser.add_argument("--rate", type=float, default=120.0, help="simulated calls per minute")
    parser.add_argument("--seconds", type=float, default=12.0, help="time per combination")
    parser.add_argument("--modes", default="none,redacted,full")
    parser.add_argument("--batches", default="64,256,1024")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from tests.adx_world import DEAD_LETTERS, dm_answer
    from tests.azurite import azurite
    from tests.kusto_endpoint import kusto_endpoint

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, azurite() as storage, kusto_endpoint() as dm:
        corpus = Path(folder) / "events.jsonl"
        bodies, simulator = simulate(11, DEFAULT_START, args.hours, args.rate)
        with corpus.open("wb") as out:
            for body in bodies:
                out.write(body + b"\n")
        truth = simulator.truth
        print(
            f"corpus: {truth.events:,} events, {truth.records:,} records, "
            f"{corpus.stat().st_size / 1e6:,.0f} MB ({args.hours:g} h at {args.rate:g} calls/min)"
        )
        blobs = BlobServiceClient.from_connection_string(storage.connection_string)
        blobs.create_container("tempstorage")
        blobs.create_container(DEAD_LETTERS)
        queues = QueueServiceClient.from_connection_string(storage.connection_string)
        for name in ("readyforaggregation", "failed", "success"):
            queues.create_queue(name)
        dm.answer = dm_answer(storage)
        context = multiprocessing.get_context("spawn")
        print(
            f"{'mode':<9}{'batch':>6}{'events/s':>10}{'MB/s':>7}{'rows/s':>9}"
            f"{'p50 s':>7}{'p95 s':>7}{'base MB':>9}{'peak MB':>9}"
        )
        for mode in args.modes.split(","):
            for size in (int(b) for b in args.batches.split(",")):
                job = {
                    "mode": mode,
                    "batch": size,
                    "seconds": args.seconds,
                    "corpus": str(corpus),
                    "endpoint": dm.url,
                    "connection_string": storage.connection_string,
                    "dead_letters": DEAD_LETTERS,
                }
                out: Any = context.Queue()
                worker = context.Process(target=_worker, args=(job, out))
                worker.start()
                figures = out.get(timeout=args.seconds + 600)
                worker.join()
                dm.requests.clear()
                queues.get_queue_client("readyforaggregation").clear_messages()
                results.append(figures)
                print(
                    f"{mode:<9}{size:>6}{figures['events_per_s']:>10,.0f}"
                    f"{figures['mb_per_s']:>7.1f}{figures['rows_per_s']:>9,.0f}"
                    f"{figures['batch_p50_s']:>7.2f}{figures['batch_p95_s']:>7.2f}"
                    f"{figures['baseline_rss_mb']:>9.0f}{figures['peak_rss_mb']:>9.0f}"
                )
    print(footer("one worker process each"))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
