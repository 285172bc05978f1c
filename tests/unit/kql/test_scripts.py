"""kusto/ scripts: generated parts in sync with schemas/, idempotent commands, sound policies."""

from __future__ import annotations

import json
import re

import pytest

from ingest.kql.generate import MAPPED_TABLES, TABLES, generate_scripts
from ingest.kql.scripts import (
    KUSTO_DIR,
    IngestionMapping,
    MaterializedView,
    Policy,
    Statement,
    Table,
    UpdatePolicy,
    database_script,
    declarations,
    functions,
    load_statements,
    split_statements,
    tables,
    unapplied_statements,
    update_policies,
    views,
)
from ingest.schema import LANDING_TABLE, load_table
from tests.conftest import FIXTURES

STATEMENTS = load_statements()
IDEMPOTENT = (".create-merge ", ".create-or-alter ", ".alter ", ".alter-merge ", ".set-or-append ")
"""Commands that can run again and again; `.create table`, `.drop`, `.set-or-replace` cannot."""


def test_generated_scripts_match_schemas() -> None:
    for name, text in generate_scripts().items():
        assert (KUSTO_DIR / name).read_text(encoding="utf-8") == text, (
            f"kusto/{name} drifted from schemas/: run `python -m ingest kusto generate`"
        )


def test_every_table_has_a_schema_and_a_create_statement() -> None:
    declared = tables(STATEMENTS)
    assert set(declared) == set(TABLES)
    for name, table in declared.items():
        assert table.columns == tuple((c.name, c.type) for c in load_table(name).columns)


def test_mappings_cover_every_column_of_the_ingested_tables() -> None:
    mappings = {d.table: d for d in declarations(STATEMENTS) if isinstance(d, IngestionMapping)}
    assert set(mappings) == set(MAPPED_TABLES)
    for table, mapping in mappings.items():
        assert list(mapping.entries) == [
            {"column": c.name, "path": f"$.{c.name}", "datatype": c.type}
            for c in load_table(table).columns
        ]


@pytest.mark.parametrize(
    "statement", [s for s in STATEMENTS if s.is_command], ids=lambda s: f"{s.file}:{s.line}"
)
def test_every_command_is_idempotent(statement: object) -> None:
    text = statement.text  # type: ignore[attr-defined]
    assert text.startswith(IDEMPOTENT), text[:80]
    if text.startswith(".set-or-append"):
        assert "join kind=leftanti" in text, "a seed must append only what is missing"


def test_update_policies_are_transactional_from_the_landing_table() -> None:
    policies = update_policies(STATEMENTS)
    declared = functions(STATEMENTS)
    assert set(policies) == {"ApimRequests", "LlmUsage", "LlmMessages"}
    for policy in policies.values():
        (entry,) = policy.entries
        assert entry["Source"] == LANDING_TABLE
        assert entry["IsTransactional"] is True
        assert entry["IsEnabled"] is True
        name = str(entry["Query"]).removesuffix("()")
        assert name in declared


def test_landing_retention_is_zero() -> None:
    assert any(
        s.text.startswith(f".alter-merge table {LANDING_TABLE} policy retention softdelete = 0d")
        for s in STATEMENTS
    )


def test_functions_have_folders_and_docstrings() -> None:
    for function in functions(STATEMENTS).values():
        assert function.properties.get("folder"), function.name
        assert function.properties.get("docstring"), function.name


def test_statement_splitting() -> None:
    text = "// header\n.a x\n  continued\n\n\n// note\n.b y\n"
    assert [(s.line, s.text) for s in split_statements(text, "f")] == [
        (2, ".a x\n  continued"),
        (7, ".b y"),
    ]


def test_the_dashboard_file_is_current_and_well_formed() -> None:
    import json

    from ingest.kql.dashboard import TILES, dashboard_json

    text = (KUSTO_DIR / "dashboard.json").read_text(encoding="utf-8")
    assert text == dashboard_json(), "run `python -m ingest kusto generate`"
    doc = json.loads(text)
    query_ids = {q["id"] for q in doc["queries"]}
    page_ids = {p["id"] for p in doc["pages"]}
    assert len(doc["tiles"]) == len(TILES)
    for tile in doc["tiles"]:
        assert tile["queryRef"]["queryId"] in query_ids
        assert tile["pageId"] in page_ids
        # As the web UI exports a tile: a description, and every option of its visual type.
        assert tile["description"] == ""
        assert {"crossFilter", "drillthrough", "crossFilterDisabled"} <= set(tile["visualOptions"])
        if tile["visualType"] != "table":
            assert tile["visualOptions"]["xColumn"] is None  # inferred from the query
    (source,) = doc["dataSources"]
    assert {q["dataSource"]["dataSourceId"] for q in doc["queries"]} == {source["id"]}


