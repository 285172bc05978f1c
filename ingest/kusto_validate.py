"""Static validation of ``kusto/`` with Microsoft's Kusto language service.

Python extracts what the scripts declare (tables, functions, materialized views, update policies);
``tools/kql_validate.js`` parses and analyses every statement against exactly that and reports
errors, including unknown commands and update policies whose output does not match their table.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.kusto import Statement, functions, load_statements, update_policies

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = ROOT / "tools" / "kql_validate.js"

_TABLE = re.compile(
    r"^\.create-merge table (?P<name>\w+) \((?P<columns>[^)]*)\)(?: with \((?P<props>.*)\))?$", re.S
)
_VIEW = re.compile(
    r"^\.create-or-alter materialized-view\s+(?:with\s*\(.*?\)\s*)?(?P<name>\w+)\s+on\s+"
    r"(?:table|materialized-view)\s+\w+\s*\{(?P<query>.*)\}\s*$",
    re.S,
)
_DOCSTRING = re.compile(r'docstring\s*=\s*"((?:[^"\\]|\\.)*)"', re.I)


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
    """What the validator needs, taken from the scripts themselves."""
    tables = []
    views = []
    for statement in statements:
        if m := _TABLE.match(statement.text):
            columns = [
                {"name": name.strip(), "type": kind.strip()}
                for name, kind in (c.split(":") for c in m["columns"].split(","))
            ]
            doc = _DOCSTRING.search(m["props"] or "")
            tables.append(
                {
                    "name": m["name"],
                    "schema": f"({m['columns']})",
                    "columns": columns,
                    "doc": doc[1] if doc else "",
                }
            )
        elif m := _VIEW.match(statement.text):
            views.append({"name": m["name"], "query": m["query"].strip(), **_where(statement)})
    declared = [
        {
            "name": f.name,
            "params": f.params,
            "body": f.body,
            "doc": (d[1] if (d := _DOCSTRING.search(f.properties)) else ""),
        }
        for f in functions(statements).values()
    ]
    policy_where = {
        m.group(1): _where(s)
        for s in statements
        if (m := re.match(r"^\.alter table (\w+) policy update", s.text))
    }
    policies = [
        {"table": table, "query": str(entry["Query"]), **policy_where[table]}
        for table, entries in update_policies(statements).items()
        for entry in entries
    ]
    return {
        "tables": tables,
        "views": views,
        "functions": declared,
        "statements": [{"text": s.text, **_where(s)} for s in statements],
        "policies": policies,
    }


def validate(statements: list[Statement] | None = None) -> tuple[list[KqlError], dict[str, int]]:
    """Run the language service over the scripts; returns the errors and what was checked."""
    result = _run(statements, [])
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
    if not (ROOT / "node_modules" / "@kusto" / "language-service-next").is_dir():
        raise RuntimeError("the KQL validator needs `npm ci` run in the project root first")
    request = validator_input(statements if statements is not None else load_statements())
    request["probes"] = probes
    payload = json.dumps(request)
    done = subprocess.run(
        [node, str(VALIDATOR)], input=payload, capture_output=True, text=True, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the KQL validator failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
