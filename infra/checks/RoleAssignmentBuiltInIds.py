"""CKV_APIMADX_3: every role assignment uses a documented built-in role definition id.

A mistyped GUID deploys (or fails late) as an unknown role; the ids below are the built-in ones from
learn.microsoft.com/azure/role-based-access-control/built-in-roles (analytics, storage, monitor and
ai-machine-learning sections). The role id is read where the templates keep it: a string literal,
a variable object indexed by a property (`roles.x`) or by a parameter (`roles[access]`: all
its values).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult
from pycep import BicepParser

DOCUMENTED_ROLE_IDS = frozenset(
    {
        "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",  # Azure Event Hubs Data Receiver
        "2b629674-e913-4c01-ae53-ef4638d8f975",  # Azure Event Hubs Data Sender
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
        "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
        "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",  # Cognitive Services OpenAI User
    }
)
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _unwrap(conf: dict[str, Any]) -> dict[str, Any]:
    while isinstance(conf.get("config"), dict) and "condition" in conf:
        conf = conf["config"]
    return conf


def _parse_template(scanned_file: str) -> dict[str, Any]:
    """The template as written (checkov's own view substitutes variables across files by name)."""
    here = Path(__file__).resolve().parent.parent  # infra/
    relative = scanned_file.lstrip("/")
    for candidate in (
        Path(scanned_file),
        Path.cwd() / relative,
        here / relative,
        here.parent / relative,
    ):
        if candidate.is_file():
            return BicepParser().parse(text=candidate.read_text(encoding="utf-8"))
    return {}


def _role_ids(expression: Any, variables: dict[str, Any]) -> list[str] | None:
    """The GUIDs an expression can take, or None when it cannot be resolved."""
    if isinstance(expression, str):
        literal = GUID.search(expression)  # a GUID, or a role definition id ending in one
        if literal:
            return [literal.group(0)]
        value = variables.get(expression)
        return [value] if isinstance(value, str) and GUID.match(value) else None
    if not isinstance(expression, dict):
        return None
    function = expression.get("function")
    if isinstance(function, dict):
        if function.get("type") in (
            "subscription_resource_id",
            "resource_id",
            "tenant_resource_id",
        ):
            params = function.get("parameters") or {}
            return _role_ids(params.get("resource_name_1"), variables)
        return None
    operator = expression.get("operator")
    if isinstance(operator, dict):
        operands = operator.get("operands") or {}
        name = operands.get("operand_1")
        table = variables.get(name) if isinstance(name, str) else None
        if not isinstance(table, dict):
            return None
        if operator.get("type") == "property_accessor":
            value = table.get(operands.get("operand_2"))
            return [value] if isinstance(value, str) else None
        if operator.get("type") == "index_accessor":
            return [value for value in table.values() if isinstance(value, str)]
    return None


class RoleAssignmentBuiltInIds(BaseResourceCheck):
    """roleDefinitionId resolves to documented built-in role ids only."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure role assignments use documented built-in role definition ids",
            id="CKV_APIMADX_3",
            categories=[CheckCategories.IAM],
            supported_resources=["Microsoft.Authorization/roleAssignments"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        """PASSED when every id the expression can take is documented."""
        scanned_file, _, entity = self.entity_path.rpartition(":")
        scanned_file = scanned_file.rpartition(":")[0]
        template = _parse_template(scanned_file)
        resource = (template.get("resources") or {}).get(entity.split(".")[-1])
        if isinstance(resource, dict):
            conf = resource.get("config") or conf
        variables = {
            name: var.get("value") for name, var in (template.get("variables") or {}).items()
        }
        properties = _unwrap(conf).get("properties") or {}
        ids = _role_ids(properties.get("roleDefinitionId"), variables)
        if not ids:
            return (
                CheckResult.FAILED
            )  # not resolvable to a GUID: write the id where it can be checked
        return CheckResult.PASSED if set(ids) <= DOCUMENTED_ROLE_IDS else CheckResult.FAILED


check = RoleAssignmentBuiltInIds()
