"""The private network option (`privateNetwork`, off by default), checked offline.

* every value the option decides is written `privateNetwork ? a : b`, so that a rendering of the
  templates with the option fixed holds literals (checkov evaluates no expression);
* with the option on: public network access is off on the storage account, the Event Hubs
  namespace (and its network rules, which keep the trusted-services exception) and the ADX
  cluster; with it off (the default) nothing changes;
* every private endpoint has its DNS zone group, with the zones documented for its group id;
* the app's subnet is delegated to Microsoft.App/environments (Flex Consumption);
* checkov passes on the rendering with the option on, with the network checks not skipped, and
  the project's network checks fail on templates that break them.

Sources: zone names, learn.microsoft.com/azure/private-link/private-endpoint-dns; ADX's endpoint
(group `cluster`, FQDNs in the blob, queue and table zones too),
learn.microsoft.com/azure/data-explorer/security-network-private-endpoint; Flex Consumption's
delegation, learn.microsoft.com/azure/azure-functions/flex-consumption-plan.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.infra import bicep
from tests.infra.bicep import Expr
from tests.infra.test_templates import REPO, run_checkov, run_custom_checks

pytestmark = pytest.mark.infra

OPTION = "privateNetwork"
MODULES = REPO / "infra" / "modules"

ZONES = {
    "eventHubs": "'privatelink.servicebus.windows.net'",
    "blob": "'privatelink.blob.${environment().suffixes.storage}'",
    "queue": "'privatelink.queue.${environment().suffixes.storage}'",
    "table": "'privatelink.table.${environment().suffixes.storage}'",
    "kusto": "'privatelink.${location}.kusto.windows.net'",
}
"""private-endpoint-dns: Event Hubs `privatelink.servicebus.windows.net`, Storage
`privatelink.{blob,queue,table}.core.windows.net`, ADX
`privatelink.{regionName}.kusto.windows.net`."""

ENDPOINT_ZONES = {
    "namespace": {"eventHubsZone"},
    "blob": {"blobZone"},
    "queue": {"queueZone"},
    "table": {"tableZone"},
    "cluster": {"kustoZone", "blobZone", "queueZone", "tableZone"},
}
"""Group id -> zones its endpoint registers in."""

LOCKED_TYPES = (
    "Microsoft.Storage/storageAccounts",
    "Microsoft.EventHub/namespaces",
    "Microsoft.Kusto/clusters",
)
NETWORK_CHECKS = ("CKV_AZURE_35", "CKV_AZURE_59", "CKV_APIMADX_5")
"""Skipped on the templates as written (public by default), never on the private rendering."""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """infra/ rendered with the option off and on."""
    return {
        on: bicep.render_tree(tmp_path_factory.mktemp(f"private-{on}"), OPTION, on=on)
        for on in (False, True)
    }


def resources_of(infra: Path) -> list[bicep.Resource]:
    found = [r for path in sorted(infra.rglob("*.bicep")) for r in bicep.resources(path)]
    bicep.parse.cache_clear()  # rendered copies are read once
    return found


def test_the_option_decides_only_literals(rendered: dict[bool, Path]) -> None:
    for infra in rendered.values():
        for path in infra.rglob("*.bicep"):
            text = path.read_text(encoding="utf-8")
            assert f"{OPTION} ?" not in text, f"{path.name}: write `{OPTION} ? literal : literal`"
    main = (REPO / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert f"param {OPTION} bool = false" in main, "the option is off by default"


def test_public_access_is_off_when_the_option_is_on(rendered: dict[bool, Path]) -> None:
    for on, infra in rendered.items():
        locked = [r for r in resources_of(infra) if r.type in LOCKED_TYPES and not r.existing]
        assert {r.type for r in locked} == set(LOCKED_TYPES)
        for resource in locked:
            access = resource.body["properties"]["publicNetworkAccess"]
            assert access == ("Disabled" if on else "Enabled"), (resource.symbol, on)
        (account,) = [r for r in locked if r.type == "Microsoft.Storage/storageAccounts"]
        assert account.body["properties"]["networkAcls"]["defaultAction"] == (
            "Deny" if on else "Allow"
        )
    (rules,) = [
        r
        for r in resources_of(rendered[True])
        if r.type == "Microsoft.EventHub/namespaces/networkRuleSets"
    ]
    assert rules.conditional
    assert rules.body["properties"]["publicNetworkAccess"] == "Disabled"
    assert rules.body["properties"]["defaultAction"] == "Deny"
    # Azure Monitor (APIM's diagnostic setting) is a trusted service: it still gets in.
    assert rules.body["properties"]["trustedServiceAccessEnabled"] is True


def test_main_wires_the_option_everywhere() -> None:
    main = REPO / "infra" / "main.bicep"
    calls = {target.name: params for _, target, params in bicep.module_calls(main)}
    for module in ("storage.bicep", "eventhubs.bicep", "adx.bicep"):
        assert OPTION in calls[module], f"{module} does not get the option"
    assert "virtualNetworkSubnetId" in calls["functionapp.bicep"]
    declarations = {r.body.get("name"): r for r in bicep.resources(main) if r.type == "module"}
    assert declarations["network"].conditional
    text = main.read_text(encoding="utf-8")
    assert f"module network 'modules/network.bicep' = if ({OPTION})" in text
    assert f"virtualNetworkSubnetId: {OPTION} ? network.outputs.appSubnetId : ''" in text
    site = next(r for r in bicep.resources(MODULES / "functionapp.bicep") if r.symbol == "site")
    assert site.body["properties"]["virtualNetworkSubnetId"] == Expr(
        "empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId"
    )


def test_every_private_endpoint_has_its_dns_zone_group() -> None:
    for path in bicep.bicep_files():
        found = bicep.resources(path)
        endpoints = [r for r in found if r.type == "Microsoft.Network/privateEndpoints"]
        for endpoint in endpoints:
            groups = [
                r
                for r in found
                if r.type == "Microsoft.Network/privateEndpoints/privateDnsZoneGroups"
                and r.body.get("parent") == Expr(endpoint.symbol)
            ]
            assert len(groups) == 1, f"{path.name}: {endpoint.symbol} has no DNS zone group"
            assert not groups[0].conditional, "the zone group goes wherever the endpoint goes"
            configs = groups[0].body["properties"]["privateDnsZoneConfigs"]
            assert configs, f"{path.name}: {endpoint.symbol}: empty zone group"
    # The endpoint module is the only place endpoints are declared; every call gives it zones.
    declared = [
        path.name
        for path in bicep.bicep_files()
        for r in bicep.resources(path)
        if r.type == "Microsoft.Network/privateEndpoints"
    ]
    assert declared == ["private-endpoint.bicep"]
    text = (MODULES / "private-endpoint.bicep").read_text(encoding="utf-8")
    assert re.search(r"@minLength\(1\)\s*(@description\([^\n]*\)\s*)?param zoneIds array", text)


def endpoint_calls() -> dict[str, dict[str, Any]]:
    """groupId -> params of each private-endpoint.bicep call in network.bicep."""
    calls: dict[str, dict[str, Any]] = {}
    for resource in bicep.resources(MODULES / "network.bicep"):
        if resource.type != "module":
            continue
        params = resource.body["params"]
        calls[params["groupId"]] = params
    return calls


def test_endpoints_cover_each_service_with_its_documented_zones() -> None:
    calls = endpoint_calls()
    assert set(calls) == set(ENDPOINT_ZONES)
    for group, params in calls.items():
        zones = {zone.text.removesuffix(".id") for zone in params["zoneIds"]}
        assert zones == ENDPOINT_ZONES[group], group
    targets = {group: params["targetId"].text for group, params in calls.items()}
    assert targets == {
        "namespace": "eventHubNamespaceId",
        "blob": "storageAccountId",
        "queue": "storageAccountId",
        "table": "storageAccountId",
        "cluster": "adxClusterId",
    }
    network = (MODULES / "network.bicep").read_text(encoding="utf-8")
    for key, name in ZONES.items():
        assert f"  {key}: {name}\n" in network, f"zone {key} must be {name}"
    found = bicep.resources(MODULES / "network.bicep")
    zones = {r.symbol for r in found if r.type == "Microsoft.Network/privateDnsZones"}
    links = [r for r in found if r.type == "Microsoft.Network/privateDnsZones/virtualNetworkLinks"]
    # Each zone is linked to the network, or nothing inside it resolves the private addresses.
    assert {link.body["parent"].text for link in links} == zones
    assert all(link.body["properties"]["registrationEnabled"] is False for link in links)


def test_the_app_subnet_is_delegated_for_flex_consumption() -> None:
    (vnet,) = [
        r
        for r in bicep.resources(MODULES / "network.bicep")
        if r.type == "Microsoft.Network/virtualNetworks"
    ]
    subnets = {s["name"].text: s["properties"] for s in vnet.body["properties"]["subnets"]}
    app, endpoints = subnets["appSubnetName"], subnets["endpointSubnetName"]
    assert [d["properties"]["serviceName"] for d in app["delegations"]] == [
        "Microsoft.App/environments"
    ]
    assert "delegations" not in endpoints
    assert endpoints["privateEndpointNetworkPolicies"] == "Disabled"
    assert all("networkSecurityGroup" in s for s in subnets.values())


def checkov_config(name: str) -> list[str]:
    section = (REPO / "infra" / name).read_text(encoding="utf-8").split("skip-check:", 1)[1]
    return re.findall(r"^\s*- (\S+)", section, re.MULTILINE)


def test_private_skip_list_is_the_default_one_without_the_network_checks() -> None:
    default, private = checkov_config(".checkov.yaml"), checkov_config(".checkov-private.yaml")
    assert set(NETWORK_CHECKS) <= set(default)
    assert private == [check for check in default if check not in NETWORK_CHECKS]


def test_checkov_passes_on_the_private_rendering(tmp_path: Path) -> None:
    infra = bicep.render_tree(tmp_path, OPTION, on=True)
    (infra / ".checkov.yaml").unlink()  # checkov would also read it from the scanned folder
    report, stderr = run_checkov(
        "--config-file",
        str(infra / ".checkov-private.yaml"),
        "-d",
        str(infra),
        "--external-checks-dir",
        str(infra / "checks"),
    )
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert "Failed to run check" not in stderr
    passed: dict[str, set[str]] = {}
    for check in report["results"]["passed_checks"]:
        passed.setdefault(check["check_id"], set()).add(check["resource"])
    assert "Microsoft.Storage/storageAccounts.account" in passed["CKV_AZURE_35"]
    assert "Microsoft.Storage/storageAccounts.account" in passed["CKV_AZURE_59"]
    assert passed["CKV_APIMADX_5"] == {
        "Microsoft.EventHub/namespaces.namespace",
        "Microsoft.EventHub/namespaces/networkRuleSets.networkRules",
        "Microsoft.Kusto/clusters.cluster",
    }
    assert "Microsoft.Network/privateEndpoints.endpoint" in passed["CKV2_APIMADX_6"]
    assert passed["CKV_APIMADX_7"] == {"Microsoft.Network/virtualNetworks.vnet"}


BAD_NETWORK = """
param subnetId string
param targetId string

