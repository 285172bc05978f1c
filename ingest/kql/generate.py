"""The scripts derived from ``schemas/``: table DDL and JSON ingestion mappings.

``kusto/10_tables.kql`` and ``kusto/20_mappings.kql`` are written by ``python -m ingest kusto
generate`` (with ``kusto/dashboard.json``); a test fails when they drift from ``schemas/``.
"""

from __future__ import annotations

import json

from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, TableSchema, load_table, mapping_name

TABLES = (
    LANDING_TABLE,
    "ApimRequests",
    "LlmUsage",
    "LlmMessages",
    DEAD_LETTER_TABLE,
    "ModelPrices",
    "Teams",
    "Budgets",
    "DeploymentCapacity",
)
"""Every table the scripts create, in creation order."""

TABLE_FOLDERS = {
    LANDING_TABLE: "ingest",
    DEAD_LETTER_TABLE: "ingest",
    "ApimRequests": "curated",
    "LlmUsage": "curated",
    "LlmMessages": "restricted",
    "ModelPrices": "reference",
    "Teams": "reference",
    "Budgets": "reference",
    "DeploymentCapacity": "reference",
}

MAPPED_TABLES = (LANDING_TABLE, DEAD_LETTER_TABLE)
"""Tables the Functions app ingests into, each with a JSON ingestion mapping."""

GENERATED = ("10_tables.kql", "20_mappings.kql")
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
