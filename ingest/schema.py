"""Column lists of the ADX tables, read from ``schemas/`` (the single source of truth).

``schemas/`` and ``kusto/`` are data folders at the project's top level, beside ``ingest/`` (the
Functions app deploys the folder as it is). They are read lazily, on first use, never at import.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The folder holding ``ingest/``, ``schemas/`` and ``kusto/``."""

SCHEMAS_DIR = PROJECT_ROOT / "schemas"
"""Folder holding one ``<Table>.json`` per ADX table, and the log-to-eventhub mapping."""

LANDING_TABLE = "ApimLogsLanding"
"""Table the Functions app ingests every flattened record into."""

DEAD_LETTER_TABLE = "IngestDeadLetters"
"""Table holding rejected input with its reason and raw payload."""

MAPPING_VERSION = "v1"
"""Version suffix of the JSON ingestion mappings (a new one is created when rows change shape)."""


def mapping_name(table: str) -> str:
    """The JSON ingestion mapping the sink references for a table."""
    return f"{table}_json_{MAPPING_VERSION}"


ADX_TYPES = frozenset({"string", "int", "long", "real", "bool", "datetime", "dynamic", "timespan"})
"""Scalar types the schema files may use."""


@dataclass(frozen=True, slots=True)
class Column:
    """One ADX column: name, type and a one-line description."""

    name: str
    type: str
    doc: str


INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?Z", re.ASCII)
"""The datetime text the pipeline writes (ISO 8601, UTC, at most 100 ns): what ADX and the local
store read."""


def _problem(kind: str, value: Any) -> str | None:
    """Why a value does not fit a column type (None when it fits)."""
    if value is None:
        return None
    if kind == "string":
        return None  # any JSON value is stored as its text
    if kind in ("int", "long"):
        low, high = INT_RANGE if kind == "int" else LONG_RANGE
        if type(value) is not int:
            return "not a whole number"
        return None if low <= value <= high else f"out of the range of {kind}"
    if kind == "bool":
        return None if isinstance(value, bool) else "not true or false"
    if kind == "real":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "not a number"
        return None if math.isfinite(value) else "not finite"
    if kind == "datetime":
        return None if isinstance(value, str) and _DATETIME.fullmatch(value) else "not a time"
    return None  # dynamic, timespan: anything JSON can hold


@dataclass(frozen=True, slots=True)
class TableSchema:
    """An ADX table as declared in ``schemas/<Table>.json``."""

    name: str
    docstring: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in table order."""
        return tuple(c.name for c in self.columns)

    def empty_row(self) -> dict[str, Any]:
        """A row with every column at its empty value ('' for strings, None otherwise).

        ADX strings are never null, so an absent string is ''; other types are null.
        """
        return {c.name: ("" if c.type == "string" else None) for c in self.columns}

    def problems(self, row: Mapping[str, Any]) -> list[str]:
        """Each column whose value does not fit its type, as ``Column `value`: why``."""
        found = []
        for column in self.columns:
            value = row.get(column.name)
            why = _problem(column.type, value)
            if why is not None:
                found.append(f"`{column.name}` is `{str(value)[:80]}`: {why}")
        return found


@cache
def load_table(name: str) -> TableSchema:
    """Read and check one table schema."""
    path = SCHEMAS_DIR / f"{name}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    columns = tuple(Column(c["name"], c["type"], c.get("doc", "")) for c in doc["columns"])
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate column in `{path}`")
    bad = [c for c in columns if c.type not in ADX_TYPES]
    if bad:
        raise ValueError(f"unknown ADX type `{bad[0].type}` for column `{bad[0].name}` in `{path}`")
    return TableSchema(doc["table"], doc.get("docstring", ""), columns)


@cache
def row_checker(table: str) -> Callable[[Mapping[str, Any]], bool]:
    """A fast check that every value of a row fits its column (``problems`` says what does not).

    Built once per table: the columns grouped by the check they need, so a row costs one dict
    lookup and one type test per typed column. String columns are not checked here: both ADX
    and the local store take any JSON value as its text, so no value there fails a transaction.
    """
    schema = load_table(table)
    names = {kind: tuple(c.name for c in schema.columns if c.type == kind) for kind in ADX_TYPES}
    bools, times = names["bool"], names["datetime"]
    ranged = ((names["int"], *INT_RANGE), (names["long"], *LONG_RANGE))
    others = names["real"] + names["dynamic"] + names["timespan"]
    match = _DATETIME.fullmatch

    def fits(row: Mapping[str, Any]) -> bool:
        get = row.get
        for columns, low, high in ranged:
            for name in columns:
                value = get(name)
                if value is not None and (value.__class__ is not int or not low <= value <= high):
                    return False
        for name in bools:
            value = get(name)
            if value is not None and value.__class__ is not bool:
                return False
        for name in times:
            value = get(name)
            if value is not None and (value.__class__ is not str or match(value) is None):
                return False
        return not others or not schema.problems(row)

    return fits
