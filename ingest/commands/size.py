"""``python -m ingest size``: Event Hubs, Flex Consumption and ADX batching for a given APIM load.

A pure function of the load (``size``), built on figures measured with
``benchmarks/bench_batch_path.py`` (the Functions batch path: ``run_batch``, the real ``AdxSink``
with queued ingestion and status tracking, against Azurite and the local Data Management endpoint)
on 2026-11-30, on the 2-core x86_64 development machine, Python 3.11.7, pure-Python core, one
worker process per combination (Azurite and the endpoint on the same two cores), with the
simulator's traffic (28.5 KB per event, 6.4 records per event, 1.74 records per call). Runs vary
by about a third on that machine: the model keeps a utilization target below one for that, and for
catching up after an outage.

Flex Consumption instances, as documented (``FLEX_DOCS``): 512, 2048 or 4096 MB with typically a
quarter of a core, one core or two; the configured memory is shared by the function code and the
Functions host, and the platform adds 272 MB per instance for system and host processes, unbilled.
What the model assumes on top, each with its constant below: one Flex core does the work of one
core of the measured machine (the documentation gives cores, not their speed), a worker uses one
core (``WORKER_CORES``), the host takes ``HOST_OVERHEAD_MB`` of the configured memory (no documented
figure), and the 272 MB are not counted.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from typing import Any

# --------------------------------------------------------------- measured (bench_batch_path.py)

MEASURED_EVENTS_PER_SECOND = {
    "none": {64: 377.0, 256: 621.0, 1024: 752.0},
    "redacted": {64: 256.0, 256: 404.0, 1024: 330.0},
    "full": {64: 283.0, 256: 334.0, 1024: 418.0},
}
"""Events one worker process takes per second, by capture mode and batch size."""

MEASURED_MB_PER_SECOND = {
    "none": {64: 10.7, 256: 17.6, 1024: 21.3},
    "redacted": {64: 7.3, 256: 11.4, 1024: 9.4},
    "full": {64: 8.1, 256: 9.5, 1024: 11.8},
}
"""Event-body megabytes (1e6 bytes) one worker process takes per second, same runs."""

MEASURED_PEAK_RSS_MB = {
    "none": {64: 64.0, 256: 84.0, 1024: 152.0},
    "redacted": {64: 67.0, 256: 90.0, 1024: 178.0},
    "full": {64: 67.0, 256: 97.0, 1024: 178.0},
}
"""Peak resident set of the worker process (ru_maxrss), same runs."""

MEASURED_BASELINE_RSS_MB = 64.0
"""The worker before its first batch: interpreter, the app's imports, the SDK clients."""

MEASURED_EVENT_BYTES = 28_500
"""Average event body of the measured corpus (114 MB over 3,996 events)."""

MEASURED_RECORDS_PER_EVENT = 6.4
"""Records per event in the measured corpus (25,754 over 3,996): diagnostic settings pack several
records into one event."""

MEASURED_RECORDS_PER_CALL = 1.74
"""Records per call of the simulator's traffic (6,383 over 3,661 calls): a GatewayLogs record per
call, a GatewayLlmLogs record for most."""

MEASURED_ROW_BYTES = {"none": 1_595, "redacted": 2_923, "full": 2_923}
"""Raw JSON bytes of one landing row (what ADX counts against MaximumRawDataSizeMB), measured on
the simulator's traffic (the simulated prompts are short: redacted and full come out the same)."""

# --------------------------------------------------------------- documented limits and settings

EVENT_HUBS_TU_MB_PER_SECOND = 1.0
EVENT_HUBS_TU_EVENTS_PER_SECOND = 1000.0
"""Standard tier ingress per throughput unit: 1 MB/s or 1,000 events/s, whichever comes first
(egress, 2 MB/s or 4,096 events/s, is never the bound with one consumer group)."""

EVENT_HUBS_STANDARD_MAX_TU = 40
EVENT_HUBS_STANDARD_MAX_PARTITIONS = 32
EVENT_HUBS_PARTITION_MB_PER_SECOND = 1.0
"""Beyond these, Premium or Dedicated. One partition takes about 1 MB/s of ingress."""

