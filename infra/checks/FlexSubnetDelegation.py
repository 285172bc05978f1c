"""CKV_APIMADX_7: a virtual network's app subnet is delegated to Microsoft.App/environments.

Flex Consumption apps integrate with a subnet delegated to `Microsoft.App/environments` (not
`Microsoft.Web/serverFarms`, the delegation of the other plans):
learn.microsoft.com/azure/azure-functions/flex-consumption-plan. A network with a delegated subnet
must delegate it to that service; one with none fails (the app has nowhere to integrate).
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

FLEX_DELEGATION = "Microsoft.App/environments"


def _unwrap(conf: dict[str, Any]) -> dict[str, Any]:
    """A conditional resource (`= if (...)`) nests its body under `config`."""
    while isinstance(conf.get("config"), dict) and "condition" in conf:
        conf = conf["config"]
    return conf


class FlexSubnetDelegation(BaseResourceCheck):
    """Exactly the Flex Consumption delegation on the network's delegated subnets."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure the app subnet is delegated to Microsoft.App/environments (Flex)",
            id="CKV_APIMADX_7",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["Microsoft.Network/virtualNetworks"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        """PASSED when some subnet is delegated, and only to Flex Consumption."""
        subnets = (_unwrap(conf).get("properties") or {}).get("subnets") or []
        services = [
            (delegation.get("properties") or {}).get("serviceName")
            for subnet in subnets
            if isinstance(subnet, dict)
            for delegation in (subnet.get("properties") or {}).get("delegations") or []
            if isinstance(delegation, dict)
        ]
        if services and all(service == FLEX_DELEGATION for service in services):
            return CheckResult.PASSED
        return CheckResult.FAILED


check = FlexSubnetDelegation()
