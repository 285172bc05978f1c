"""The adapter, fed real ``azure.functions.EventHubEvent`` objects as the worker builds them."""

from __future__ import annotations

import json
from types import SimpleNamespace

from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter

from function_app import event_inputs
from ingest.pipeline import Pipeline
from tests.conftest import load_fixture


def _trigger_events(bodies: list[bytes], partition: str = "3") -> list:
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
    return EventHubTriggerConverter.decode(data, trigger_metadata=metadata)


def test_trigger_events_become_core_inputs_with_lineage() -> None:
    events = _trigger_events([load_fixture("throttled_429"), load_fixture("llm_logs_stream")])
    inputs = event_inputs(events)
    assert [i.meta.sequence_number for i in inputs] == [100, 101]
    assert [i.meta.offset for i in inputs] == ["4096", "8192"]
    assert {i.meta.partition_id for i in inputs} == {"3"}
    assert inputs[0].meta.enqueued_time == "2024-09-30T12:31:35.5000000Z"

    result = Pipeline().process(inputs)
    assert result.counts().as_dict()["rows"] == 5
    assert {(r["EventPartitionId"], r["EventSequenceNumber"]) for r in result.rows} == {
        ("3", 100),
        ("3", 101),
    }
