"""Peak memory of the worst cases: the largest trigger batch, and the record bomb.

* The largest batch the Functions trigger hands over: host.json's ``maxEventBatchSize`` events of
  Event Hubs' largest size (1 MB bodies), through ``ingest.batch.run_batch`` into the real
  ``AdxSink`` (its admission and its gzip JSON-lines encoding, one payload per table) with an
  in-memory ingest client in place of azure-kusto-ingest (queued ingestion would upload the same
  payload bytes; status tracking is off). Three kinds of events: logged chat calls with bodies
  (about 3 KB a record: ``CAPTURE_TEXT=none`` and ``full``), and the smallest records that still
  make rows (GatewayLlmLogs records of about 150 bytes: the most rows a megabyte can hold).
* The largest batch of gzip bodies: ``maxEventBatchSize`` events each holding
  ``pipeline.MAX_RECORDS_PER_EVENT`` (50,000) of the smallest records, every one with its own
  correlation id (``batch-gzip-tiny``). Its rows are sliced like any other batch's; what it measures
  is the compressed payloads, the one part of a batch that grows with its records (12.8 million rows
  for 256 events), and the parts a table's rows are split into under ADX's recommended blob size.
* The record bomb: one small gzip body inflating to millions of ``{}`` records (8 million, as
  reported: 24 MB inflated; and as many as fit under the 64 MB inflation cap), through the same
  path. It ends as one ``too_large`` dead letter; the memory is the parse of its records.

Each case runs in a fresh interpreter (``--case``), so its peak resident set (``ru_maxrss``) is
its own. ``base`` is the interpreter with the app's imports, ``inputs`` adds the batch's event
bodies (the Functions host hands the worker all of them at once), ``peak`` is the whole run.

Not a test: numbers only. The cases but ``batch-gzip-tiny`` take two to four minutes on the 2-core
development machine and need about 0.5 GB of free memory (the smallest-records batch);
``batch-gzip-tiny`` takes ten to fifteen minutes more (12.8 million records through the core) and
about 0.5 GB of free temporary disk for its payloads. ``--cases`` picks some.

    python benchmarks/bench_memory.py [--cases batch-chat,batch-chat-full,batch-tiny,batch-gzip-tiny,
        bomb-8m,bomb-cap] [--events 256] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measured import footer, write_json

EVENT_BYTES = 1_000_000
"""An Event Hubs event is at most 1 MB (1,048,576 bytes, properties included)."""

CASES = ("batch-chat", "batch-chat-full", "batch-tiny", "batch-gzip-tiny", "bomb-8m", "bomb-cap")

TINY = (
    b'{"time": "2024-09-30T12:31:31.4465902Z", "category": "GatewayLlmLogs", '
    b'"correlationId": "@TAG@", "properties": {"deploymentName": "gpt-4o", '
    b'"promptTokens": 5, "completionTokens": 7}}'
)
"""The smallest records that still make rows (about 180 bytes): the most rows a byte can hold."""


def _rss_mb() -> float:
    """Peak resident set of this process so far, in MB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _max_batch() -> int:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    return int(host["extensions"]["eventHubs"]["maxEventBatchSize"])


def _envelope(record: bytes, tag: bytes) -> bytes:
    """A diagnostic-settings envelope of copies of ``record`` filling one event."""
    count = (EVENT_BYTES - 20) // (len(record) + 1)
    return b'{"records": [' + b",".join([record.replace(b"@TAG@", tag)] * count) + b"]}"


def _events(case: str, count: int) -> list[Any]:
    from ingest.model import EventInput, EventMeta

    if case.startswith("batch-chat"):
        document = json.loads((ROOT / "tests/fixtures/apim/chat_nonstream.json").read_bytes())
        record = document["records"][0]
        record["correlationId"] = "@TAG@"
        template = json.dumps(record).encode()
    elif case == "batch-tiny":
        template = TINY
    elif case == "batch-gzip-tiny":
        return [
            EventInput(
                _gzip_records(i),
                EventMeta("0", i, str(i * EVENT_BYTES), "2025-10-01T00:00:00.0000000Z"),
            )
            for i in range(count)
        ]
    else:
        records = 8_000_000 if case == "bomb-8m" else (64 * 1024 * 1024 - 20) // 3
        return [EventInput(_bomb(records), EventMeta("0", 0, "0", "2025-10-01T00:00:00.0000000Z"))]
    return [
        EventInput(
            _envelope(template, f"c{i}".encode()),
            EventMeta("0", i, str(i * EVENT_BYTES), "2025-10-01T00:00:00.0000000Z"),
        )
        for i in range(count)
    ]


