"""Offline checks of the deployment templates (infra/, azure.yaml): nothing here talks to Azure.

* every template parses with tree-sitter-bicep (no ERROR or MISSING node);
* checkov passes with the skip list of infra/.checkov.yaml and the custom checks of infra/checks/,
  and those custom checks do fail on templates that break them;
* the Functions app's settings are exactly the contract with ingest/config.py;
* role assignments use documented built-in role ids and deterministic names;
* every file a template loads exists; every command a Kusto script resource carries has a verb that
  resource accepts; every kusto/NN_*.kql file is applied (by a script resource or the
  postprovision hook);
* the log-to-eventhub policy fragment writes field names that the mapping lands in columns.

Run: `python -m pytest tests/infra -q` (checkov from $CHECKOV, beside this Python, or on PATH).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ingest.config import DEPLOYED_SETTINGS
from ingest.core.pipeline import Pipeline
from ingest.kql.scripts import split_statements
from ingest.model import BatchResult, EventInput
from tests.infra import bicep
from tests.infra.bicep import Expr

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
KUSTO_DIR = REPO / "kusto"

# Built-in role definition ids, from
# learn.microsoft.com/azure/role-based-access-control/built-in-roles
# (sections: analytics for Event Hubs, storage, monitor, ai-machine-learning for Azure OpenAI).
BUILT_IN_ROLES = {
    "Azure Event Hubs Data Receiver": "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
    "Azure Event Hubs Data Sender": "2b629674-e913-4c01-ae53-ef4638d8f975",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Cognitive Services OpenAI User": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
}
APP_ROLES = (
    "Azure Event Hubs Data Receiver",
    "Storage Blob Data Owner",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
    "Monitoring Metrics Publisher",
)

# learn.microsoft.com/azure/data-explorer/database-script: "The script can only run database level
# management commands that start with the following verbs".
SCRIPT_RESOURCE_VERBS = frozenset(
    {".create", ".create-or-alter", ".create-merge", ".alter", ".alter-merge", ".add"}
)
SEED_COMMAND = 'python -m ingest kusto seed --cluster "$ADX_CLUSTER_URI" --database "$ADX_DATABASE"'
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CUSTOM_CHECKS = ("CKV2_APIMADX_1", "CKV_APIMADX_2", "CKV_APIMADX_3", "CKV_APIMADX_4")


def deployed_settings() -> frozenset[str]:
    """The app settings a deployment sets: ingest.config.DEPLOYED_SETTINGS, name for name."""
    return DEPLOYED_SETTINGS


def of_type(kind: str) -> list[bicep.Resource]:
    return [r for r in bicep.all_resources() if r.type == kind and not r.existing]


def kql_statements(path: Path) -> list[str]:
    """A kusto/ file's statements, split by the project's one KQL parser."""
    return [st.text for st in split_statements(path.read_text(encoding="utf-8"), path.name)]


def command_verbs(path: Path) -> list[str]:
    """The verb of every management command (a statement starting with `.`) of a kusto/ file."""
    return [s.split()[0] for s in kql_statements(path) if s.lstrip().startswith(".")]


def script_resources_in_order() -> list[bicep.Resource]:
    """Database script resources, following their dependsOn chain from the first."""
    scripts = {r.symbol: r for r in of_type("Microsoft.Kusto/clusters/databases/scripts")}
    after = {}
    for script in scripts.values():
        for dep in script.body.get("dependsOn", []):
            if isinstance(dep, Expr) and dep.text in scripts:
                after[dep.text] = script.symbol
    first = [s for s in scripts if not any(after.get(other) == s for other in scripts)]
    assert len(first) == 1, f"script resources must form one chain, heads: {first}"
    chain = [first[0]]
    while chain[-1] in after:
        chain.append(after[chain[-1]])
    assert len(chain) == len(scripts), "every script resource must be on the one dependsOn chain"
    return [scripts[s] for s in chain]


def loaded_kql(resource: bicep.Resource) -> Path:
    content = resource.body["properties"]["scriptContent"]
    match = re.fullmatch(
        r"loadTextContent\('([^']+)'\)", content.text if isinstance(content, Expr) else ""
    )
    assert match, f"{resource.symbol}: scriptContent must be loadTextContent('<kusto file>')"
    return (resource.path.parent / match.group(1)).resolve()


def azure_yaml() -> str:
    return (REPO / "azure.yaml").read_text(encoding="utf-8")


def postprovision_runs_seed() -> bool:
    hook = azure_yaml().split("postprovision:", 1)
    return len(hook) == 2 and SEED_COMMAND in hook[1]


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: p.name)
def test_template_parses_with_tree_sitter(path: Path) -> None:
    assert bicep.problems(path) == []


def test_templates_exist_in_the_azd_layout() -> None:
    assert (REPO / "infra" / "main.bicep").is_file()
    parameters = json.loads((REPO / "infra" / "main.parameters.json").read_text(encoding="utf-8"))
    assert parameters["parameters"]["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    modules = {
        r.body.get("name")
        for r in bicep.resources(REPO / "infra" / "main.bicep")
        if r.type == "module"
    }
    assert {"monitoring", "storage", "eventhubs", "rbac", "adx", "functionapp"} <= modules
    for path in bicep.bicep_files():
        text = path.read_text(encoding="utf-8")
        assert "br/public:" not in text, f"{path.name}: local modules only"
        assert "br:" not in text, f"{path.name}: local modules only"


def test_module_calls_match_module_parameters() -> None:
    # No Bicep compiler offline: at least every module call must pass known parameters and all
    # the required ones, and main.parameters.json must name main.bicep's parameters.
    for path in bicep.bicep_files():
        for symbol, target, passed in bicep.module_calls(path):
            assert target.is_file(), f"{path.name}: module {symbol} -> missing {target}"
            declared = bicep.parameters(target)
            assert passed - set(declared) == set(), f"{path.name}: {symbol} passes unknown params"
            required = {name for name, has_default in declared.items() if not has_default}
            assert required - passed == set(), f"{path.name}: {symbol} misses required params"
    main = REPO / "infra" / "main.bicep"
    parameters = json.loads((REPO / "infra" / "main.parameters.json").read_text(encoding="utf-8"))
    assert set(parameters["parameters"]) <= set(bicep.parameters(main))


# ------------------------------------------------------------------ checkov


def checkov_command() -> list[str]:
    candidates = [os.environ.get("CHECKOV", ""), str(Path(sys.executable).with_name("checkov"))]
    candidates.append(shutil.which("checkov") or "")
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return [candidate]
    pytest.fail(
        "checkov not found: `make infra` installs it into .venv-infra and sets CHECKOV "
        "(it cannot share the dev venv: it pins packaging<24, pytest needs >=24)"
    )


def run_checkov(*args: str) -> tuple[dict[str, Any], str]:
    completed = subprocess.run(
        [*checkov_command(), *args, "-o", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.stdout.strip(), completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    report = report[0] if isinstance(report, list) else report
    return report, completed.stderr


def run_custom_checks(folder: Path, checks: str) -> tuple[dict[str, Any], str]:
    """checkov on a folder of (deliberately bad) templates, with only the project's checks."""
    return run_checkov(
        "--framework",
        "bicep",
        "--skip-download",
        "-d",
        str(folder),
        "--external-checks-dir",
        str(REPO / "infra" / "checks"),
        "-c",
        checks,
    )


