"""The Functions app: real ``azure.functions.EventHubEvent`` objects in, its metadata asserted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import function_app
from ingest.core.pipeline import Pipeline
from ingest.errors import TransientIngestError
from ingest.sinks.memory import MemorySink
from ingest.telemetry import BatchMetrics
from tests.conftest import APP_ENV, golden_settings, load_fixture

ROOT = Path(__file__).resolve().parents[2]
READER = InMemoryMetricReader()
METER = MeterProvider(metric_readers=[READER]).get_meter("ingest")
"""An SDK meter whose readings the tests can see (in Azure: the worker's Azure Monitor exporter)."""


def _metrics() -> dict[str, Any]:
    """Each instrument's data points so far, by metric name."""
    data = READER.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric.data.data_points
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def _trigger_events(bodies: list[bytes], partition: str = "3") -> list[func.EventHubEvent]:
    """Decode a batch the way the Python worker does for ``cardinality=many``."""
    system = [
        {
            "SequenceNumber": 100 + i,
            "Offset": str(4096 * (i + 1)),
            "EnqueuedTimeUtc": "2024-09-30T12:31:35.5Z",
        }
        for i in range(len(bodies))
    ]
    context = {"ConsumerGroup": "apim-adx", "EventHubPath": "apim-logs", "PartitionId": partition}
    metadata = {
        "SystemPropertiesArray": meta.Datum(json.dumps(system), "json"),
        "PartitionContext": meta.Datum(json.dumps(context), "json"),
    }
    data = meta.Datum(type="collection_bytes", value=SimpleNamespace(bytes=bodies))
    events: list[func.EventHubEvent] = EventHubTriggerConverter.decode(
        data, trigger_metadata=metadata
    )
    return events


def _context(retry_count: int, max_retry_count: int = function_app.MAX_RETRIES) -> Any:
    return SimpleNamespace(
        retry_context=SimpleNamespace(retry_count=retry_count, max_retry_count=max_retry_count)
    )


@pytest.fixture
def sink() -> Iterator[MemorySink]:
    memory = MemorySink()
    function_app.set_runtime(
        function_app.Runtime(Pipeline(golden_settings()), memory, BatchMetrics.create(METER))
    )
    yield memory
    function_app.set_runtime(None)


FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}
"""The app's functions as the host indexes them (built once: the SDK refuses to build twice)."""


def _function(name: str) -> Any:
    return FUNCTIONS[name]


def test_trigger_events_become_core_inputs_with_lineage() -> None:
    events = _trigger_events([load_fixture("throttled_429"), load_fixture("llm_logs_stream")])
    inputs = function_app.event_inputs(events)
    assert [i.meta.sequence_number for i in inputs] == [100, 101]
    assert [i.meta.offset for i in inputs] == ["4096", "8192"]
    assert {i.meta.partition_id for i in inputs} == {"3"}
    assert inputs[0].meta.enqueued_time == "2024-09-30T12:31:35.5000000Z"


def test_the_function_ingests_a_batch(sink: MemorySink, caplog: pytest.LogCaptureFixture) -> None:
    events = _trigger_events(
        [load_fixture("throttled_429"), load_fixture("poison_records"), b"\x00garbage"]
    )
    handler = _function("ingest_apim_logs").get_user_function()
    with caplog.at_level("INFO", logger="ingest"):
        handler(events, _context(0))
    assert len(sink.tables["ApimLogsLanding"]) == 2 + 1
    assert len(sink.tables["IngestDeadLetters"]) == 7 + 1
    assert {
        (r["EventPartitionId"], r["EventSequenceNumber"]) for r in sink.tables["ApimLogsLanding"]
    } == {
        ("3", 100),
        ("3", 101),
    }
    (batch,) = sink.batches
    assert (batch.partition_id, batch.first_sequence, batch.last_sequence) == ("3", 100, 102)
    (record,) = [r for r in caplog.records if r.name == "ingest"]
    summary = record.__dict__  # flat `extra` keys: customDimensions once exported
    assert summary["events"] == 3
    assert summary["records"] == 2 + 8 + 1
    assert summary["rows"] == 3
    assert summary["dead_letters"] == 8
    assert summary["partition"] == "3"
    assert summary["lag_seconds"] > 0  # enqueued in 2024
    points = _metrics()
    (rows,) = points["ingest.rows"]
    (dead,) = points["ingest.dead_letters"]
    assert (rows.value, dead.value, dict(rows.attributes)) == (3, 8, {"partition": "3"})
    (seconds,) = points["ingest.batch.seconds"]
    (lag,) = points["ingest.lag.seconds"]
    assert seconds.count == lag.count == 1
    assert lag.min > 3600


