"""The ``kusto/`` scripts as data: statements in order, each parsed once into a typed declaration.

``kusto/NN_*.kql`` files run in file-name order; the other ``.kql`` files (``runbook.kql``,
``alerts.kql``, ``optional/*.kql``) are validated but never applied. Statements are separated by
blank lines (as in the ADX web UI), so a statement never contains a blank line; ``//`` comment
lines are dropped. This is
the one parser of our scripts: generation, validation, apply, the local store and the tests all
read the declarations it returns (tables, mappings, functions, materialized views, update
policies, other policies and seeds).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ingest.schema import PROJECT_ROOT

KUSTO_DIR = PROJECT_ROOT / "kusto"
"""Folder of the scripts users apply to their ADX database."""

LOCAL_EQUIVALENTS = KUSTO_DIR / "local" / "equivalents.kql"
"""Local bodies of the functions and views whose production KQL duckdb-kql cannot run."""

APPLIED = "[0-9][0-9]_*.kql"
"""The script files applied to a database, in file-name order (``10_tables.kql`` ...)."""

NOT_APPLIED = ("runbook.kql", "alerts.kql", "optional/*.kql")
"""Script files validated with the applied ones but never applied: management commands for
operators (runbook), alert queries for the infrastructure to wire, and opt-in policies."""


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

    @property
    def verb(self) -> str:
        """The command's verb and object, e.g. ``.create-merge table`` ('' for a query)."""
        if not self.is_command:
            return ""
        words = self.text.split(None, 2)
        return " ".join(words[:2])

    def describe(self) -> str:
        """``kusto/<file>:<line> `first line``` for messages."""
        first = self.text.splitlines()[0]
        shown = first if len(first) <= 100 else first[:100] + "..."
        return f"kusto/{self.file}:{self.line} `{shown}`"


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
    """Every statement of every applied script (``NN_*.kql``), in file-name order."""
    statements: list[Statement] = []
    for path in sorted(folder.glob(APPLIED)):
        statements.extend(split_statements(path.read_text(encoding="utf-8"), path.name))
    return statements


def unapplied_statements(folder: Path = KUSTO_DIR) -> list[Statement]:
    """The statements of the scripts that are validated but not applied (see ``NOT_APPLIED``)."""
    statements: list[Statement] = []
    for pattern in NOT_APPLIED:
        for path in sorted(folder.glob(pattern)):
            name = path.relative_to(folder).as_posix()
            statements.extend(split_statements(path.read_text(encoding="utf-8"), name))
    return statements


@cache
def production_statements() -> tuple[Statement, ...]:
    """The statements of ``kusto/``, read once per process (the scripts do not change under it)."""
    return tuple(load_statements())


@cache
def local_statements() -> tuple[Statement, ...]:
    """The statements of ``kusto/local/equivalents.kql``, read once per process."""
    text = LOCAL_EQUIVALENTS.read_text(encoding="utf-8")
    return tuple(split_statements(text, LOCAL_EQUIVALENTS.name))


def full_script(folder: Path = KUSTO_DIR) -> str:
    """All statements as one script to paste into the ADX web UI (blank-line separated)."""
    return "\n\n".join(s.text for s in load_statements(folder)) + "\n"


def database_script(folder: Path = KUSTO_DIR) -> str:
    """All statements as one ``.execute database script`` that stops at the first failure.

    ADX runs the commands in order, without a transaction, so the order of the files is the order
    of the script: tables, mappings, update functions, then the update policies before the landing
    table's retention drops to 0 (40_policies.kql), views and their policies, functions, seeds.
    Every command is idempotent, so running the script again after a failure is safe. The script
    has no blank line inside (the ADX web UI runs up to the first one): select all and run.
    """
    body = "\n//\n".join(s.text for s in load_statements(folder))
    return f".execute database script with (ThrowOnErrors = true) <|\n{body}\n"


# ---------------------------------------------------------------------------------------------
# Declarations

_PROPERTY = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,)\s]+)')


def _properties(text: str | None) -> dict[str, str]:
    """``with (a = "x", b = true)`` properties, string values unquoted; names lower-cased."""
    found = {}
    for name, value in _PROPERTY.findall(text or ""):
        found[name.lower()] = json.loads(value) if value.startswith('"') else value
    return found


@dataclass(frozen=True, slots=True)
class Table:
    """``.create-merge table T (columns) with (folder, docstring)``."""

    statement: Statement
    name: str
    columns: tuple[tuple[str, str], ...]
    properties: dict[str, str]

    @property
    def schema(self) -> str:
        """The column list as KQL writes it: ``(A: string, B: long)``."""
        return "(" + ", ".join(f"{name}: {kind}" for name, kind in self.columns) + ")"


@dataclass(frozen=True, slots=True)
class IngestionMapping:
    """``.create-or-alter table T ingestion json mapping "name" '[...]'``."""

    statement: Statement
    table: str
    name: str
    entries: tuple[dict[str, str], ...]


@dataclass(frozen=True, slots=True)
class Function:
    """``.create-or-alter function with (...) Name(params) { body }``."""

    statement: Statement
    name: str
    params: str
    body: str
    properties: dict[str, str]

    def declaration(self, body: str | None = None) -> str:
        """The function as ``duckdb_kql.set_functions`` and KQL ``let`` accept it."""
        return f"function {self.name}({self.params}) {{{self.body if body is None else body}}}"


