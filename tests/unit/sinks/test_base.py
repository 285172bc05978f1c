"""``admit``: every sink's last check before encoding rows (defence in depth)."""

from __future__ import annotations

from typing import Any

from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, load_table
from ingest.sinks.base import admit
from tests.conftest import run_case


def _rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    result = run_case("throttled_429")
    return [dict(r) for r in result.rows], [
        dict(d) for d in run_case("poison_records").dead_letters
    ]


def test_rows_that_fit_pass_untouched() -> None:
    rows, letters = _rows()
    admitted = admit({LANDING_TABLE: rows, DEAD_LETTER_TABLE: letters})
    assert admitted == {LANDING_TABLE: rows, DEAD_LETTER_TABLE: letters}


def test_each_column_type_is_checked_with_its_range() -> None:
    schema = load_table(LANDING_TABLE)
    (row,) = _rows()[0][:1]
    cases = {
        "ResponseCode": [2**31, -(2**31) - 1, 3.5, "200", True],
        "DurationMs": [2**63, -(2**63) - 1],
        "Timestamp": ["2024-09-30", "２０２４-09-30T12:00:00Z", "2024-09-30T12:00:00.12345678Z"],
        "IsStreaming": [1, "true"],
    }
    for column, values in cases.items():
        for value in values:
            problems = schema.problems({**row, column: value})
            assert [p.split("`")[1] for p in problems] == [column], (column, value)
    assert schema.problems({**row, "ResponseCode": 2**31 - 1, "DurationMs": 2**63 - 1}) == []


def test_a_row_that_does_not_fit_becomes_a_dead_letter_naming_the_column() -> None:
    rows, letters = _rows()
    rows[0]["ResponseCode"] = 3_000_000_000
    rows[0]["LastErrorMessage"] = (
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghij"
    )
    admitted = admit({LANDING_TABLE: rows, DEAD_LETTER_TABLE: letters})
    assert admitted[LANDING_TABLE] == rows[1:]
    letter = admitted[DEAD_LETTER_TABLE][-1]
    assert len(admitted[DEAD_LETTER_TABLE]) == len(letters) + 1
    assert letter["Reason"] == "bad_field"
    assert "`ResponseCode` is `3000000000`: out of the range of int" in letter["Detail"]
    assert letter["RecordId"] == rows[0]["RecordId"]
    assert "eyJzdWIi" not in letter["RawPayload"]  # secrets masked in the kept row
    assert load_table(DEAD_LETTER_TABLE).problems(letter) == []


def test_a_dead_letter_that_does_not_fit_keeps_its_reason() -> None:
    _, letters = _rows()
    letters[0]["RawSize"] = 2**64
    admitted = admit({DEAD_LETTER_TABLE: letters})
    fixed = admitted[DEAD_LETTER_TABLE][0]
    assert fixed["RawSize"] is None
    assert fixed["Reason"] == letters[0]["Reason"]
    assert "[emptied: `RawSize`" in fixed["Detail"]
    assert load_table(DEAD_LETTER_TABLE).problems(fixed) == []