@pytest.fixture(scope="module")
def checkov_report() -> tuple[dict[str, Any], str]:
    return run_checkov("--config-file", "infra/.checkov.yaml")


def test_checkov_passes_with_the_skip_list(checkov_report: tuple[dict[str, Any], str]) -> None:
    report, stderr = checkov_report
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0, (
        "checkov could not read a template: its checks did not run"
    )
    assert "Failed to run check" not in stderr


def test_checkov_ran_the_custom_checks(checkov_report: tuple[dict[str, Any], str]) -> None:
    report, _ = checkov_report
    passed: dict[str, set[str]] = {}
    for check in report["results"]["passed_checks"]:
        passed.setdefault(check["check_id"], set()).add(check["resource"])
    roles = {r.symbol for r in of_type("Microsoft.Authorization/roleAssignments")}
    scripts = {r.symbol for r in of_type("Microsoft.Kusto/clusters/databases/scripts")}
    assert "Microsoft.Kusto/clusters/databases.database" in passed["CKV2_APIMADX_1"]
    assert passed["CKV_APIMADX_2"] == {"Microsoft.Insights/diagnosticSettings.gatewayLogsToHub"}
    assert {r.split(".")[-1] for r in passed["CKV_APIMADX_3"]} == roles
    assert {r.split(".")[-1] for r in passed["CKV_APIMADX_4"]} == scripts