def test_a_transient_sink_failure_is_raised_for_the_retry_policy(sink: MemorySink) -> None:
    sink.failures.append(TransientIngestError("ADX is throttling"))
    handler = _function("ingest_apim_logs").get_user_function()
    with pytest.raises(TransientIngestError):
        handler(_trigger_events([load_fixture("chat_nonstream")]), _context(0))
    handler(_trigger_events([load_fixture("chat_nonstream")]), _context(1))  # the replay lands
    assert len(sink.tables["ApimLogsLanding"]) == 1


def test_the_last_retry_is_known_to_the_sink() -> None:
    assert function_app.is_final_attempt(_context(5, 5)) is True
    assert function_app.is_final_attempt(_context(4, 5)) is False
    assert function_app.is_final_attempt(SimpleNamespace()) is False


def test_binding_metadata() -> None:
    function = _function("ingest_apim_logs")
    (trigger,) = function.get_bindings()
    binding = json.loads(function.get_function_json())["bindings"][0]
    assert trigger.type == "eventHubTrigger"
    assert binding["cardinality"] == "MANY"
    assert binding["connection"] == "EventHubConnection"
    assert binding["consumerGroup"] == "%EVENTHUB_CONSUMER_GROUP%"
    assert binding["eventHubName"] == "%EVENTHUB_NAME%"
    assert binding["dataType"] == "BINARY"
    retry = function.get_setting("retry_policy").get_dict_repr()
    assert retry["strategy"] == "exponential_backoff"
    assert int(retry["max_retry_count"]) == function_app.MAX_RETRIES
    health = json.loads(_function("health").get_function_json())["bindings"][0]
    assert (health["type"], health["authLevel"], health["route"]) == (
        "httpTrigger",
        "FUNCTION",
        "health",
    )


def test_health_reports_the_missing_setting_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = _function("health").get_user_function()
    for name in APP_ENV:
        monkeypatch.delenv(name, raising=False)
    request = func.HttpRequest("GET", "/api/health", body=b"")
    response = handler(request)
    assert response.status_code == 503
    assert "`ADX_CLUSTER_URI` is missing" in response.get_body().decode()

    for name, value in APP_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0"
    )
    response = handler(request)
    body = json.loads(response.get_body())
    assert (response.status_code, body["status"]) == (200, "ok")
    assert "c2VjcmV0" not in response.get_body().decode()
    assert body["settings"]["storage"] == "connection string"


def test_importing_the_app_needs_no_setting() -> None:
    assert function_app._runtime is None or isinstance(function_app._runtime, function_app.Runtime)


HOST_KEYS = {
    "version",
    "telemetryMode",
    "logging",
    "extensions",
    "extensionBundle",
    "functionTimeout",
}
EVENT_HUBS_KEYS = {
    "maxEventBatchSize",
    "minEventBatchSize",
    "maxWaitTime",
    "batchCheckpointFrequency",
    "prefetchCount",
    "transportType",
    "customEndpointAddress",
    "targetUnprocessedEventThreshold",
    "initialOffsetOptions",
    "clientRetryOptions",
}
"""host.json keys documented for the Event Hubs extension 5.x (in extension bundle 4.x)."""


