"""Azure Functions app (Python v2 programming model): Event Hub -> ingest core -> ADX.

Thin by design: adapt the trigger's events, run ``ingest.pipeline.run_batch``, log one summary.

Settings are validated when the Functions host loads the app. If they are incomplete, the Event Hub
trigger is not registered at all: the app consumes nothing (the consumer group keeps its place, so
no event is lost), logs the problem, and the ``health`` function reports it. Clients are built once,
lazily, on the first invocation; importing the app outside the host (the tests) needs no setting.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from ingest import core_build
from ingest.coerce import format_datetime
from ingest.errors import ConfigError
from ingest.model import EventInput, EventMeta
from ingest.pipeline import Pipeline, run_batch
from ingest.sinks.base import Sink

MAX_RETRIES = 5
"""Replays of a batch whose sink failed transiently; on the last one the sink keeps the batch."""

app = func.FunctionApp()
log = logging.getLogger("ingest")


@dataclass
class Runtime:
    """What the function needs, built once."""

    pipeline: Pipeline
    sink: Sink


_runtime: Runtime | None = None


def build_runtime(env: Mapping[str, str]) -> Runtime:
    """Validate the settings and build the ADX sink (managed identity unless told otherwise)."""
    from ingest.config import Settings
    from ingest.sinks import adx

    settings = Settings.from_env(env)
    sink = adx.sink_from_settings(settings)
    return Runtime(Pipeline(settings.core), sink)


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


def _partition_id(metadata: Mapping[str, Any] | None) -> str:
    context = (metadata or {}).get("PartitionContext")
    if isinstance(context, Mapping):
        return str(context.get("PartitionId", ""))
    return ""


def event_inputs(events: Iterable[func.EventHubEvent]) -> list[EventInput]:
    """The trigger's events as the core's inputs: body plus partition, sequence, offset, time."""
    inputs = []
    for event in events:
        enqueued = event.enqueued_time
        inputs.append(
            EventInput(
                event.get_body(),
                EventMeta(
                    partition_id=_partition_id(event.metadata),
                    sequence_number=event.sequence_number,
                    offset="" if event.offset is None else str(event.offset),
                    enqueued_time=format_datetime(enqueued) if enqueued else None,
                ),
            )
        )
    return inputs


def is_final_attempt(context: Any) -> bool:
    """Whether the trigger's retry policy will replay this batch again if it fails."""
    retry = getattr(context, "retry_context", None)
    if retry is None:
        return False
    return int(retry.retry_count) >= int(retry.max_retry_count)


def startup_problem(env: Mapping[str, str]) -> str | None:
    """Inside the Functions host, what is wrong with the settings (None when they are complete)."""
    from ingest.config import Settings

    if not env.get("FUNCTIONS_WORKER_RUNTIME"):
        return None  # imported outside the host: tests, tools
    try:
        Settings.from_env(env)
    except ConfigError as exc:
        return str(exc)
    return None


STARTUP_PROBLEM = startup_problem(os.environ)
if STARTUP_PROBLEM:
    log.error("not consuming events until the settings are fixed: %s", STARTUP_PROBLEM)


def ingest_apim_logs(events: list[func.EventHubEvent], context: func.Context) -> None:
    """Flatten a batch of APIM log events and ingest it into ADX."""
    started = time.perf_counter()
    inputs = event_inputs(events)
    current = runtime()
    result = run_batch(
        current.pipeline, current.sink, inputs, final_attempt=is_final_attempt(context)
    )
    summary: dict[str, Any] = {
        **result.counts().as_dict(),
        "partition": inputs[0].meta.partition_id if inputs else "",
        "first_sequence": inputs[0].meta.sequence_number if inputs else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("batch %s", json.dumps(summary), extra={"custom_dimensions": summary})


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


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness: are the settings complete and valid? Reports problems, never secrets."""
    from ingest.config import Settings

    body: dict[str, Any]
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        body = {"status": "misconfigured", "problems": [str(exc)]}
        return func.HttpResponse(json.dumps(body), status_code=503, mimetype="application/json")
    body = {"status": "ok", "problems": [], "settings": settings.describe(), "core": core_build()}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")