resource openNamespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: 'evhns-open'
  location: 'westeurope'
  sku: {
    name: 'Standard'
  }
  properties: {
    publicNetworkAccess: 'Enabled'
  }
}

resource allowRules 'Microsoft.EventHub/namespaces/networkRuleSets@2024-01-01' = {
  parent: openNamespace
  name: 'default'
  properties: {
    publicNetworkAccess: 'Disabled'
    defaultAction: 'Allow'
  }
}

resource orphan 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: 'pe-orphan'
  location: 'westeurope'
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'pe-orphan'
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            'namespace'
          ]
        }
      }
    ]
  }
}

resource serverFarmsVnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: 'vnet-wrong'
  location: 'westeurope'
  properties: {
    addressSpace: {
      addressPrefixes: [
        '10.0.0.0/16'
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: '10.0.0.0/24'
          delegations: [
            {
              name: 'web'
              properties: {
                serviceName: 'Microsoft.Web/serverFarms'
              }
            }
          ]
        }
      }
    ]
  }
}
"""


def test_network_checks_fail_templates_that_break_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bad_network.bicep").write_text(BAD_NETWORK, encoding="utf-8")
    report, stderr = run_custom_checks(bad, "CKV_APIMADX_5,CKV2_APIMADX_6,CKV_APIMADX_7")
    failed = {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}
    assert failed == {
        ("CKV_APIMADX_5", "Microsoft.EventHub/namespaces.openNamespace"),
        ("CKV_APIMADX_5", "Microsoft.EventHub/namespaces/networkRuleSets.allowRules"),
        ("CKV2_APIMADX_6", "Microsoft.Network/privateEndpoints.orphan"),
        ("CKV_APIMADX_7", "Microsoft.Network/virtualNetworks.serverFarmsVnet"),
    }
    assert "Failed to run check" not in stderr
    shutil.rmtree(bad)


def test_the_postprovision_seed_waits_for_the_network_when_private() -> None:
    hook = (REPO / "azure.yaml").read_text(encoding="utf-8").split("postprovision:", 1)[1]
    posix, windows = hook.split("windows:", 1)
    assert '[ "${PRIVATE_NETWORK:-false}" = true ]' in posix
    assert '[ "${KUSTO_SEED_FROM_HERE:-false}" != true ]' in posix
    assert "$env:PRIVATE_NETWORK -eq 'true'" in windows
    assert "$env:KUSTO_SEED_FROM_HERE -ne 'true'" in windows
    main = (REPO / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert f"output PRIVATE_NETWORK bool = {OPTION}" in main