def test_each_statement_kind_is_declared_once_and_read_back() -> None:
    kinds = {type(d).__name__ for d in declarations(STATEMENTS)}
    assert kinds == {
        "Table",
        "IngestionMapping",
        "Function",
        "MaterializedView",
        "UpdatePolicy",
        "Policy",
        "Seed",
    }
    commands = [s for s in STATEMENTS if s.is_command]
    assert len(declarations(commands)) == len(commands)  # no command the parser cannot read


def test_declarations_keep_their_properties_and_source() -> None:
    (table,) = declarations(
        [Statement("t.kql", 3, '.create-merge table T (A: string, B: long) with (folder = "x")')]
    )
    assert isinstance(table, Table)
    assert (table.name, table.columns, table.properties) == (
        "T",
        (("A", "string"), ("B", "long")),
        {"folder": "x"},
    )
    assert (
        table.statement.describe()
        == 'kusto/t.kql:3 `.create-merge table T (A: string, B: long) with (folder = "x")`'
    )


# ---------------------------------------------------------------------------------------------
# Materialized views

_SINGLE_ROW_PER_KEY = re.compile(
    r"summarize\s+(take_any\(\s*\*\s*\)|arg_(max|min)\(\s*\w+\s*,\s*\*\s*\))"
)
"""The aggregations autoUpdateSchema is allowed for: take_any(*), arg_max(T, *), arg_min(T, *)."""


def test_views_of_whole_rows_follow_their_source_schema() -> None:
    # Without autoUpdateSchema, the first `.create-merge` adding a column to the source table
    # disables the view.
    whole_rows = [v for v in views(STATEMENTS).values() if _SINGLE_ROW_PER_KEY.search(v.query)]
    assert {v.name for v in whole_rows} == {"LlmUsageDedup", "ApimRequestsDedup"}
    for view in whole_rows:
        assert view.properties.get("autoupdateschema") == "true", view.name


def test_dedup_views_group_by_record_and_its_immutable_timestamp() -> None:
    for name in ("LlmUsageDedup", "ApimRequestsDedup"):
        assert views(STATEMENTS)[name].query.endswith(
            "summarize take_any(*) by RecordId, Timestamp"
        )


def _policies(kind: str) -> list[Policy]:
    return [d for d in declarations(STATEMENTS) if isinstance(d, Policy) and d.entity_kind == kind]


def _days(value: str, name: str) -> int:
    m = re.search(rf"{name}\s*=\s*(\d+)d", value)
    assert m, value
    return int(m[1])


def test_every_view_has_retention_and_caching_covering_its_source() -> None:
    declared = views(STATEMENTS)
    policies = {(p.entity, p.policy): p for p in _policies("materialized-view")}
    table_policies = {(p.entity, p.policy): p for p in _policies("table")}
    for name, view in declared.items():
        retention = policies.get((name, "retention"))
        caching = policies.get((name, "caching"))
        assert retention, f"{name} has no retention policy"
        assert caching, f"{name} has no caching policy"
        # A view is created before its policies are set (a policy on a missing view fails).
        assert STATEMENTS.index(view.statement) < STATEMENTS.index(retention.statement)
        # materialized_view() reads only the materialized part: it must keep what its source keeps.
        table = view.source if not view.over_view else declared[view.source].source
        source = table_policies[(table, "retention")]
        assert _days(retention.value, "softdelete") >= _days(source.value, "softdelete"), name


def test_every_view_the_scripts_create_is_in_a_folder() -> None:
    for view in views(STATEMENTS).values():
        assert isinstance(view, MaterializedView)
        assert view.properties.get("folder"), view.name
        assert view.properties.get("docstring"), view.name


# ---------------------------------------------------------------------------------------------
# Privacy


def test_tables_with_text_have_restricted_view_access() -> None:
    restricted = {
        p.entity
        for p in _policies("table")
        if p.policy == "restricted_view_access" and p.value == "true"
    }
    # LlmMessages holds prompts; IngestDeadLetters.RawPayload holds the input, prompts included.
    assert restricted == {"LlmMessages", "IngestDeadLetters"}
    # A table with restricted view access cannot be the source of a materialized view.
    assert not restricted & {v.source for v in views(STATEMENTS).values()}


