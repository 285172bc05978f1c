"""Typed values out of loosely typed JSON: numbers sent as strings, many timestamp formats.

Each function returns the typed value, ``None`` when the value is absent, or raises ``FieldError``
naming the value when it is present but cannot be read (the caller dead-letters the record).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.core.privacy import mask_secrets

MISSING_TOKENS = frozenset({"", "na", "n/a", "null", "none", "-", "undefined", "nan"})
"""String values that mean "no value" in hand-written policy payloads."""


class FieldError(ValueError):
    """A field is present but its value cannot be read as the column's type."""


class TimestampError(FieldError):
    """A time field is present but is not a time in any accepted format."""


def to_str(value: Any) -> str:
    """A string column's value ('' when absent; numbers and booleans as text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()


def shown(value: Any) -> str:
    """A value as an error message shows it: masked first, then cut (a cut secret is unmasked)."""
    return mask_secrets(value if isinstance(value, str) else str(value))[:80]


LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
"""The range of ADX's ``long``."""

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
"""The range of ADX's ``int`` (status codes, sequence numbers)."""


def to_int(value: Any, name: str, low: int = LONG_MIN, high: int = LONG_MAX) -> int | None:
    """An integer column's value, accepting integral floats and numeric strings.

    ``low`` and ``high`` are the column's range (a long's by default; ``INT_MIN``/``INT_MAX`` for
    an ``int`` column): a value outside it is a FieldError, never a row the store refuses.
    """
    if value.__class__ is int and low <= value <= high:  # the usual case, first
        return value
    if value is None:
        return None
    number = _to_int(value, name)
    if number is not None and not low <= number <= high:
        kind = "an int" if (low, high) == (INT_MIN, INT_MAX) else "a long"
        raise FieldError(f"`{name}` is `{number}`, out of the range of {kind}")
    return number


def _to_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise FieldError(f"`{name}` is `{value}`, not a whole number")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in MISSING_TOKENS:
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            raise FieldError(f"`{name}` is `{shown(value)}`, not a number") from None
        if number.is_integer():
            return int(number)
        raise FieldError(f"`{name}` is `{shown(value)}`, not a whole number")
    raise FieldError(f"`{name}` is a {type(value).__name__}, not a number")


def to_bool(value: Any, name: str) -> bool | None:
    """A bool column's value, accepting 0/1 and 'true'/'false'."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        if text in MISSING_TOKENS:
            return None
    raise FieldError(f"`{name}` is `{shown(value)}`, not true or false")


_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE | re.ASCII,  # ADX reads ASCII digits only: "２０２５-..." is not a time
)


_fromisoformat = datetime.fromisoformat


def format_datetime(dt: datetime) -> str:
    """ISO 8601 in UTC with seven fractional digits and ``Z``, as ADX prints datetimes."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    # Not strftime: its %Y writes year 1 as "1" on Linux, a time no column reads.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond:06d}0Z"
    )


def to_datetime(value: Any, name: str, formats: Sequence[str] = ()) -> str | None:
    """A datetime column's value as ISO 8601 UTC text.

    Accepts ISO 8601 (any fraction, ``Z`` or an offset; none means UTC), Unix epoch seconds or
    milliseconds, and the ``strptime`` formats given (times without a zone are taken as UTC).
    """
    if (
        isinstance(value, str)
        and len(value) == 28
        and value[27] == "Z"
        and value[10] == "T"
        and value[19] == "."
        and value[26] in "0123456789"
        and value.isascii()
    ):
        # The diagnostic stream's own format (7 fractional digits, Z): keep it to the 100 ns.
        try:
            _fromisoformat(value[:26])
        except ValueError:
            pass
        else:
            return value
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return format_datetime(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError):
            raise TimestampError(f"`{name}` is `{value}`, not a time") from None
    if not isinstance(value, str):
        raise TimestampError(f"`{name}` is a {type(value).__name__}, not a time")
    text = value.strip()
    if text.lower() in MISSING_TOKENS:
        return None
    m = _ISO.fullmatch(text)
    if m is not None:
        year, month, day, hour, minute, second, frac, zone = m.groups()
        try:
            # Validates the calendar (no 2024-02-30) without losing the 7th fractional digit.
            datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        except ValueError:
            raise TimestampError(f"`{name}` is `{shown(text)}`, not a valid time") from None
        frac7 = (frac or "").ljust(7, "0")[:7]
        if zone is None or zone.upper() == "Z" or zone.replace(":", "") in ("+0000", "-0000"):
            return f"{year}-{month}-{day}T{hour}:{minute}:{second}.{frac7}Z"
        offset = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
        frac6 = (frac or "").ljust(6, "0")[:6]
        iso = f"{year}-{month}-{day}T{hour}:{minute}:{second}.{frac6}{offset}"
        try:
            return format_datetime(datetime.fromisoformat(iso))
        except (ValueError, OverflowError):  # year 1 or 9999 moved past the calendar by an offset
            raise TimestampError(f"`{name}` is `{shown(text)}`, not a valid time") from None
    for fmt in formats:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return format_datetime(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    raise TimestampError(f"`{name}` is `{shown(text)}`, not a time in a known format")
