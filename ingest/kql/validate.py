"""Static validation of ``kusto/`` with Microsoft's Kusto language service.

Python extracts what the scripts declare (tables, functions, materialized views, update policies);
``tools/kql_validate.js`` parses and analyses every statement against exactly that and reports
errors, including unknown commands and update policies whose output does not match their table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ingest.kql.scripts import (
    Function,
    MaterializedView,
    Statement,
    Table,
    UpdatePolicy,
    declarations,
    production_statements,
    unapplied_statements,
)
from ingest.schema import PROJECT_ROOT

VALIDATOR = PROJECT_ROOT / "tools" / "kql_validate.js"

DATABASE = "apimlogs"
"""The database name the validator gives the scripts' database: statements that must name it
(``kusto/runbook.kql``) use this example name, which users replace with theirs."""


@dataclass(frozen=True, slots=True)
class KqlError:
    """One validation error, located in a script file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"kusto/{self.file}:{self.line}: {self.message}"


def _where(statement: Statement) -> dict[str, Any]:
    return {"file": statement.file, "line": statement.line}


def validator_input(statements: list[Statement]) -> dict[str, Any]:
    """What the validator needs, taken from the scripts' own declarations.

    A later declaration of the same name replaces an earlier one, as in ADX (``.create-or-alter``).
    """
    tables: dict[str, dict[str, Any]] = {}
    views: dict[str, dict[str, Any]] = {}
    declared: dict[str, dict[str, Any]] = {}
    policies: list[dict[str, Any]] = []
    for d in declarations(statements):
        if isinstance(d, Table):
            tables[d.name] = {
                "name": d.name,
                "schema": d.schema,
                "columns": [{"name": n, "type": t} for n, t in d.columns],
                "doc": d.properties.get("docstring", ""),
            }
        elif isinstance(d, MaterializedView):
            views[d.name] = {"name": d.name, "query": d.query, **_where(d.statement)}
        elif isinstance(d, Function):
            declared[d.name] = {
                "name": d.name,
                "params": d.params,
                "body": d.body,
                "doc": d.properties.get("docstring", ""),
            }
        elif isinstance(d, UpdatePolicy):
            policies.extend(
                {"table": d.table, "query": str(entry["Query"]), **_where(d.statement)}
                for entry in d.entries
            )
    return {
        "database": DATABASE,
        "tables": list(tables.values()),
        "views": list(views.values()),
        "functions": list(declared.values()),
        "statements": [{"text": s.text, **_where(s)} for s in statements],
        "policies": policies,
    }


def all_statements() -> list[Statement]:
    """The applied scripts, then those validated but not applied (runbook, alerts, optional)."""
    return [*production_statements(), *unapplied_statements()]


def validate(statements: list[Statement] | None = None) -> tuple[list[KqlError], dict[str, int]]:
    """Run the language service over the scripts; returns the errors and what was checked.

    By default: every ``.kql`` file of ``kusto/`` but the local equivalents.
    """
    result = _run(statements if statements is not None else all_statements(), [])
    errors = [KqlError(e["file"], e["line"], e["message"]) for e in result["errors"]]
    return errors, {"statements": result["statements"], "policies": result["policies"]}


def result_columns(queries: list[str]) -> dict[str, list[tuple[str, str]] | None]:
    """Result columns (name, type) of each query as the language service sees it in production."""
    probes = _run(None, queries)["probes"]
    return {
        q: None if cols is None else [(c["name"], c["type"]) for c in cols]
        for q, cols in probes.items()
    }


def _run(statements: list[Statement] | None, probes: list[str]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("the KQL validator needs Node.js (`node`) on the PATH")
    if not (PROJECT_ROOT / "node_modules" / "@kusto" / "language-service-next").is_dir():
        raise RuntimeError("the KQL validator needs `npm ci` run in the project root first")
    request = validator_input(
        statements if statements is not None else list(production_statements())
    )
    request["probes"] = probes
    payload = json.dumps(request)
    done = subprocess.run(
        [node, str(VALIDATOR)],
        input=payload,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the KQL validator failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
