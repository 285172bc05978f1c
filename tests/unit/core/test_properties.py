"""Properties on generated and mutated input: the core is total, and nothing is lost."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.core.decode import decode_body, split_records
from ingest.core.pipeline import Pipeline
from ingest.model import EventInput, Rejected
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, load_table
from tests.conftest import golden_settings
from tests.strategies import any_records, event_bodies, good_records

PIPELINE = Pipeline(golden_settings())
LANDING = load_table(LANDING_TABLE)
DEAD = load_table(DEAD_LETTER_TABLE)
PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int, type(None)),
    "long": (int, type(None)),
    "bool": (bool, type(None)),
    "datetime": (str, type(None)),
}
FAST = settings(
    max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _check_types(row: dict[str, Any], columns: Any) -> None:
    assert tuple(row) == tuple(c.name for c in columns)
    for column in columns:
        value = row[column.name]
        assert isinstance(value, PY_TYPES[column.type]), (column.name, value)
        if column.type in ("int", "long"):
            assert not isinstance(value, bool), column.name


@FAST
@given(st.lists(event_bodies(), min_size=1, max_size=5))
def test_core_is_total_and_counts_reconcile(bodies: list[bytes]) -> None:
    result = PIPELINE.process([EventInput(b) for b in bodies])
    counts = result.counts()
    assert counts.events == len(bodies)
    assert counts.reconciles
    for row in result.rows:
        _check_types(dict(row), LANDING.columns)
        orjson.dumps(row)  # serialisable as the sink will send it
    for dead in result.dead_letters:
        _check_types(dict(dead), DEAD.columns)
        assert dead["Reason"]
        assert dead["Reason"] != "internal_error", dead["Detail"]  # the safety net stays unused
        assert dead["RawSize"] is not None


@FAST
@given(st.lists(any_records, max_size=8))
def test_every_record_lands_exactly_once_in_order(records: list[Any]) -> None:
    result = PIPELINE.process([EventInput(orjson.dumps({"records": records}))])
    indexes = sorted(
        [r["RecordIndex"] for r in result.rows] + [d["RecordIndex"] for d in result.dead_letters]
    )
    assert indexes == list(range(len(records)))


@FAST
@given(
    st.lists(good_records, min_size=1, max_size=4), st.lists(any_records, min_size=1, max_size=4)
)
def test_poison_never_changes_its_neighbours(good: list[Any], mixed: list[Any]) -> None:
    alone = PIPELINE.process([EventInput(orjson.dumps({"records": good}))]).rows
    together = PIPELINE.process([EventInput(orjson.dumps({"records": mixed + good}))]).rows
    tail = together[len(together) - len(alone) :]
    strip = lambda rows: [  # noqa: E731
        {k: v for k, v in r.items() if k not in ("RecordIndex", "RecordId")} for r in rows
    ]
    assert strip(tail) == strip(alone)


@FAST
@given(st.lists(good_records, max_size=6))
def test_total_is_prompt_plus_completion(records: list[Any]) -> None:
    for row in PIPELINE.process([EventInput(orjson.dumps({"records": records}))]).rows:
        if None not in (row["PromptTokens"], row["CompletionTokens"], row["TotalTokens"]):
            assert row["TotalTokens"] == row["PromptTokens"] + row["CompletionTokens"]
        if row["UsageSource"] == "none":
            assert row["PromptTokens"] is row["CompletionTokens"] is row["TotalTokens"] is None


@FAST
@given(st.lists(any_records, max_size=6))
def test_parse_round_trips_envelopes(records: list[Any]) -> None:
    decoded = decode_body(orjson.dumps({"records": records}))
    assert not isinstance(decoded, Rejected)
    assert split_records(decoded[0]) == records
