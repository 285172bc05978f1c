"""CKV_APIMADX_5: Event Hubs namespaces, their network rules and ADX clusters: no public traffic.

checkov has Bicep checks for the storage account's public access (CKV_AZURE_59) and default
network rule (CKV_AZURE_35) but none for Event Hubs or ADX. The templates are public by default;
`tests/infra` scans a rendering with `privateNetwork` on (infra/.checkov-private.yaml), where this
check must pass. A namespace's network rule set may keep the trusted Microsoft services exception:
it is how APIM's diagnostic setting (Azure Monitor) reaches a namespace with no public access.
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


def _unwrap(conf: dict[str, Any]) -> dict[str, Any]:
    """A conditional resource (`= if (...)`) nests its body under `config`."""
    while isinstance(conf.get("config"), dict) and "condition" in conf:
        conf = conf["config"]
    return conf


class PublicNetworkAccessDisabled(BaseResourceCheck):
    """publicNetworkAccess is 'Disabled'; a network rule set also denies by default."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure Event Hubs namespaces and ADX clusters disable public network access",
            id="CKV_APIMADX_5",
            categories=[CheckCategories.NETWORKING],
            supported_resources=[
                "Microsoft.EventHub/namespaces",
                "Microsoft.EventHub/namespaces/networkRuleSets",
                "Microsoft.Kusto/clusters",
            ],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        """PASSED when the literal values say no public traffic."""
        properties = _unwrap(conf).get("properties") or {}
        if properties.get("publicNetworkAccess") != "Disabled":
            return CheckResult.FAILED
        if "defaultAction" in properties and properties["defaultAction"] != "Deny":
            return CheckResult.FAILED
        return CheckResult.PASSED


check = PublicNetworkAccessDisabled()