MIN_PARTITIONS = 4
"""infra/main.bicep's default (eventHubPartitionCount): a Standard hub's partition count is fixed
at creation, so the model never proposes fewer."""

MAX_BATCH_EVENTS = 256
MIN_BATCH_EVENTS = 32
MAX_WAIT_SECONDS = 10.0
"""host.json: maxEventBatchSize, minEventBatchSize, maxWaitTime."""

ADX_BATCHING_SECONDS = 30.0
ADX_BATCHING_ITEMS = 500
ADX_BATCHING_RAW_MB = 1024.0
"""kusto/40_policies.kql: ApimLogsLanding's ingestion batching policy (time, items, raw size)."""

FLEX_DOCS = "https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#instance-sizes"
"""Flex Consumption's instance sizes, their cores and memory, as Microsoft documents them."""

FLEX_INSTANCE_CORES = {512: 0.25, 2048: 1.0, 4096: 2.0}
"""Instance memory (MB) -> the cores such an instance typically gets (the platform may give an
instance slightly different cores)."""

FLEX_PLATFORM_BUFFER_MB = 272.0
"""Memory the platform adds to each instance for system and host processes, on top of the
configured size and not billed. Not counted by the model: headroom."""

INSTANCE_MEMORY_MB = (2048, 4096)
"""The instance sizes infra/ allows. Not 512 MB: its quarter of a core would run the worker at about
a quarter of the measured rate, and half of 512 MB cannot hold the host's share."""

WORKER_CORES = 1.0
"""Cores one worker uses: it is one Python process, as in the measured runs (one process each).
An instance with fewer cores runs it proportionally slower; a second core (4096 MB) does not make
it faster (it is left to the Functions host, which shares the instance, and to headroom)."""

HOST_OVERHEAD_MB = 400.0
"""Memory the Functions host and platform take from the configured instance memory, besides the
Python worker (the documentation says the host shares the instance's resources, but gives no
figure for it): an assumption, to check against the instance's memory metric once deployed."""

MEMORY_HEADROOM = 0.5
"""Use at most half of the instance's memory: batches of large bodies, retries, prefetch."""

TARGET_UTILIZATION = 0.5
"""Plan each worker at half its measured rate: run-to-run variation, and room to drain a backlog
(after an outage, a backlog drains at 1 / utilization - 1 times the arrival rate)."""


@dataclass(frozen=True, slots=True)
class Sizing:
    """What ``size`` proposes for a load."""

    calls_per_second: float
    events_per_second: float
    records_per_second: float
    ingress_mb_per_second: float
    event_hubs_tier: str
    throughput_units: int
    partitions: int
    worker_events_per_second: float
    parallelism: int
    flex_instances: int
    instance_memory_mb: int
    peak_worker_mb: float
    batch_events: float
    batch_wait_seconds: float
    processing_seconds: float
    lag_seconds: float
    adx_blobs_per_window: float
    adx_raw_mb_per_window: float
    adx_sealed_by: str
    adx_batching: dict[str, Any]