def _gzip_records(event: int) -> bytes:
    """A gzip body of ``MAX_RECORDS_PER_EVENT`` distinct smallest records (compressed as written)."""
    from ingest.core.pipeline import MAX_RECORDS_PER_EVENT

    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"records": [')]
    for start in range(0, MAX_RECORDS_PER_EVENT, 10_000):
        records = (
            TINY.replace(b"@TAG@", b"c%d-%d" % (event, r))
            for r in range(start, min(start + 10_000, MAX_RECORDS_PER_EVENT))
        )
        parts.append(compressor.compress((b"," if start else b"") + b",".join(records)))
    parts.append(compressor.compress(b"]}"))
    parts.append(compressor.flush())
    return b"".join(parts)


def _bomb(records: int) -> bytes:
    """A gzip body of ``records`` empty objects, compressed as it is written (no 64 MB copy)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"records": [{}')]
    chunk = b",{}" * 100_000
    for _ in range((records - 1) // 100_000):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.compress(b",{}" * ((records - 1) % 100_000) + b"]}"))
    parts.append(compressor.flush())
    return b"".join(parts)


class _Client:
    """An azure-kusto-ingest client that reads each payload it is handed in 4 MB chunks, as the
    queued client's blob upload does, and keeps their sizes."""

    def __init__(self) -> None:
        self.payload_bytes = 0
        self.payloads = 0

    def ingest_from_stream(self, stream: Any, properties: Any) -> None:
        self.payloads += 1
        while chunk := stream.stream.read(4 << 20):
            self.payload_bytes += len(chunk)


def run_case(case: str, events: int) -> dict[str, Any]:
    """One case in this process: build the batch, run it, report the figures."""
    from ingest.batch import run_batch
    from ingest.config import CaptureMode, CoreSettings
    from ingest.core.pipeline import Pipeline
    from ingest.sinks.adx import AdxSink
    from ingest.sinks.dead_letters import DeadLetterStore

    mode = CaptureMode.FULL if case.endswith("-full") else CaptureMode.NONE
    pipeline = Pipeline(CoreSettings(capture_text=mode))
    client = _Client()
    sink = AdxSink(client, "apimlogs", DeadLetterStore(None), retries=0, track_status=False)
    base = _rss_mb()
    batch = _events(case, events)
    inputs = _rss_mb()
    started = time.perf_counter()
    counts = run_batch(pipeline, sink, batch, final_attempt=True).counts()
    seconds = time.perf_counter() - started
    return {
        "case": case,
        "events": len(batch),
        "mb_in": sum(len(e.body) for e in batch) / 1e6,
        "records": counts.records,
        "rows": counts.rows,
        "dead_letters": counts.dead_letters,
        "payload_mb": client.payload_bytes / 1e6,
        "payloads": client.payloads,
        "seconds": seconds,
        "base_mb": base,
        "inputs_mb": inputs,
        "peak_mb": _rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--events", type=int, default=_max_batch(), help="events per batch")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in a fresh interpreter
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.events)))
        return

    print(
        f"{'case':<16}{'events':>7}{'MB in':>7}{'records':>12}{'rows':>12}{'dead':>6}"
        f"{'seconds':>8}{'payloads':>9}{'payload MB':>11}{'base MB':>8}{'inputs MB':>10}"
        f"{'peak MB':>8}"
    )
    results = []
    for case in args.cases.split(","):
        command = [sys.executable, __file__, "--case", case, "--events", str(args.events)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        if done.returncode != 0:
            print(f"{case:<16} failed (exit code {done.returncode}): {done.stderr[-500:]}")
            continue
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(figures)
        print(
            f"{case:<16}{figures['events']:>7}{figures['mb_in']:>7.2f}{figures['records']:>12,}"
            f"{figures['rows']:>12,}{figures['dead_letters']:>6,}{figures['seconds']:>8.1f}"
            f"{figures['payloads']:>9}{figures['payload_mb']:>11.1f}{figures['base_mb']:>8.0f}"
            f"{figures['inputs_mb']:>10.0f}{figures['peak_mb']:>8.0f}"
        )
    print(footer("one process per case"))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
