"""Every test file that needs more than Python declares it: `make check` never starts a service."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

MARKED = {"integration": "integration", "e2e": "e2e", "infra": "infra"}


@pytest.mark.parametrize("folder", sorted(MARKED))
def test_every_file_of_a_service_folder_declares_its_marker(folder: str) -> None:
    files = sorted((ROOT / "tests" / folder).glob("test_*.py"))
    if folder != "infra":
        assert files
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        marks = [
            ast.unparse(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        ]
        assert any(f"pytest.mark.{MARKED[folder]}" in m for m in marks), path.name
