"""The ``kusto/`` scripts as data: statements in order, generated table DDL, function bodies.

``kusto/NN_*.kql`` files run in file-name order. Statements are separated by blank lines (as in the
ADX web UI), so a statement never contains a blank line. ``10_tables.kql`` and ``20_mappings.kql``
are generated from ``schemas/`` by ``python -m ingest kusto generate``; a test fails on drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, TableSchema, load_table

KUSTO_DIR = Path(__file__).resolve().parent.parent / "kusto"
"""Folder of the scripts users apply to their ADX database."""

TABLES = (
    LANDING_TABLE,
    "ApimRequests",
    "LlmUsage",
    "LlmMessages",
    DEAD_LETTER_TABLE,
    "ModelPrices",
)
"""Every table the scripts create, in creation order."""

TABLE_FOLDERS = {
    LANDING_TABLE: "ingest",
    DEAD_LETTER_TABLE: "ingest",
    "ApimRequests": "curated",
    "LlmUsage": "curated",
    "LlmMessages": "restricted",
    "ModelPrices": "reference",
}

MAPPED_TABLES = (LANDING_TABLE, DEAD_LETTER_TABLE)
"""Tables the Functions app ingests into, each with a JSON ingestion mapping."""

MAPPING_VERSION = "v1"


def mapping_name(table: str) -> str:
    """The JSON ingestion mapping the sink references for a table."""
    return f"{table}_json_{MAPPING_VERSION}"


GENERATED = {"10_tables.kql", "20_mappings.kql"}
"""Script files written by ``generate_scripts`` (never edited by hand)."""

_HEADER = "// Generated from schemas/ by `python -m ingest kusto generate`; do not edit by hand.\n"


def _quote(text: str) -> str:
    return json.dumps(text)


def create_table(schema: TableSchema, folder: str) -> str:
    """``.create-merge table`` for one schema (idempotent: adds missing columns, keeps data)."""
    columns = ", ".join(f"{c.name}: {c.type}" for c in schema.columns)
    return (
        f".create-merge table {schema.name} ({columns}) "
        f"with (folder = {_quote(folder)}, docstring = {_quote(schema.docstring)})"
    )


def create_mapping(schema: TableSchema) -> str:
    """``.create-or-alter`` JSON ingestion mapping: every column from its own name in the row."""
    entries = [
        {"column": c.name, "path": f"$.{c.name}", "datatype": c.type} for c in schema.columns
    ]
    body = json.dumps(entries, separators=(",", ":"))
    return (
        f".create-or-alter table {schema.name} ingestion json mapping "
        f"{_quote(mapping_name(schema.name))} '{body}'"
    )


def generate_scripts() -> dict[str, str]:
    """The generated script files' contents, by file name."""
    tables = "\n".join(f"{create_table(load_table(t), TABLE_FOLDERS[t])}\n" for t in TABLES)
    mappings = "\n".join(f"{create_mapping(load_table(t))}\n" for t in MAPPED_TABLES)
    return {"10_tables.kql": _HEADER + "\n" + tables, "20_mappings.kql": _HEADER + "\n" + mappings}


@dataclass(frozen=True, slots=True)
class Statement:
    """One KQL statement or management command, with where it comes from."""

    file: str
    line: int
    text: str

    @property
    def is_command(self) -> bool:
        """A management command (starts with a dot)."""
        return self.text.startswith(".")


def split_statements(text: str, file: str = "") -> list[Statement]:
    """Blank-line separated statements; comment-only lines are dropped."""
    statements: list[Statement] = []
    lines: list[str] = []
    start = 0
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if not line.strip():
            if lines:
                statements.append(Statement(file, start, "\n".join(lines)))
                lines = []
            continue
        if line.lstrip().startswith("//"):
            continue
        if not lines:
            start = number
        lines.append(line.rstrip())
    return statements


def load_statements(folder: Path = KUSTO_DIR) -> list[Statement]:
    """Every statement of every script, in file-name order."""
    statements: list[Statement] = []
    for path in sorted(folder.glob("*.kql")):
        statements.extend(split_statements(path.read_text(encoding="utf-8"), path.name))
    return statements


def full_script(folder: Path = KUSTO_DIR) -> str:
    """All statements as one script to paste into the ADX web UI (blank-line separated)."""
    return "\n\n".join(s.text for s in load_statements(folder)) + "\n"


_FUNCTION = re.compile(
    r"^\.create-or-alter\s+function\s+(?:with\s*\((?P<props>.*?)\)\s*)?"
    r"(?P<name>\w+)\s*\((?P<params>[^)]*)\)\s*\{(?P<body>.*)\}\s*$",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class KqlFunction:
    """A stored function declared by the scripts."""

    name: str
    params: str
    body: str
    properties: str

    def declaration(self) -> str:
        """The function as ``duckdb_kql.set_functions`` and KQL ``let`` accept it."""
        return f"function {self.name}({self.params}) {{{self.body}}}"


def functions(statements: Iterable[Statement]) -> dict[str, KqlFunction]:
    """Stored functions declared with ``.create-or-alter function``, by name."""
    found = {}
    for statement in statements:
        m = _FUNCTION.match(statement.text)
        if m:
            found[m["name"]] = KqlFunction(
                m["name"], m["params"].strip(), m["body"], m["props"] or ""
            )
    return found


_UPDATE_POLICY = re.compile(
    r"^\.alter\s+table\s+(?P<table>\w+)\s+policy\s+update\s+@'(?P<json>.*)'\s*$", re.DOTALL
)


def update_policies(statements: list[Statement]) -> dict[str, list[dict[str, object]]]:
    """Update policies by target table, as declared by ``.alter table T policy update``."""
    found = {}
    for statement in statements:
        m = _UPDATE_POLICY.match(statement.text)
        if m:
            found[m["table"]] = json.loads(m["json"])
    return found
