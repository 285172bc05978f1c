"""Azure Functions app (Python v2 programming model): Event Hub -> ingest core -> ADX.

Thin by design: adapt the trigger's events, run ``ingest.batch.run_batch``, record the batch.

Settings are validated when the Functions host loads the app. If they are incomplete, the Event Hub
trigger is not registered at all: the app consumes nothing (the consumer group keeps its place, so
no event is lost), logs the problem, and the ``health`` function reports it. Clients are built once,
lazily, on the first invocation; importing the app outside the host (tests, tools) needs no setting.
"""

from __future__ import annotations

import json
import logging
import os
import time
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from ingest.batch import run_batch
from ingest.config import Settings
from ingest.core.coerce import format_datetime
from ingest.core.pipeline import Pipeline
from ingest.errors import ConfigError
from ingest.model import EventInput, EventMeta
from ingest.sinks.base import Sink
from ingest.telemetry import BatchMetrics

MAX_RETRIES = 5
"""Replays of a batch whose sink failed transiently; on the last one the sink keeps the batch."""

HOST_MARKERS = ("FUNCTIONS_WORKER_DIRECTORY", "FUNCTIONS_APPLICATION_DIRECTORY")
"""Variables the Functions host sets on every language worker it starts, on every plan and under
``func start`` (unlike ``FUNCTIONS_WORKER_RUNTIME``, which Flex Consumption does not set)."""

app = func.FunctionApp()
log = logging.getLogger("ingest")


@dataclass
class Runtime:
    """What the function needs, built once."""

    pipeline: Pipeline
    sink: Sink
    metrics: BatchMetrics


_runtime: Runtime | None = None


def build_runtime(env: Mapping[str, str]) -> Runtime:
    """Validate the settings and build the ADX sink (managed identity unless told otherwise)."""
    from ingest.sinks import adx

    settings = Settings.from_env(env)
    return Runtime(Pipeline(settings.core), adx.sink_from_settings(settings), BatchMetrics.create())


def runtime() -> Runtime:
    """The runtime, built on first use."""
    global _runtime  # noqa: PLW0603 - one runtime per worker process, built lazily
    if _runtime is None:
        _runtime = build_runtime(os.environ)
    return _runtime


def set_runtime(value: Runtime | None) -> None:
    """Replace the runtime (tests, or a host that builds it differently)."""
    global _runtime  # noqa: PLW0603
    _runtime = value


def partition_id(events: Sequence[func.EventHubEvent]) -> str:
    """The batch's partition, read once.

    Every event of a batch carries the same trigger metadata, and ``EventHubEvent.metadata``
    decodes all of it (every array of the batch) on each event's first access.
    """
    if not events:
        return ""
    context = (events[0].metadata or {}).get("PartitionContext")
    return str(context.get("PartitionId", "")) if isinstance(context, Mapping) else ""


def event_inputs(events: Sequence[func.EventHubEvent]) -> list[EventInput]:
    """The trigger's events as the core's inputs: body plus partition, sequence, offset, time."""
    partition = partition_id(events)
    return [
        EventInput(
            event.get_body(),
            EventMeta(
                partition_id=partition,
                sequence_number=event.sequence_number,
                offset="" if event.offset is None else str(event.offset),
                enqueued_time=format_datetime(event.enqueued_time) if event.enqueued_time else None,
            ),
        )
        for event in events
    ]


def lag_seconds(events: Sequence[func.EventHubEvent], now: datetime) -> float | None:
    """How long the batch's oldest event waited in the hub before this invocation took it."""
    times = [e.enqueued_time for e in events if e.enqueued_time is not None]
    if not times:
        return None
    oldest = min(t if t.tzinfo else t.replace(tzinfo=UTC) for t in times)
    return max(0.0, (now - oldest).total_seconds())


def is_final_attempt(context: Any) -> bool:
    """Whether the trigger's retry policy will replay this batch again if it fails."""
    retry = getattr(context, "retry_context", None)
    if retry is None:
        return False
    return int(retry.retry_count) >= int(retry.max_retry_count)


