"""CKV_APIMADX_2: a diagnostic setting streaming to Event Hubs sends both APIM gateway categories.

The pipeline reads GatewayLogs (requests, bodies, status) and GatewayLlmLogs (token counts and
messages); a setting streaming only one of them loses half of every call.
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

REQUIRED_CATEGORIES = frozenset({"GatewayLogs", "GatewayLlmLogs"})


def _unwrap(conf: dict[str, Any]) -> dict[str, Any]:
    """A conditional resource (`= if (...)`) nests its body under `config`."""
    while isinstance(conf.get("config"), dict) and "condition" in conf:
        conf = conf["config"]
    return conf


class ApimDiagnosticSettingCategories(BaseResourceCheck):
    """Both gateway categories enabled on a setting that streams to Event Hubs."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure APIM diagnostic settings stream GatewayLogs and GatewayLlmLogs",
            id="CKV_APIMADX_2",
            categories=[CheckCategories.LOGGING],
            supported_resources=["Microsoft.Insights/diagnosticSettings"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        """PASSED when both categories are enabled."""
        properties = _unwrap(conf).get("properties") or {}
        if "eventHubAuthorizationRuleId" not in properties:
            return CheckResult.UNKNOWN  # not a setting that streams to Event Hubs
        enabled = {
            log.get("category")
            for log in properties.get("logs") or []
            if isinstance(log, dict) and log.get("enabled") is True
        }
        return CheckResult.PASSED if enabled >= REQUIRED_CATEGORIES else CheckResult.FAILED


check = ApimDiagnosticSettingCategories()
