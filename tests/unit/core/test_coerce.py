"""Typed values from loosely typed JSON."""

from __future__ import annotations

import pytest

from ingest.core.coerce import FieldError, TimestampError, to_bool, to_datetime, to_int, to_str

US = ("%m/%d/%Y %I:%M:%S %p",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-09-30T12:31:31.4465902Z", "2024-09-30T12:31:31.4465902Z"),
        ("2024-09-30T12:31:31Z", "2024-09-30T12:31:31.0000000Z"),
        ("2024-09-30 12:31:31.123", "2024-09-30T12:31:31.1230000Z"),
        ("2024-09-30T14:31:31.5+02:00", "2024-09-30T12:31:31.5000000Z"),
        ("2024-09-30T12:31:31.123456789Z", "2024-09-30T12:31:31.1234567Z"),
        ("9/30/2024 12:31:32 PM", "2024-09-30T12:31:32.0000000Z"),
        ("9/30/2024 12:31:32 AM", "2024-09-30T00:31:32.0000000Z"),
        (1727699492, "2024-09-30T12:31:32.0000000Z"),
        (1727699492500, "2024-09-30T12:31:32.5000000Z"),
        # The calendar's ends keep four-digit years, whatever converts them.
        ("0001-01-01T00:00:00-05:00", "0001-01-01T05:00:00.0000000Z"),
        ("1/1/0001 12:00:00 AM", "0001-01-01T00:00:00.0000000Z"),
        ("0999-12-31T23:00:00-02:00", "1000-01-01T01:00:00.0000000Z"),
        (-60000000000, "0068-09-03T13:20:00.0000000Z"),
        ("NA", None),
        (None, None),
    ],
)
def test_to_datetime(value: object, expected: str | None) -> None:
    assert to_datetime(value, "time", US) == expected


@pytest.mark.parametrize("value", ["2024-02-30T00:00:00Z", "yesterday", "30.09.2024", [], {}])
def test_bad_times_raise(value: object) -> None:
    with pytest.raises(TimestampError, match="`time`"):
        to_datetime(value, "time", US)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (33, 33),
        ("33", 33),
        (" 33 ", 33),
        ("33.0", 33),
        (33.0, 33),
        ("1,024", 1024),
        ("", None),
        ("NA", None),
        (None, None),
    ],
)
def test_to_int(value: object, expected: int | None) -> None:
    assert to_int(value, "n") == expected


@pytest.mark.parametrize("value", ["thirty", 3.5, "3.5", [1]])
def test_bad_ints_raise(value: object) -> None:
    with pytest.raises(FieldError, match="`n`"):
        to_int(value, "n")


def test_to_bool_and_to_str() -> None:
    assert [to_bool(v, "b") for v in (True, 0, 1, "true", "False", "", None)] == [
        True,
        False,
        True,
        True,
        False,
        None,
        None,
    ]
    with pytest.raises(FieldError):
        to_bool("maybe", "b")
    assert [to_str(v) for v in (None, "x", 3, True, {"a": 1})] == ["", "x", "3", "true", '{"a":1}']