# ---------------------------------------------------------------------------------------------
# Upgrades

RELEASED = FIXTURES / "released_schema" / "tables.json"


def _appends_only(released: list[str], current: list[str]) -> bool:
    """Whether ``current`` keeps every released column, in place, adding columns only at the end."""
    return current[: len(released)] == released


def test_schemas_only_append_columns_to_the_released_tables() -> None:
    # `.create-merge table` appends new columns at the end of a live table, whatever their place in
    # schemas/; an update function projecting schemas/' order would then no longer match its live
    # target table and every transactional ingestion would fail.
    released: dict[str, list[str]] = json.loads(RELEASED.read_text(encoding="utf-8"))["tables"]
    for table, columns in released.items():
        assert table in TABLES, f"{table} was released: the scripts cannot drop it"
        current = [f"{c.name}: {c.type}" for c in load_table(table).columns]
        assert _appends_only(columns, current), (
            f"schemas/{table}.json changes released columns (one removed, renamed, retyped, or "
            "inserted before the last released one): append new columns at the end only"
        )


@pytest.mark.parametrize(
    ("current", "ok"),
    [
        (["A: string", "B: long"], True),
        (["A: string", "B: long", "C: int"], True),  # appended
        (["A: string", "C: int", "B: long"], False),  # inserted
        (["A: string"], False),  # removed
        (["A: string", "Bee: long"], False),  # renamed
        (["A: string", "B: int"], False),  # retyped
    ],
)
def test_the_append_only_check(current: list[str], ok: bool) -> None:
    assert _appends_only(["A: string", "B: long"], current) is ok


# ---------------------------------------------------------------------------------------------
# Scripts applied and not applied


def test_only_the_numbered_scripts_are_applied() -> None:
    applied = {s.file for s in STATEMENTS}
    assert all(re.fullmatch(r"\d\d_\w+\.kql", f) for f in applied), applied
    others = {s.file for s in unapplied_statements()}
    assert others == {"runbook.kql", "alerts.kql", "optional/streaming.kql"}
    assert not any("streamingingestion" in s.text for s in STATEMENTS)


def test_the_database_script_runs_every_statement_in_order_and_stops_on_errors() -> None:
    script = database_script()
    head, _, body = script.partition("\n")
    assert head == ".execute database script with (ThrowOnErrors = true) <|"
    assert "\n\n" not in script  # the web UI runs a selection only up to its first blank line
    positions = [body.index(s.text) for s in STATEMENTS]
    assert positions == sorted(positions)


def test_update_policies_are_in_place_before_the_landing_retention_drops_to_zero() -> None:
    commands = declarations(STATEMENTS)
    landing_retention = next(
        i
        for i, d in enumerate(commands)
        if isinstance(d, Policy) and d.entity == LANDING_TABLE and d.policy == "retention"
    )
    policies = [i for i, d in enumerate(commands) if isinstance(d, UpdatePolicy)]
    assert policies
    assert max(policies) < landing_retention
    script = database_script()
    landing = next(
        s
        for s in STATEMENTS
        if s.text.startswith(f".alter-merge table {LANDING_TABLE} policy retention")
    )
    for policy in update_policies(STATEMENTS).values():
        assert script.index(policy.statement.text) < script.index(landing.text)
    # Seeds come last: a `.set-or-append` query runs to the end of its command.
    assert script.rstrip().endswith(STATEMENTS[-1].text)
    assert STATEMENTS[-1].text.startswith(".set-or-append")


def test_every_reference_table_outlives_the_database_default() -> None:
    """Reference tables (prices, teams, budgets, capacity) are kept and hot for as long as ADX keeps
    anything: retention ages extents by when they were ingested, so under the database default a
    price list or a team mapping nobody appended to for three years would vanish, and every bill
    with it."""
    table_policies = {(p.entity, p.policy): p for p in _policies("table")}
    declared = tables(STATEMENTS).values()
    reference = [t for t in declared if t.properties.get("folder") == "reference"]
    assert {t.name for t in reference} >= {"ModelPrices", "Teams", "Budgets", "DeploymentCapacity"}
    for table in reference:
        retention = table_policies.get((table.name, "retention"))
        caching = table_policies.get((table.name, "caching"))
        assert retention, f"{table.name} has no retention policy"
        assert caching, f"{table.name} has no caching policy"
        assert _days(retention.value, "softdelete") >= 36500, table.name
        assert _days(caching.value, "hot") >= 3650, table.name
        assert STATEMENTS.index(table.statement) < STATEMENTS.index(retention.statement)
