"""``python -m ingest query``: KQL over the local store, its errors said in the user's terms."""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from ingest.commands.table import format_table

FORMATS = ("table", "json", "csv")
"""How ``query`` prints rows."""

AGGREGATIONS = (
    "arg_max arg_min avg avgif count countif dcount dcountif make_bag make_list make_set max "
    "maxif min minif percentile percentiles stdev sum sumif take_any variance"
).split()
"""KQL aggregation functions a user is likely to mean (for suggestions)."""

_FUNCTION = re.compile(r"unsupported KQL construct 'function:(\w+)'")
_AGGREGATE = re.compile(r"unsupported KQL construct 'aggregate:(\w+)'")
_TABLE = re.compile(r"Table with name (\w+) does not exist")
_COLUMN = re.compile(r'Referenced column "(\w+)" not found.*?(?:Candidate bindings: (.*))?$', re.S)
_PARSE = re.compile(r"could not parse KQL at (\d+):(\d+): (.*)", re.S)
_UNBOUND = re.compile(
    r'(?:Column "(\w+)" referenced that exists in the SELECT clause'
    r'|Alias with name "(\w+)" exists, but aliases cannot be used)'
)
"""DuckDB's words for a column the input lacks, when the translation also names it as an alias
(``project X``, ``summarize ... by X``): it has no candidates to offer."""


def _closest(name: str, known: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(f"`{m}`" for m in matches) + "?"


def explain(
    message: str,
    tables: Sequence[str],
    functions: Sequence[str],
    not_built: Mapping[str, str] | None = None,
    columns: Sequence[str] = (),
) -> str:
    """A query error as the user wrote the query: unknown names with the closest known ones.

    ``not_built`` names the production views the store does not build, with the reason;
    ``columns`` are the store's column names, offered when the error names no candidates.
    """
    if m := _FUNCTION.search(message):
        name = m.group(1)
        known = [f"{f}()" for f in functions]
        return f"unknown function `{name}()`{_closest(name + '()', known)}"
    if m := _AGGREGATE.search(message):
        name = m.group(1)
        return f"unknown aggregation `{name}()`{_closest(name, AGGREGATIONS)}"
    if m := _TABLE.search(message):
        name = m.group(1)
        if not_built and name in not_built:
            return f"`{name}` is not built in the local store: {not_built[name]}"
        return f"unknown table `{name}`{_closest(name, tables)}"
    if m := _COLUMN.search(message):
        name, candidates = m.group(1), m.group(2) or ""
        bindings = re.findall(r'"(\w+)"', candidates)
        return f"unknown column `{name}`{_closest(name, bindings or columns)}"
    if m := _UNBOUND.search(message):
        name = m.group(1) or m.group(2)
        return f"unknown column `{name}`{_closest(name, columns)}"
    if m := _PARSE.search(message):
        line, column, detail = m.groups()
        return f"syntax error at line {line}, column {int(column) + 1}: {detail.strip()}"
    return re.sub(r"^(Catalog|Binder|Parser|Conversion|Invalid Input) Error: ", "", message)


def explain_store_error(message: str) -> str:
    """A local store's query error in the user's words: ``explain`` with the store's names."""
    from ingest.kql.generate import TABLES
    from ingest.kql.scripts import functions, production_statements, views
    from ingest.schema import load_table
    from ingest.sinks.local.kql import NOT_BUILT_LOCALLY

    statements = production_statements()
    return explain(
        message,
        [*TABLES, *views(statements)],
        list(functions(statements)),
        NOT_BUILT_LOCALLY,
        sorted({column.name for table in TABLES for column in load_table(table).columns}),
    )


def render(rows: Sequence[Mapping[str, Any]], fmt: str) -> bytes:
    """Rows as a table, a JSON array of objects, or CSV with a header."""
    if fmt == "json":
        return orjson.dumps(list(rows), default=str) + b"\n"
    if fmt == "csv":
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return out.getvalue().encode()
    return format_table(rows).encode()
