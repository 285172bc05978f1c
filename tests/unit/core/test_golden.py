"""Golden cases: every input shape flattened, compared with rows written by hand.

Each expected row lists the columns that matter; every column it does not list must be empty
('' for strings, null otherwise). RecordId is a content hash and is checked for shape only.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ingest.model import empty_dead_letter_row, empty_landing_row
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, load_table
from tests.conftest import EXPECTED, load_expected, run_case

CASES = sorted(p.name.removesuffix(".rows.json") for p in EXPECTED.glob("*.rows.json"))
HASH = re.compile(r"[0-9a-f]{32}")
RAW_COLUMNS = ("RawPayload", "RawSize")


def _expected_row(
    empty: dict[str, Any], common: dict[str, Any], listed: dict[str, Any]
) -> dict[str, Any]:
    row = dict(empty)
    row.update(common)
    row.update(listed)
    unknown = set(row) - set(empty)
    assert not unknown, f"expected file names unknown columns {unknown}"
    return row


def test_every_fixture_has_an_expectation() -> None:
    from tests.conftest import APIM

    inputs = {p.name.split(".")[0] for p in APIM.iterdir()}
    assert inputs == set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden_rows(case: str) -> None:
    expected = load_expected(case)
    result = run_case(case)

    assert result.counts().reconciles
    assert len(result.rows) == len(expected["rows"])
    assert len(result.dead_letters) == len(expected["dead_letters"])
    columns = load_table(LANDING_TABLE).names
    for actual, listed in zip(result.rows, expected["rows"], strict=True):
        assert tuple(actual) == columns
        assert HASH.fullmatch(actual["RecordId"])
        want = _expected_row(dict(empty_landing_row()), expected.get("common", {}), listed)
        want["RecordId"] = actual["RecordId"]
        assert dict(actual) == want

    dl_columns = load_table(DEAD_LETTER_TABLE).names
    for actual_dl, listed in zip(result.dead_letters, expected["dead_letters"], strict=True):
        assert tuple(actual_dl) == dl_columns
        assert HASH.fullmatch(actual_dl["RecordId"])
        want = _expected_row(dict(empty_dead_letter_row()), {}, listed)
        want["RecordId"] = actual_dl["RecordId"]
        for column in RAW_COLUMNS:
            if column not in listed:
                assert actual_dl[column], f"dead letter lost its `{column}`"
                want[column] = actual_dl[column]
        assert dict(actual_dl) == want


def test_record_ids_are_stable_and_distinct() -> None:
    first = run_case("chat_stream_cut")
    again = run_case("chat_stream_cut")
    ids = [r["RecordId"] for r in first.rows]
    assert ids == [r["RecordId"] for r in again.rows]
    assert len(set(ids)) == len(ids)