BAD_TEMPLATE = """
param clusterName string
var madeUp = '00000000-1111-2222-3333-444444444444'
param apimName string
param principalId string

resource database 'Microsoft.Kusto/clusters/databases@2024-04-13' = {
  name: '${clusterName}/db'
  location: 'westeurope'
  kind: 'ReadWrite'
  properties: {
    softDeletePeriod: 'P1D'
  }
}

resource apim 'Microsoft.ApiManagement/service@2024-05-01' existing = {
  name: apimName
}

resource onlyGatewayLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-hub'
  scope: apim
  properties: {
    eventHubAuthorizationRuleId: 'rule'
    eventHubName: 'hub'
    logs: [
      {
        category: 'GatewayLogs'
        enabled: true
      }
    ]
  }
}

resource madeUpRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(principalId, 'made-up')
  properties: {
    principalId: principalId
    roleDefinitionId: '/providers/Microsoft.Authorization/roleDefinitions/${madeUp}'
  }
}

resource inlineScript 'Microsoft.Kusto/clusters/databases/scripts@2024-04-13' = {
  parent: database
  name: 'inline'
  properties: {
    scriptContent: '.create-merge table T (a: string)'
    continueOnErrors: true
  }
}
"""


def test_custom_checks_fail_templates_that_break_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bad.bicep").write_text(BAD_TEMPLATE, encoding="utf-8")
    # bad.bicep's database has a script (the inline one): CKV2_APIMADX_1 is tried on another one.
    lonely = BAD_TEMPLATE.split("resource apim", 1)[0].replace(
        "resource database", "resource lonely"
    )
    (bad / "no_scripts.bicep").write_text(lonely.replace("/db'", "/lonely'"), encoding="utf-8")
    report, stderr = run_custom_checks(bad, ",".join(CUSTOM_CHECKS))
    failed = {
        (c["check_id"], c["file_path"].rsplit("/", 1)[-1])
        for c in report["results"]["failed_checks"]
    }
    assert ("CKV2_APIMADX_1", "no_scripts.bicep") in failed
    assert ("CKV_APIMADX_2", "bad.bicep") in failed
    assert ("CKV_APIMADX_3", "bad.bicep") in failed
    assert ("CKV_APIMADX_4", "bad.bicep") in failed
    assert "Failed to run check" not in stderr


def test_checkov_skips_are_justified() -> None:
    config = (REPO / "infra" / ".checkov.yaml").read_text(encoding="utf-8")
    section = config.split("skip-check:", 1)[1]
    comment_seen = False
    for line in section.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment_seen = True
        elif stripped.startswith("- "):
            assert comment_seen, f"skip without a justification comment above it: {stripped}"
            assert "#" in stripped, f"say what the skipped check is: {stripped}"


# ------------------------------------------------------------------ the Functions app


def app_settings() -> dict[str, Any]:
    (config,) = [
        r for r in of_type("Microsoft.Web/sites/config") if r.body.get("name") == "appsettings"
    ]
    return config.body["properties"]