def size(
    calls_per_second: float,
    body_bytes: float,
    capture_text: str = "none",
    records_per_call: float = MEASURED_RECORDS_PER_CALL,
    *,
    batch_events: int = MAX_BATCH_EVENTS,
    records_per_event: float = MEASURED_RECORDS_PER_EVENT,
) -> Sizing:
    """Size the pipeline for a load, step by step, with the constants above.

    Load::

        records/s = calls/s x records_per_call
        events/s  = records/s / records_per_event
        MB/s      = events/s x body_bytes / 1e6

    Event Hubs (Standard)::

        TU         = max(1, ceil(max(MB/s / 1, events/s / 1000)))
        partitions = max(MIN_PARTITIONS, parallelism, ceil(MB/s / 1))
        tier       = Standard while TU <= 40 and partitions <= 32, else Premium or Dedicated

    Functions (one Python worker per instance, one partition's batch at a time)::

        peak worker = BASELINE + (MEASURED_PEAK_RSS_MB[mode][b] - BASELINE)
                      x body_bytes / MEASURED_EVENT_BYTES                             MB
        memory      = the smallest of 2048, 4096 with
                      peak worker + HOST_OVERHEAD_MB <= memory x MEMORY_HEADROOM (else 4096)
        worker      = min(MEASURED_EVENTS_PER_SECOND[mode][b],
                          MEASURED_MB_PER_SECOND[mode][b] x 1e6 / body_bytes)
                      x min(1, FLEX_INSTANCE_CORES[memory] / WORKER_CORES)           events/s
        parallelism = max(1, ceil(events/s / (worker x TARGET_UTILIZATION)))
        instances   = parallelism (Event Hubs: one reader per partition, so <= partitions)

    Lag (of an event that opens a batch; later ones wait less)::

        per partition  = events/s / partitions
        wait           = MIN_BATCH / per partition if that is under MAX_WAIT, else MAX_WAIT
        batch          = min(MAX_BATCH, max(1, per partition x wait))
        processing     = batch / worker
        lag            = wait + processing + ADX_BATCHING_SECONDS

    ADX batching (ApimLogsLanding; one blob per Functions batch)::

        blobs per 30 s = partitions x 30 / (wait + processing)
        raw MB per 30 s = records/s x row bytes x 30 / 1e6,
            row bytes = none's + (mode's - none's) x body_bytes / MEASURED_EVENT_BYTES
        sealed by: items when blobs reach 500, size when raw MB reaches 1024, else time (30 s)

    ``b``, the batch size of the measured figures, is ``batch_events`` (64, 256 or 1024: host.json
    asks for 256).
    """
    if calls_per_second < 0 or body_bytes <= 0 or records_per_call <= 0:
        raise ValueError("calls/s must be >= 0, body bytes and records per call > 0")
    if capture_text not in MEASURED_EVENTS_PER_SECOND:
        raise ValueError(f"capture mode must be one of {', '.join(MEASURED_EVENTS_PER_SECOND)}")
    if batch_events not in MEASURED_EVENTS_PER_SECOND[capture_text]:
        raise ValueError("batch_events must be a measured batch size: 64, 256 or 1024")

    records = calls_per_second * records_per_call
    events = records / records_per_event
    mb = events * body_bytes / 1e6

    peak_measured = MEASURED_PEAK_RSS_MB[capture_text][batch_events]
    peak = MEASURED_BASELINE_RSS_MB + (peak_measured - MEASURED_BASELINE_RSS_MB) * (
        body_bytes / MEASURED_EVENT_BYTES
    )
    memory = next(
        (m for m in INSTANCE_MEMORY_MB if peak + HOST_OVERHEAD_MB <= m * MEMORY_HEADROOM),
        INSTANCE_MEMORY_MB[-1],
    )

    worker = min(
        MEASURED_EVENTS_PER_SECOND[capture_text][batch_events],
        MEASURED_MB_PER_SECOND[capture_text][batch_events] * 1e6 / body_bytes,
    ) * min(1.0, FLEX_INSTANCE_CORES[memory] / WORKER_CORES)
    parallelism = max(1, math.ceil(events / (worker * TARGET_UTILIZATION)))
    units = max(
        1,
        math.ceil(max(mb / EVENT_HUBS_TU_MB_PER_SECOND, events / EVENT_HUBS_TU_EVENTS_PER_SECOND)),
    )
    partitions = max(
        MIN_PARTITIONS, parallelism, math.ceil(mb / EVENT_HUBS_PARTITION_MB_PER_SECOND)
    )
    standard = (
        units <= EVENT_HUBS_STANDARD_MAX_TU and partitions <= EVENT_HUBS_STANDARD_MAX_PARTITIONS
    )
    tier = "Standard" if standard else "Premium or Dedicated"

    per_partition = events / partitions
    if per_partition > 0 and MIN_BATCH_EVENTS / per_partition < MAX_WAIT_SECONDS:
        wait = MIN_BATCH_EVENTS / per_partition
    else:
        wait = MAX_WAIT_SECONDS
    batch = min(float(MAX_BATCH_EVENTS), max(1.0, per_partition * wait))
    processing = batch / worker
    lag = wait + processing + ADX_BATCHING_SECONDS

    blobs = partitions * ADX_BATCHING_SECONDS / (wait + processing) if events > 0 else 0.0
    none_row = MEASURED_ROW_BYTES["none"]
    row = none_row + (MEASURED_ROW_BYTES[capture_text] - none_row) * (
        body_bytes / MEASURED_EVENT_BYTES
    )
    raw_mb = records * row * ADX_BATCHING_SECONDS / 1e6
    if blobs >= ADX_BATCHING_ITEMS:
        sealed = "items"
    elif raw_mb >= ADX_BATCHING_RAW_MB:
        sealed = "size"
    else:
        sealed = "time"
    return Sizing(
        calls_per_second=calls_per_second,
        events_per_second=events,
        records_per_second=records,
        ingress_mb_per_second=mb,
        event_hubs_tier=tier,
        throughput_units=units,
        partitions=partitions,
        worker_events_per_second=worker,
        parallelism=parallelism,
        flex_instances=parallelism,
        instance_memory_mb=memory,
        peak_worker_mb=peak,
        batch_events=batch,
        batch_wait_seconds=wait,
        processing_seconds=processing,
        lag_seconds=lag,
        adx_blobs_per_window=blobs,
        adx_raw_mb_per_window=raw_mb,
        adx_sealed_by=sealed,
        adx_batching={
            "MaximumBatchingTimeSpan": "00:00:30",
            "MaximumNumberOfItems": ADX_BATCHING_ITEMS,
            "MaximumRawDataSizeMB": int(ADX_BATCHING_RAW_MB),
        },
    )


