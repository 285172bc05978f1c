"""The batch path on generated hostile input: the core, then each sink's encoding and insert.

Every case (``tests/hostile.py``) goes through ``run_batch`` twice, in a capture mode drawn for
it: into the memory sink, and into the ADX sink with a recording ingest client (the sink's own
admission and gzip JSON-lines encoding, one payload per table, read back). What each sink
delivered must reconcile with the records read, hold every good neighbour, fit its tables, and
keep no planted secret. The local store and the ADX sink over Azurite take the same cases in
``tests/integration/test_batch.py``.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given

from ingest.batch import run_batch
from ingest.config import CaptureMode
from ingest.sinks.memory import MemorySink
from tests.hostile import (
    HOSTILE,
    USAGE_PATHS,
    Case,
    batches,
    bomb,
    bomb_batches,
    deep_parts,
    examples,
    good_record,
    json_lines_bodies,
    large_envelopes,
    modes,
    number_parts,
    pipeline,
    secret_events,
    secret_parts,
    through_every_sink,
    time_parts,
    usage_body,
)


@HOSTILE
@given(batches(number_parts()), modes)
def test_numbers_past_their_columns_or_in_odd_digits(case: Case, mode: CaptureMode) -> None:
    through_every_sink(case, mode)


@pytest.mark.parametrize("shape", ["json", "sse", "cut"])
@pytest.mark.parametrize("path", USAGE_PATHS)
def test_a_count_in_a_digit_int_refuses_costs_its_record_alone(
    path: tuple[str, ...], shape: str
) -> None:
    # "²" passes `isdigit()` and fails `int()`: the record, not its neighbours or the batch.
    poison = good_record("poison")
    poison["properties"]["backendResponseBody"] = usage_body(path, "²", shape)
    case = Case()
    body = orjson.dumps({"records": [good_record("before"), poison, good_record("after")]})
    case.add(body, good=["before", "after"])
    through_every_sink(case, CaptureMode.REDACTED)


@HOSTILE
@given(batches(time_parts()), modes)
def test_times_at_the_calendars_ends_with_odd_digits_or_junk(case: Case, mode: CaptureMode) -> None:
    through_every_sink(case, mode)


@examples(40)
@given(batches(deep_parts()), modes)
def test_values_nested_deeper_than_any_parser_goes(case: Case, mode: CaptureMode) -> None:
    through_every_sink(case, mode)


@examples(20)
@given(large_envelopes(), modes)
def test_values_no_parser_takes_inside_large_envelopes(case: Case, mode: CaptureMode) -> None:
    through_every_sink(case, mode)


@HOSTILE
@given(json_lines_bodies(), modes)
def test_json_lines_with_poison_lines(case: Case, mode: CaptureMode) -> None:
    through_every_sink(case, mode)


@examples(10)
@given(bomb_batches(), modes)
def test_record_bombs_are_one_dead_letter_beside_landed_neighbours(
    case: Case, mode: CaptureMode
) -> None:
    through_every_sink(case, mode)


@examples(100)
@given(batches(secret_parts()), modes)
def test_no_secret_from_any_field_or_url_reaches_a_row_or_dead_letter(
    case: Case, mode: CaptureMode
) -> None:
    through_every_sink(case, mode)


@HOSTILE
@given(secret_events(), modes)
def test_no_secret_survives_in_the_kept_bytes_of_a_dead_event(
    case: Case, mode: CaptureMode
) -> None:
    case.add(orjson.dumps(good_record("neighbour")), good=["neighbour"])
    through_every_sink(case, mode)


def test_the_record_limit_refuses_bombs_not_large_events(monkeypatch: pytest.MonkeyPatch) -> None:
    # At the limit an event is read record by record; one record more and it is one dead letter.
    monkeypatch.setattr("ingest.core.pipeline.MAX_RECORDS_PER_EVENT", 300)
    for count, rows, dead in ((300, 1, 299), (301, 0, 1)):
        case = Case()
        case.add(bomb(count, orjson.dumps(good_record("first"))))
        result = run_batch(
            pipeline(CaptureMode.NONE),
            MemorySink(),
            case.events,
            final_attempt=True,
            keep_rows=True,
        )
        assert (result.records, len(result.rows), len(result.dead_letters)) == (
            count if rows else 1,
            rows,
            dead,
        )


@pytest.mark.parametrize(
    "poison",
    [b'{"durationMs": NaN}', b'{"userId": "\\ud800"}', b'{"userId": "\xff"}'],
    ids=["nan", "lone-surrogate", "invalid-utf8"],
)
def test_one_bad_value_in_a_megabyte_envelope_costs_one_record_in_every_sink(
    poison: bytes,
) -> None:
    goods = [f"big-{i}" for i in range(1716)]
    records = [orjson.dumps(good_record(tag)) for tag in goods]
    records.insert(858, poison)
    body = b'{"records": [' + b",".join(records) + b"]}"
    assert len(body) > 1 << 20
    case = Case()
    case.add(body, good=goods)
    through_every_sink(case, CaptureMode.REDACTED)