def test_app_settings_are_exactly_the_contract() -> None:
    settings = app_settings()
    assert set(settings) == deployed_settings()
    assert settings["EventHubConnection__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(settings)
    # One identity for everything: the three client ids are the same parameter.
    client_ids = {
        settings[k].text
        for k in (
            "EventHubConnection__clientId",
            "AzureWebJobsStorage__clientId",
            "AZURE_CLIENT_ID",
        )
    }
    assert client_ids == {"identityClientId"}


def test_flex_consumption_app() -> None:
    (plan,) = of_type("Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.body["properties"]["reserved"] is True
    (site,) = of_type("Microsoft.Web/sites")
    assert site.body["kind"] == "functionapp,linux"
    assert site.body["identity"]["type"] == "UserAssigned"
    config = site.body["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    scale = config["scaleAndConcurrency"]
    assert {"instanceMemoryMB", "maximumInstanceCount", "alwaysReady"} <= set(scale)
    text = site.path.read_text(encoding="utf-8")
    # flex-consumption-how-to: always ready for a non-HTTP trigger is `function:<FUNCTION_NAME>`.
    assert "name: 'function:${triggerFunctionName}'" in text
    assert re.search(
        r"@allowed\(\[\s*2048\s*4096\s*\]\)\s*(@description\([^\n]*\)\s*)?"
        r"param instanceMemoryMB int",
        text,
    )
    main = (REPO / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert "var triggerFunctionName = 'ingest_apim_logs'" in main
    assert 'app.function_name("ingest_apim_logs")' in (REPO / "function_app.py").read_text(
        encoding="utf-8"
    )


def test_storage_account_is_locked_to_identities() -> None:
    (account,) = of_type("Microsoft.Storage/storageAccounts")
    properties = account.body["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    (lifecycle,) = of_type("Microsoft.Storage/storageAccounts/managementPolicies")
    (rule,) = lifecycle.body["properties"]["policy"]["rules"]
    assert rule["definition"]["filters"]["prefixMatch"][0].text == "'${deadLetterContainerName}/'"
    main = (REPO / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert "param deadLetterContainerName string = 'ingest-deadletters'" in main


def test_monitoring_uses_entra_auth() -> None:
    (component,) = of_type("Microsoft.Insights/components")
    assert component.body["properties"]["DisableLocalAuth"] is True
    assert isinstance(component.body["properties"]["WorkspaceResourceId"], Expr)


# ------------------------------------------------------------------ roles


def test_role_ids_are_documented_built_in_ids() -> None:
    documented = set(BUILT_IN_ROLES.values())
    role_files = {r.path for r in of_type("Microsoft.Authorization/roleAssignments")}
    seen = set()
    for path in role_files:
        for guid in GUID.findall(path.read_text(encoding="utf-8")):
            assert guid in documented, f"{path.name}: {guid} is not a documented built-in role id"
            seen.add(guid)
    for role in APP_ROLES:
        assert BUILT_IN_ROLES[role] in seen, f"no assignment of {role}"


def test_role_assignments_are_deterministic_and_narrow() -> None:
    for role in of_type("Microsoft.Authorization/roleAssignments"):
        name = role.body["name"]
        assert isinstance(name, Expr), f"{role.symbol}: name must be guid(...)"
        assert name.text.startswith("guid("), f"{role.symbol}: name must be guid(...)"
        assert "scope" in role.body, f"{role.symbol}: scope it to the resource, not the group"
        assert role.body["properties"]["principalType"] == "ServicePrincipal"
    (hub_role,) = [
        r
        for r in of_type("Microsoft.Authorization/roleAssignments")
        if r.path.name == "hub-role.bicep"
    ]
    assert hub_role.body["scope"].text == "hub"  # the event hub, not the namespace


def test_apim_diagnostics_rule_has_the_documented_rights() -> None:
    # diagnostic-settings: "Streaming to event hubs requires Manage, Send, and Listen permissions".
    (rule,) = of_type("Microsoft.EventHub/namespaces/authorizationRules")
    assert sorted(rule.body["properties"]["rights"]) == ["Listen", "Manage", "Send"]


# ------------------------------------------------------------------ ADX and kusto/


def test_loaded_files_exist() -> None:
    loads = [
        (path, fn, file) for path in bicep.bicep_files() for fn, file in bicep.loaded_files(path)
    ]
    assert loads
    missing = [f"{path.name}: {fn}({file})" for path, fn, file in loads if not file.is_file()]
    assert missing == []


def test_script_resources_carry_only_accepted_commands() -> None:
    for script in script_resources_in_order():
        path = loaded_kql(script)
        verbs = command_verbs(path)
        assert verbs, f"{path.name}: no command"
        refused = sorted(set(verbs) - SCRIPT_RESOURCE_VERBS)
        assert refused == [], (
            f"{script.symbol} loads {path.name}, whose {refused} a script resource refuses"
        )
        assert script.body["properties"]["continueOnErrors"] is False


def test_script_resources_apply_kusto_files_in_name_order() -> None:
    files = [loaded_kql(script).name for script in script_resources_in_order()]
    assert files == sorted(files)


def test_every_kusto_file_is_applied() -> None:
    loaded = {loaded_kql(script) for script in script_resources_in_order()}
    for path in sorted(KUSTO_DIR.glob("[0-9][0-9]_*.kql")):
        if path.resolve() in loaded:
            continue
        assert postprovision_runs_seed(), (
            f"{path.name} is neither loaded nor seeded by the postprovision hook"
        )
        # Only what a script resource cannot run is left to the hook.
        assert set(command_verbs(path)) - SCRIPT_RESOURCE_VERBS, (
            f"{path.name}: load it in a script resource"
        )


def test_adx_principals() -> None:
    assignments = of_type("Microsoft.Kusto/clusters/databases/principalAssignments")
    roles = {a.body["properties"]["role"] for a in assignments}
    assert {"Ingestor", "Admin", "UnrestrictedViewer"} <= roles
    (ingestor,) = [a for a in assignments if a.body["properties"]["role"] == "Ingestor"]
    assert ingestor.body["properties"]["principalType"] == "App"


def test_main_outputs_what_the_hook_and_app_need() -> None:
    main = (REPO / "infra" / "main.bicep").read_text(encoding="utf-8")
    for name in (
        "ADX_CLUSTER_URI",
        "ADX_INGEST_URI",
        "ADX_DATABASE",
        "EVENTHUB_NAME",
        "AZURE_FUNCTION_APP_NAME",
    ):
        assert re.search(rf"^output {name} string = ", main, re.MULTILINE), name


def test_azure_yaml_service_and_hook() -> None:
    text = azure_yaml()
    service = text.split("services:", 1)[1].split("hooks:", 1)[0]
    assert re.search(
        r"^  ingest:\n    project: \.\n    language: python\n    host: function\n",
        service,
        re.MULTILINE,
    )
    assert len(re.findall(r"^  \S+:$", service, re.MULTILINE)) == 1, "one service"
    assert postprovision_runs_seed()


# ------------------------------------------------------------------ APIM


def test_apim_wiring() -> None:
    (setting,) = of_type("Microsoft.Insights/diagnosticSettings")
    categories = {
        log["category"] for log in setting.body["properties"]["logs"] if log["enabled"] is True
    }
    assert categories == {"GatewayLogs", "GatewayLlmLogs"}
    (api_diag,) = of_type("Microsoft.ApiManagement/service/apis/diagnostics")
    properties = api_diag.body["properties"]
    for side in ("frontend", "backend"):
        for direction in ("request", "response"):
            assert properties[side][direction].text == "bodySettings"
    llm = properties["largeLanguageModel"]
    assert {"logs", "requests", "responses"} <= set(llm)
    assert {"messages", "maxSizeInBytes"} <= set(llm["requests"])
    assert llm["requests"]["messages"] == "all"
    wiring = api_diag.path.read_text(encoding="utf-8")
    assert re.search(r"@maxValue\(8192\)\s*param bodyBytes int", wiring)
    (logger,) = of_type("Microsoft.ApiManagement/service/loggers")
    assert logger.body["properties"]["loggerType"] == "azureEventHub"
    assert logger.body["properties"]["credentials"]["identityClientId"] == "SystemAssigned"


FRAGMENT = REPO / "infra" / "policies" / "llm-usage-to-eventhub.xml"
SAMPLE_VALUES: dict[str, Any] = {
    "timestamp": "2025-10-01T12:31:32.1234567Z",
    "correlationId": "5f0c1e9a-4b7e-4f7e-9a51-0c6c1b1c2d3e",
    "subscriptionId": "team-alpha",
    "productId": "team-alpha",
    "userId": "1",
    "apiId": "azure-openai",
    "operationId": "ChatCompletions_Create",
    "method": "POST",
    "url": "https://apim.example.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
    "region": "West Europe",
    "backendId": "aoai-swedencentral.openai.azure.com",
    "deploymentName": "gpt-4o",
    "modelName": "gpt-4o-2024-08-06",
    "promptTokens": 33,
    "completionTokens": 12,
    "totalTokens": 45,
    "responseCode": 200,
    "durationMs": 842,
}


def fragment_fields() -> list[str]:
    return re.findall(r'new JProperty\("([^"]+)"', FRAGMENT.read_text(encoding="utf-8"))


def mapped_columns(field: str) -> list[str]:
    mapping = tomllib.loads((REPO / "schemas" / "log_to_eventhub.toml").read_text(encoding="utf-8"))
    return [
        column
        for column, paths in mapping["columns"].items()
        if field.lower() in (p.lower() for p in paths)
    ]


def landing_rows(body: bytes) -> BatchResult:
    return Pipeline().process([EventInput(body)])


def test_fragment_fields_all_land_in_columns() -> None:
    fields = fragment_fields()
    assert fields
    assert len(fields) == len(set(fields))
    unmapped = [field for field in fields if not mapped_columns(field)]
    assert unmapped == [], "the mapping would drop these fields"
    assert set(fields) == set(SAMPLE_VALUES), "keep SAMPLE_VALUES in step with the fragment"


def test_fragment_payload_becomes_a_landing_row() -> None:
    payload = {field: SAMPLE_VALUES[field] for field in fragment_fields()}
    result = landing_rows(json.dumps(payload).encode())
    assert result.dead_letters == []
    (row,) = result.rows
    assert row["Category"] == "Policy"
    assert row["UsageSource"] == "policy"
    for field, sample in payload.items():
        for column in mapped_columns(field):
            if column == "Timestamp":
                assert row[column].startswith("2025-10-01T12:31:32")
            elif column in ("RequestId",):
                continue  # filled from response ids, not from the fragment's fields
            else:
                assert row[column] == sample, f"{field} -> {column}"
