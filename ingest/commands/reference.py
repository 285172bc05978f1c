"""Reference tables from CSV files: ``python -m ingest reference load KIND FILE``.

``Teams``, ``Budgets`` and ``DeploymentCapacity`` hold what the logs cannot say: who pays for a
subscription, each team's monthly budget, each deployment's quota on each backend. The finance and
capacity functions (``kusto/62_finance.kql``) read them. Each is maintained as a CSV file, and a
load replaces the whole table with the file's rows: loading the same file again changes nothing.

A file is read whole before anything is written. Its header must name the table's columns
(``schemas/<Table>.json``; the required ones at least, any order, nothing else); every value must
parse as its column's type (whole numbers, finite decimals with a dot, ISO 8601 dates or times,
text without control characters), and each table has a few rules of its own (required values,
positive amounts, three-letter currency codes, one row per key). A file with problems is refused
with each problem's line and column, and nothing is loaded.

In ADX, a load is one ``.set-or-replace <Table> <| datatable(...) [...]`` command (the rows as
literals, in the table's column order); in the local store, a delete and an insert in one
transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.schema import INT_RANGE, LONG_RANGE, Column, load_table


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference table and the rules its CSV file follows."""

    kind: str
    """The name on the command line."""
    table: str
    required: tuple[str, ...]
    """Columns the header must have and every row must fill."""
    key: tuple[str, ...]
    """Columns whose values no two rows may share."""
    positive: tuple[str, ...] = ()
    """Numeric columns that must be above zero when filled."""
    currency: tuple[str, ...] = ()
    """Columns holding an ISO 4217 code (three capital letters)."""

    @property
    def columns(self) -> tuple[Column, ...]:
        """The table's columns, from ``schemas/``."""
        return load_table(self.table).columns


REFERENCES = {
    r.kind: r
    for r in (
        Reference(
            "teams",
            "Teams",
            required=("SubscriptionId", "Team"),
            key=("SubscriptionId", "EffectiveFrom"),
        ),
        Reference(
            "budgets",
            "Budgets",
            required=("Team", "MonthlyAmount", "Currency"),
            key=("Team", "Currency", "EffectiveFrom"),
            positive=("MonthlyAmount", "AlertThresholdPercent"),
            currency=("Currency",),
        ),
        Reference(
            "capacity",
            "DeploymentCapacity",
            required=("DeploymentName", "BackendId", "TokensPerMinute"),
            key=("DeploymentName", "BackendId", "EffectiveFrom"),
            positive=("TokensPerMinute", "ProvisionedUnits"),
        ),
    )
}
"""The reference tables by the name the command line gives them."""

MAX_ROWS = 10_000
"""Rows one file may hold: reference data is small, and one command carries every row."""

MAX_TEXT = 256
"""Characters one text value may hold."""

MAX_PROBLEMS = 20
"""Problems listed in the error (the count says how many more)."""

_WHOLE = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)


class ReferenceDataError(ValueError):
    """A CSV file that cannot be loaded; the message lists where and why."""


def _value(column: Column, text: str) -> Any:
    """The typed value of one cell (None when empty); ValueError says why it does not parse."""
    if not text:
        return "" if column.type == "string" else None
    if column.type == "string":
        if _CONTROL.search(text):
            raise ValueError("holds a control character (a line break, a tab, ...)")
        if len(text) > MAX_TEXT:
            raise ValueError(f"is longer than {MAX_TEXT} characters")
        return text
    if column.type in ("long", "int"):
        if not _WHOLE.fullmatch(text):
            raise ValueError("is not a whole number")
        low, high = INT_RANGE if column.type == "int" else LONG_RANGE
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"is out of the range of {column.type}")
        return number
    if column.type == "real":
        if not _DECIMAL.fullmatch(text):
            raise ValueError("is not a number (digits, with a dot for decimals)")
        real = float(text)
        if not math.isfinite(real):
            raise ValueError("is too large")
        return real
    if column.type == "datetime":
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("is not an ISO 8601 date or time (2025-10-01)") from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        return moment
    raise ValueError(f"has the type {column.type}, which reference files do not take")


def _rules(reference: Reference, row: Mapping[str, Any]) -> list[str]:
    """What one typed row breaks of its table's own rules."""
    problems = [f"`{name}` is empty" for name in reference.required if row[name] in ("", None)]
    problems += [
        f"`{name}` must be above 0, not {row[name]:g}"
        for name in reference.positive
        if row[name] is not None and row[name] <= 0
    ]
    problems += [
        f"`{name}` must be an ISO currency code of three capital letters (USD), not `{row[name]}`"
        for name in reference.currency
        if row[name] and not _CURRENCY.fullmatch(row[name])
    ]
    return problems