def in_functions_host(env: Mapping[str, str]) -> bool:
    """Whether this process is a language worker started by the Functions host."""
    return any(env.get(name) for name in HOST_MARKERS)


def startup_problem(env: Mapping[str, str]) -> str | None:
    """Inside the Functions host, what is wrong with the settings (None when they are complete)."""
    if not in_functions_host(env):
        return None  # imported outside the host: tests, tools
    try:
        Settings.from_env(env)
    except ConfigError as exc:
        return str(exc)
    return None


STARTUP_PROBLEM = startup_problem(os.environ)
if STARTUP_PROBLEM:
    log.error("not consuming events until the settings are fixed: %s", STARTUP_PROBLEM)


def ingest_apim_logs(
    events: typing.List[func.EventHubEvent],  # noqa: UP006 - the worker rejects list[...]
    context: func.Context,
) -> None:
    """Flatten a batch of APIM log events and ingest it into ADX."""
    started = time.perf_counter()
    inputs = event_inputs(events)
    current = runtime()
    result = run_batch(
        current.pipeline, current.sink, inputs, final_attempt=is_final_attempt(context)
    )
    counts = result.counts()
    seconds = time.perf_counter() - started
    lag = lag_seconds(events, datetime.now(UTC))
    partition = inputs[0].meta.partition_id if inputs else ""
    current.metrics.record(
        counts, seconds=seconds, lag_seconds=lag, attributes={"partition": partition}
    )
    summary: dict[str, Any] = {
        **counts.as_dict(),
        "partition": partition,
        "first_sequence": inputs[0].meta.sequence_number if inputs else None,
        "seconds": round(seconds, 3),
        "lag_seconds": None if lag is None else round(lag, 3),
    }
    # Flat `extra` keys become customDimensions when the worker exports logs with OpenTelemetry.
    log.info("batch %s", json.dumps(summary), extra=summary)


if STARTUP_PROBLEM is None:
    app.function_name("ingest_apim_logs")(
        app.retry(
            strategy="exponential_backoff",
            max_retry_count=str(MAX_RETRIES),
            minimum_interval="00:00:10",
            maximum_interval="00:15:00",
        )(
            app.event_hub_message_trigger(
                arg_name="events",
                event_hub_name="%EVENTHUB_NAME%",
                connection="EventHubConnection",
                consumer_group="%EVENTHUB_CONSUMER_GROUP%",
                cardinality="many",
                data_type="binary",
            )(ingest_apim_logs)
        )
    )


def ingestion_status(timer: func.TimerRequest) -> None:
    """Settle queued ingestions: ADX reports their outcome later, to its status queues."""
    from ingest.sinks.adx import AdxSink
    from ingest.sinks.ingestion_status import StatusWatcher, status_queues

    current = runtime()
    sink = current.sink
    if not isinstance(sink, AdxSink) or not sink.track_status:
        return  # streaming and managed ingestion answer in the invocation itself
    counts = StatusWatcher(sink, status_queues(sink)).check()
    current.metrics.record_status(counts.succeeded, counts.failed, counts.expired)
    summary = {
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "expired": counts.expired,
        "unknown": counts.unknown,
        "past_due": timer.past_due,
    }
    level = logging.ERROR if counts.failed or counts.expired else logging.INFO
    log.log(level, "ingestion status %s", json.dumps(summary), extra=summary)


STATUS_SCHEDULE = "0 */5 * * * *"
"""Every five minutes: ADX's queued ingestion batches for 30 s (40_policies.kql) and reports soon
after, so a failure is visible within minutes."""

if STARTUP_PROBLEM is None:
    app.function_name("ingestion_status")(
        app.timer_trigger(arg_name="timer", schedule=STATUS_SCHEDULE, run_on_startup=False)(
            ingestion_status
        )
    )


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness: are the settings complete and valid? Reports problems, never secrets."""
    body: dict[str, Any]
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        body = {"status": "misconfigured", "problems": [str(exc)]}
        return func.HttpResponse(json.dumps(body), status_code=503, mimetype="application/json")
    body = {"status": "ok", "problems": [], "settings": settings.describe()}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")