def cmd_size(args: argparse.Namespace) -> int:
    """Print the sizing for the load on the command line."""
    result = size(
        args.calls_per_second,
        args.body_bytes,
        args.capture_text,
        args.records_per_call,
        batch_events=args.batch_events,
    )
    if args.json:
        import json

        print(json.dumps(asdict(result), indent=2))
        return 0
    lines = [
        f"load          {result.calls_per_second:g} calls/s -> {result.events_per_second:,.1f} "
        f"events/s, {result.records_per_second:,.1f} records/s, "
        f"{result.ingress_mb_per_second:,.2f} MB/s",
        f"Event Hubs    {result.event_hubs_tier}, {result.throughput_units} TU, "
        f"{result.partitions} partitions",
        f"Functions     {result.flex_instances} instance(s) of {result.instance_memory_mb} MB "
        f"(worker ~{result.worker_events_per_second:,.0f} events/s measured, planned at "
        f"{TARGET_UTILIZATION:.0%}; peak worker ~{result.peak_worker_mb:,.0f} MB)",
        f"lag           ~{result.lag_seconds:,.0f} s = batch wait {result.batch_wait_seconds:.1f} s"
        f" + processing {result.processing_seconds:.2f} s + ADX batching "
        f"{ADX_BATCHING_SECONDS:.0f} s",
        f"ADX batching  {result.adx_batching}: ~{result.adx_blobs_per_window:,.0f} blobs and "
        f"{result.adx_raw_mb_per_window:,.1f} MB raw per 30 s, sealed by {result.adx_sealed_by}",
    ]
    print("\n".join(lines))
    return 0


def add_size_parser(verbs: Any) -> None:
    """The ``size`` verb: register it with ``add_size_parser(verbs)`` in cli.build_parser."""
    parser = verbs.add_parser(
        "size", help="Event Hubs, Flex Consumption and ADX batching for an APIM load"
    )
    parser.add_argument("--calls-per-second", type=float, required=True, help="APIM calls/s")
    parser.add_argument(
        "--body-bytes",
        type=float,
        required=True,
        help="average Event Hub event body, bytes (one diagnostic-settings event)",
    )
    parser.add_argument(
        "--capture-text", choices=sorted(MEASURED_EVENTS_PER_SECOND), default="none"
    )
    parser.add_argument(
        "--records-per-call",
        type=float,
        default=MEASURED_RECORDS_PER_CALL,
        help="log records per call (GatewayLogs + GatewayLlmLogs; the simulator's 1.74)",
    )
    parser.add_argument(
        "--batch-events",
        type=int,
        choices=(64, 256, 1024),
        default=MAX_BATCH_EVENTS,
        help="host.json maxEventBatchSize the figures are taken for",
    )
    parser.add_argument("--json", action="store_true", help="print the sizing as JSON")
    parser.set_defaults(handler=cmd_size)