def read_csv(reference: Reference, path: Path) -> list[dict[str, Any]]:
    """The typed rows of a reference CSV file, every column of the table in each.

    Raises ReferenceDataError listing every problem found (unreadable file, header, values,
    rules, repeated keys): a file is loaded whole or not at all.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"{path}: cannot read it: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    columns = {c.name: c for c in reference.columns}
    expected = ",".join(columns)
    unknown = [name for name in header if name not in columns]
    missing = [name for name in reference.required if name not in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if not header or unknown or missing or repeated:
        said = [] if header else ["the file is empty"]
        if unknown:
            said.append("unknown " + ", ".join(f"`{n}`" for n in unknown))
        if missing and header:
            said.append("missing " + ", ".join(f"`{n}`" for n in missing))
        if repeated:
            said.append("repeated " + ", ".join(f"`{n}`" for n in repeated))
        raise ReferenceDataError(
            f"{path}:1: the header must name the columns of {reference.table} "
            f"({expected}; required: {', '.join(reference.required)})" + ": " + "; ".join(said)
        )
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    keys: dict[tuple[Any, ...], int] = {}
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        number = reader.line_num  # the record's (last) line in the file
        where = f"{path}:{number}"
        if len(cells) != len(header):
            problems.append(f"{where}: {len(cells)} values for the header's {len(header)} columns")
            continue
        row = {c.name: "" if c.type == "string" else None for c in reference.columns}
        bad = False
        for name, cell in zip(header, cells, strict=True):
            try:
                row[name] = _value(columns[name], cell.strip())
            except ValueError as exc:
                problems.append(f"{where}: `{name}` value `{cell.strip()[:40]}` {exc}")
                bad = True
        if bad:
            continue
        broken = _rules(reference, row)
        problems += [f"{where}: {why}" for why in broken]
        key = tuple(row[name] for name in reference.key)
        if key in keys:
            shown = ", ".join(f"{n} = {_shown(row[n])}" for n in reference.key)
            problems.append(f"{where}: repeats line {keys[key]} ({shown}): one row per key")
        else:
            keys[key] = number
        if not broken:
            rows.append(row)
    if len(rows) > MAX_ROWS:
        problems.append(f"{path}: {len(rows):,} rows; a reference file holds {MAX_ROWS:,} at most")
    if not rows and not problems:
        problems.append(
            f"{path}: no rows (a load replaces the table with the file: refusing to empty "
            f"{reference.table}; `.clear table {reference.table} data` does that on purpose)"
        )
    if problems:
        more = len(problems) - MAX_PROBLEMS
        listed = problems[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise ReferenceDataError(
            f"{path}: not loaded into {reference.table}, {len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''}:\n  " + "\n  ".join(listed)
        )
    return rows


def _shown(value: Any) -> str:
    return "(empty)" if value in ("", None) else str(value)


def _utc_text(moment: dt.datetime) -> str:
    """A naive UTC time as ISO 8601 text, its year in four digits.

    ``%Y`` writes year 999 as ``999`` on Linux, which neither KQL nor the local store reads as a
    date.
    """
    return f"{moment.isoformat(timespec='microseconds')}Z"


def _literal(kind: str, value: Any) -> str:
    """A KQL literal of a column's type."""
    if value is None:
        return f"{kind}(null)"
    if kind == "string":
        escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if kind == "datetime":
        return f"datetime({_utc_text(value)})"
    if kind == "real":
        return repr(float(value))
    return str(int(value))


def set_or_replace(reference: Reference, rows: Sequence[Mapping[str, Any]]) -> str:
    """The ADX command that replaces the table's rows with ``rows`` (idempotent)."""
    columns = reference.columns
    schema = ", ".join(f"{c.name}: {c.type}" for c in columns)
    lines = [
        "    " + ", ".join(_literal(c.type, row[c.name]) for c in columns) + "," for row in rows
    ]
    if lines:
        lines[-1] = lines[-1].removesuffix(",")
    body = "\n".join(lines)
    return f".set-or-replace {reference.table} <|\ndatatable({schema}) [\n{body}\n]"


def local_rows(reference: Reference, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the local store inserts them (times as ISO 8601 UTC text)."""
    times = [c.name for c in reference.columns if c.type == "datetime"]
    out = []
    for row in rows:
        local = dict(row)
        for name in times:
            if local[name] is not None:
                local[name] = _utc_text(local[name])
        out.append(local)
    return out
