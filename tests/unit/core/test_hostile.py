"""Hostile values between good neighbours, through the core and every sink's admission check.

Each case is a poison record between two good ones: the poison becomes a dead letter with a clear
reason (never an internal error, never a traceback), the neighbours land unchanged, counts
reconcile, and every row fits its table's column types, so no store transaction can fail on it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from ingest.core.pipeline import Pipeline
from ingest.model import BatchId, EventInput
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, row_checker
from ingest.sinks.memory import MemorySink
from tests.conftest import golden_settings, load_fixture

GOOD: dict[str, Any] = orjson.loads(load_fixture("chat_nonstream"))["records"][0]


def _gateway(**properties: Any) -> dict[str, Any]:
    record = copy.deepcopy(GOOD)
    record["correlationId"] = "poison"
    record["properties"].update(properties)
    return record


def _with(key: str, value: Any) -> dict[str, Any]:
    record = copy.deepcopy(GOOD)
    record["correlationId"] = "poison"
    record[key] = value
    return record


def _llm(**properties: Any) -> dict[str, Any]:
    return {
        "time": "2024-09-30T12:31:31.4465902Z",
        "category": "GatewayLlmLogs",
        "correlationId": "poison",
        "properties": {"deploymentName": "gpt-4o", **properties},
    }


class Raw(bytes):
    """A poison record given as its JSON text (what no encoder here would write)."""


CASES: dict[str, tuple[Any, str]] = {
    "status code beyond an int": (_gateway(responseCode=3_000_000_000), "bad_field"),
    "status code below an int": (_gateway(responseCode=-2_147_483_649), "bad_field"),
    "status code as text beyond an int": (_gateway(responseCode="2147483648.0"), "bad_field"),
    "duration beyond a long": (_gateway(durationMs=2**64), "bad_field"),
    "sequence number beyond an int": (_llm(sequenceNumber=2**31), "bad_field"),
    "LLM log tokens summing past a long": (
        _llm(promptTokens=2**62, completionTokens=2**62 + 7),
        "bad_field",
    ),
    "response tokens 1e20": (
        _gateway(
            backendResponseBody='{"model": "gpt-4o", "usage": {"prompt_tokens": 1e20, '
            '"completion_tokens": 1, "total_tokens": 2}}'
        ),
        "bad_field",
    ),
    "response tokens of 2**63, which JSON readers take as an int": (
        _gateway(
            backendResponseBody='{"model": "gpt-4o", "usage": {"prompt_tokens": '
            '9223372036854775808, "completion_tokens": 1, "total_tokens": 2}}'
        ),
        "bad_field",
    ),
    "response tokens of 23 digits": (
        _gateway(
            backendResponseBody='{"model": "gpt-4o", "usage": {"prompt_tokens": '
            '"12345678901234567890123", "completion_tokens": 1}}'
        ),
        "bad_field",
    ),
    "a superscript digit": (_llm(promptTokens="²"), "bad_field"),
    "full-width digits in a time": (
        _with("time", "２０２５-10-01T00:00:00.0000000Z"),
        "bad_timestamp",
    ),
    "Arabic-Indic digits in a time": (_with("time", "٢٠٢٥-10-01T00:00:00Z"), "bad_timestamp"),
    "odd text after the fraction": (_with("time", "2025-10-01T00:00:00.000000٣Z"), "bad_timestamp"),
    "year 1 with an offset": (_with("time", "0001-01-01T00:00:00+05:00"), "bad_timestamp"),
    "year 9999 with an offset": (_with("time", "9999-12-31T23:59:59-05:00"), "bad_timestamp"),
    "an array 1,000 deep": (Raw(b"[" * 1000 + b"]" * 1000), "not_a_record"),
    "an object 300 deep as an id": (
        Raw(
            orjson.dumps({**GOOD, "correlationId": 0})[:-1].replace(
                b'"correlationId":0', b'"correlationId":' + b'{"a":' * 300 + b"1" + b"}" * 300
            )
            + b"}"
        ),
        "bad_field",
    ),
    "an object 1,000 deep in a policy payload": (
        Raw(
            b'{"timestamp": "2024-09-30T12:31:32Z", "subscription": '
            + b'{"a":' * 1000
            + b"1"
            + b"}" * 1001
        ),
        "bad_field",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_poison_record_never_sinks_its_neighbours(case: str) -> None:
    poison, reason = CASES[case]
    good = orjson.dumps(GOOD)
    text = bytes(poison) if isinstance(poison, Raw) else json.dumps(poison).encode()
    body = b'{"records": [' + good + b"," + text + b"," + good + b"]}"
    sink = MemorySink()
    result = Pipeline(golden_settings()).process([EventInput(body)])
    sink.write(
        BatchId(),
        {LANDING_TABLE: result.rows, DEAD_LETTER_TABLE: result.dead_letters},
        final_attempt=True,
    )
    assert result.counts().reconciles
    assert [r["RecordIndex"] for r in result.rows] == [0, 2]
    (dead,) = result.dead_letters
    assert (dead["Reason"], dead["RecordIndex"]) == (reason, 1), dead["Detail"]
    # What every sink admits: the same rows, all of them fitting their columns.
    assert len(sink.tables[LANDING_TABLE]) == 2
    assert len(sink.tables[DEAD_LETTER_TABLE]) == 1
    fits = row_checker(LANDING_TABLE)
    assert all(fits(row) for row in sink.tables[LANDING_TABLE])
    assert row_checker(DEAD_LETTER_TABLE)(sink.tables[DEAD_LETTER_TABLE][0])
    orjson.dumps(sink.tables[DEAD_LETTER_TABLE][0])  # encodable as every sink encodes rows


@pytest.mark.parametrize(
    ("poison", "label"),
    [
        (b'{"time": "2024-09-30T12:00:00Z", "category": "GatewayLogs", "durationMs": NaN}', "NaN"),
        (b'{"time": "2024-09-30T12:00:00Z", "category": "GatewayLogs", "x": Infinity}', "Infinity"),
        (
            b'{"time": "2024-09-30T12:00:00Z", "category": "GatewayLogs", "x": "\\ud800"}',
            "surrogate",
        ),
        (
            b'{"time": "2024-09-30T12:00:00Z", "category": "GatewayLogs", "x": "\xff\xfe"}',
            "bad UTF-8",
        ),
    ],
)
def test_one_bad_value_in_a_large_envelope_costs_one_record(poison: bytes, label: str) -> None:
    good = orjson.dumps(GOOD)
    records = [good] * 1716
    records.insert(858, poison)
    body = b'{"records": [' + b",".join(records) + b"]}"
    assert len(body) > 1 << 20
    result = Pipeline(golden_settings()).process([EventInput(body)])
    assert result.counts().reconciles
    assert len(result.rows) == 1716, label
    (dead,) = result.dead_letters
    assert (dead["Reason"], dead["RecordIndex"]) == ("not_json", 858)
    assert dead["RawSize"] == len(poison)  # the record's own bytes, not 64 KB of the event


def test_a_cut_envelope_is_not_salvaged() -> None:
    body = b'{"records": [' + b",".join([orjson.dumps(GOOD)] * 3) + b"]}"
    result = Pipeline(golden_settings()).process([EventInput(body[: len(body) // 2])])
    assert result.rows == []
    (dead,) = result.dead_letters
    assert (dead["Reason"], dead["RecordIndex"]) == ("not_json", -1)


def test_a_record_bomb_is_one_too_large_dead_letter() -> None:
    import gzip

    bomb = gzip.compress(b'{"records": [' + b",".join([b"{}"] * 200_000) + b"]}")
    assert len(bomb) < 4096
    result = Pipeline(golden_settings()).process([EventInput(bomb)])
    assert result.rows == []
    (dead,) = result.dead_letters
    assert dead["Reason"] == "too_large"
    assert "200000 records" in dead["Detail"]


def test_dead_letters_count_records_and_events_not_payloads() -> None:
    from ingest.model import EventMeta

    same_bad = b"\x00 not json"
    events = [EventInput(same_bad, EventMeta("0", sequence, "", None)) for sequence in range(5)]
    events.append(EventInput(same_bad, EventMeta("0", 4, "", None)))  # a replay of the last
    poison = b'{"records": [42, 42]}'  # two identical bad records in one event
    events.append(EventInput(poison))
    result = Pipeline(golden_settings()).process(events)
    ids = [d["RecordId"] for d in result.dead_letters]
    assert len(ids) == 8
    assert len(set(ids)) == 7  # five events, one replayed, and two records of one event
