"""CKV_APIMADX_4: a Kusto database script carries a kusto/ file and stops at the first error.

Inline script text would drift from kusto/ (what `python -m ingest kusto` applies and CI validates);
continueOnErrors: true would leave a half-configured database behind a successful deployment.
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


def _unwrap(conf: dict[str, Any]) -> dict[str, Any]:
    while isinstance(conf.get("config"), dict) and "condition" in conf:
        conf = conf["config"]
    return conf


class KustoScriptFromRepository(BaseResourceCheck):
    """scriptContent is loadTextContent of a kusto/ file; continueOnErrors is false."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure Kusto database scripts load a kusto/ file and stop on errors",
            id="CKV_APIMADX_4",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["Microsoft.Kusto/clusters/databases/scripts"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        """PASSED when the script loads a kusto/ file and stops on errors."""
        properties = _unwrap(conf).get("properties") or {}
        content = properties.get("scriptContent")
        function = content.get("function") if isinstance(content, dict) else None
        loads_repo_file = (
            isinstance(function, dict)
            and function.get("type") == "load_text_content"
            and "/kusto/" in str((function.get("parameters") or {}).get("file_path", ""))
        )
        stops_on_error = properties.get("continueOnErrors") is False
        return CheckResult.PASSED if loads_repo_file and stops_on_error else CheckResult.FAILED


check = KustoScriptFromRepository()