def test_host_json_uses_documented_keys_and_sane_values() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert set(host) <= HOST_KEYS
    assert host["version"] == "2.0"
    # The worker exports logs and metrics with OpenTelemetry (customDimensions, customMetrics).
    assert host["telemetryMode"] == "OpenTelemetry"
    hubs = host["extensions"]["eventHubs"]
    assert set(hubs) <= EVENT_HUBS_KEYS
    assert 1 <= hubs["minEventBatchSize"] <= hubs["maxEventBatchSize"]
    assert hubs["prefetchCount"] >= hubs["maxEventBatchSize"]
    assert hubs["batchCheckpointFrequency"] >= 1
    assert hubs["initialOffsetOptions"]["type"] in {"fromStart", "fromEnd", "fromEnqueuedTime"}
    hours, minutes, seconds = (int(p) for p in host["functionTimeout"].split(":"))
    assert 0 < hours * 3600 + minutes * 60 + seconds <= 600  # Consumption plan's maximum
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"


def test_local_settings_sample_lists_every_setting_the_app_reads() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert sample["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    for name in APP_ENV:
        if name != "AzureWebJobsStorage__accountName":
            assert name in sample, name
    for name in ("ADX_INGESTION_MODE", "CAPTURE_TEXT", "DEAD_LETTER_CONTAINER", "AZURE_CLIENT_ID"):
        assert name in sample


@pytest.mark.parametrize(
    "host",
    [
        {"FUNCTIONS_WORKER_DIRECTORY": "/azure-functions-host/workers/python/3.11/LINUX/X64"},
        {"FUNCTIONS_APPLICATION_DIRECTORY": "/home/site/wwwroot"},
    ],
    ids=["worker-directory (every plan, Flex included)", "application-directory"],
)
def test_incomplete_settings_in_the_host_register_no_trigger(host: dict[str, str]) -> None:
    import subprocess
    import sys

    probe = (
        "import function_app as f; "
        "print(sorted(x.get_function_name() for x in f.app.get_functions())); "
        "print(f.STARTUP_PROBLEM)"
    )
    # As on Flex Consumption: no FUNCTIONS_WORKER_RUNTIME app setting.
    env = {"PATH": "/usr/bin:/bin", **host, **APP_ENV, "ADX_DATABASE": ""}

    def run(env: dict[str, str]) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.splitlines()

    assert run(env) == ["['health']", "setting `ADX_DATABASE` is missing"]
    every = "['health', 'ingest_apim_logs', 'ingestion_status']"
    assert run({**env, "ADX_DATABASE": "apimlogs"}) == [every, "None"]
    # Outside the host (tools, tests) the app imports with no setting and registers both.
    outside = {"PATH": "/usr/bin:/bin", "FUNCTIONS_WORKER_RUNTIME": "python"}
    assert run(outside) == [every, "None"]


def test_the_partition_is_read_once_per_batch() -> None:
    events = _trigger_events([load_fixture("chat_nonstream")] * 64)
    reads = 0
    original = type(events[0]).metadata

    class Counting(type(events[0])):  # type: ignore[misc]
        @property
        def metadata(self) -> Any:
            nonlocal reads
            reads += 1
            return original.fget(self)  # type: ignore[attr-defined]

    for event in events:
        event.__class__ = Counting
    inputs = function_app.event_inputs(events)
    assert {i.meta.partition_id for i in inputs} == {"3"}
    assert reads == 1


def test_funcignore_ships_the_app_and_leaves_the_development_files_out() -> None:
    import fnmatch

    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)

    shipped = ["function_app.py", "host.json", "requirements.txt", "ingest", "schemas", "kusto"]
    assert [name for name in shipped if ignored(name)] == []
    assert [name for name in shipped if not (ROOT / name).exists()] == []
    left_out = [".venv", "node_modules", ".local", "tests", "local.settings.json", "demo.duckdb"]
    assert [name for name in left_out if not ignored(name)] == []
