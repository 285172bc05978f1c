"""A batch of events -> rows and dead letters: lineage, reconciliation, the safety net."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from ingest.core.pipeline import Pipeline
from ingest.model import EventInput, EventMeta
from tests.conftest import load_expected, load_fixture, run_case

META = EventMeta(
    partition_id="3",
    sequence_number=1042,
    offset="88064",
    enqueued_time="2024-09-30T12:31:35.0000000Z",
)


def test_lineage_is_copied_to_every_row(pipeline: Pipeline) -> None:
    result = pipeline.process([EventInput(load_fixture("throttled_429"), META)])
    for index, row in enumerate(result.rows):
        assert row["EventPartitionId"] == "3"
        assert row["EventSequenceNumber"] == 1042
        assert row["EventOffset"] == "88064"
        assert row["EventEnqueuedTime"] == "2024-09-30T12:31:35.0000000Z"
        assert row["RecordIndex"] == index


def test_a_batch_of_mixed_events_reconciles(pipeline: Pipeline) -> None:
    events = [
        EventInput(load_fixture("poison_records")),
        EventInput(b"\x00\x01garbage"),
        EventInput(gzip.compress(load_fixture("mixed_categories"))),
        EventInput(load_fixture("chat_nonstream")),
    ]
    result = pipeline.process(events)
    counts = result.counts()
    assert counts.events == 4
    assert counts.records == 8 + 1 + 3 + 1
    assert counts.rows == 1 + 2 + 1
    assert counts.reconciles


def test_policy_payload_without_time_takes_the_enqueued_time(pipeline: Pipeline) -> None:
    payload = orjson.loads(load_fixture("policy_aihub"))
    del payload["timestamp"]
    body = orjson.dumps(payload)
    with_meta = pipeline.process([EventInput(body, META)])
    assert with_meta.rows[0]["Timestamp"] == META.enqueued_time
    without = pipeline.process([EventInput(body)])
    assert [d["Reason"] for d in without.dead_letters] == ["bad_timestamp"]


def test_expected_files_agree_with_inputs_record_count() -> None:
    # Sanity of the golden set itself: the poison case really mixes 1 good record with 7 bad ones.
    expected = load_expected("poison_records")
    result = run_case("poison_records")
    assert result.records == len(expected["rows"]) + len(expected["dead_letters"]) == 8


def test_a_bug_in_flattening_costs_one_record_not_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = Pipeline()
    original = pipeline.flattener.flatten

    def flaky(record: object, fallback_time: str | None = None) -> object:
        if (
            isinstance(record, dict)
            and record.get("correlationId") == "b2e7d1c4-0a9f-4e61-8d3b-7c5a2f1e9d08"
        ):
            raise KeyError("a bug")
        return original(record, fallback_time)

    monkeypatch.setattr(pipeline.flattener, "flatten", flaky)
    result = pipeline.process([EventInput(load_fixture("throttled_429"))])
    assert [r["CorrelationId"] for r in result.rows] == ["d41e9b7a-6c2f-4f08-a1e3-5b7d9c0e2f64"]
    (dead,) = result.dead_letters
    assert (dead["Reason"], dead["Detail"], dead["RecordIndex"]) == (
        "internal_error",
        "KeyError: 'a bug'",
        0,
    )
    assert json.loads(dead["RawPayload"])["correlationId"] == "b2e7d1c4-0a9f-4e61-8d3b-7c5a2f1e9d08"