@dataclass(frozen=True, slots=True)
class MaterializedView:
    """``.create-or-alter materialized-view with (...) V on table S { query }``."""

    statement: Statement
    name: str
    source: str
    over_view: bool
    query: str
    properties: dict[str, str]


@dataclass(frozen=True, slots=True)
class UpdatePolicy:
    """``.alter table T policy update @'[...]'``: the entries of one target table."""

    statement: Statement
    table: str
    entries: tuple[dict[str, object], ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """Any other ``.alter[-merge] <entity kind> X policy P ...`` (retention, caching, ...)."""

    statement: Statement
    entity_kind: str
    entity: str
    policy: str
    value: str


@dataclass(frozen=True, slots=True)
class Seed:
    """``.set-or-append T <| query``: reference data appended when missing."""

    statement: Statement
    table: str
    query: str


Declaration = Table | IngestionMapping | Function | MaterializedView | UpdatePolicy | Policy | Seed

_TABLE = re.compile(
    r"^\.create-merge\s+table\s+(?P<name>\w+)\s*\((?P<columns>[^)]*)\)"
    r"(?:\s+with\s*\((?P<props>.*)\))?\s*$",
    re.S,
)
_MAPPING = re.compile(
    r"^\.create-or-alter\s+table\s+(?P<table>\w+)\s+ingestion\s+json\s+mapping\s+"
    r"\"(?P<name>[^\"]+)\"\s+'(?P<json>.*)'\s*$",
    re.S,
)
_FUNCTION = re.compile(
    r"^\.create-or-alter\s+function\s+(?:with\s*\((?P<props>.*?)\)\s*)?"
    r"(?P<name>\w+)\s*\((?P<params>[^)]*)\)\s*\{(?P<body>.*)\}\s*$",
    re.S,
)
_VIEW = re.compile(
    r"^\.create-or-alter\s+materialized-view\s+(?:with\s*\((?P<props>.*?)\)\s*)?(?P<name>\w+)\s+on"
    r"\s+(?P<kind>table|materialized-view)\s+(?P<source>\w+)\s*\{(?P<query>.*)\}\s*$",
    re.S,
)
_UPDATE_POLICY = re.compile(
    r"^\.alter\s+table\s+(?P<table>\w+)\s+policy\s+update\s+@'(?P<json>.*)'\s*$", re.S
)
_POLICY = re.compile(
    r"^\.alter(?:-merge)?\s+(?P<kind>table|materialized-view|database)\s+(?P<entity>\w+)\s+"
    r"policy\s+(?P<policy>\w+)\s*(?P<value>.*)$",
    re.S,
)
_SEED = re.compile(r"^\.set-or-append\s+(?P<table>\w+)\s*<\|\s*(?P<query>.*)$", re.S)


def declare(statement: Statement) -> Declaration | None:
    """What a statement declares (None for a query or a command this project does not use)."""
    text = statement.text
    if m := _TABLE.match(text):
        columns = tuple(
            (name.strip(), kind.strip())
            for name, kind in (c.split(":") for c in m["columns"].split(","))
        )
        return Table(statement, m["name"], columns, _properties(m["props"]))
    if m := _MAPPING.match(text):
        return IngestionMapping(statement, m["table"], m["name"], tuple(json.loads(m["json"])))
    if m := _FUNCTION.match(text):
        return Function(
            statement, m["name"], m["params"].strip(), m["body"], _properties(m["props"])
        )
    if m := _VIEW.match(text):
        return MaterializedView(
            statement,
            m["name"],
            m["source"],
            m["kind"] == "materialized-view",
            m["query"].strip(),
            _properties(m["props"]),
        )
    if m := _UPDATE_POLICY.match(text):
        return UpdatePolicy(statement, m["table"], tuple(json.loads(m["json"])))
    if m := _POLICY.match(text):
        return Policy(statement, m["kind"], m["entity"], m["policy"], m["value"].strip())
    if m := _SEED.match(text):
        return Seed(statement, m["table"], m["query"])
    return None


def declarations(statements: Iterable[Statement]) -> list[Declaration]:
    """The declarations of the statements that declare something, in order."""
    return [d for s in statements if (d := declare(s)) is not None]


def tables(statements: Iterable[Statement]) -> dict[str, Table]:
    """Tables by name."""
    return {d.name: d for d in declarations(statements) if isinstance(d, Table)}


def functions(statements: Iterable[Statement]) -> dict[str, Function]:
    """Stored functions by name."""
    return {d.name: d for d in declarations(statements) if isinstance(d, Function)}


def views(statements: Iterable[Statement]) -> dict[str, MaterializedView]:
    """Materialized views by name, in script order."""
    return {d.name: d for d in declarations(statements) if isinstance(d, MaterializedView)}


def update_policies(statements: Iterable[Statement]) -> dict[str, UpdatePolicy]:
    """Update policies by target table."""
    return {d.table: d for d in declarations(statements) if isinstance(d, UpdatePolicy)}


def seeds(statements: Iterable[Statement]) -> list[Seed]:
    """Seed commands, in order."""
    return [d for d in declarations(statements) if isinstance(d, Seed)]
