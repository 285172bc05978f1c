"""Settings refuse bad configuration with a message that names the setting."""

from __future__ import annotations

import re

import pytest

from ingest.config import DEFAULT_POLICY_MAPPING, CaptureMode, CoreSettings, Settings
from ingest.errors import ConfigError
from tests.conftest import APP_ENV, ROOT


def test_defaults() -> None:
    settings = CoreSettings.from_env({})
    assert settings.capture_text is CaptureMode.NONE
    assert settings.policy_mapping_file == DEFAULT_POLICY_MAPPING
    assert settings.estimate_tokens is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CAPTURE_TEXT": "everything"}, "`CAPTURE_TEXT` must be one of none, redacted, full"),
        ({"CAPTURE_TEXT_MAX_CHARS": "lots"}, "`CAPTURE_TEXT_MAX_CHARS` must be a whole number"),
        ({"DEAD_LETTER_MAX_BYTES": "10"}, "`DEAD_LETTER_MAX_BYTES` must be at least 1024"),
        ({"ESTIMATE_TOKENS": "perhaps"}, "`ESTIMATE_TOKENS` must be true or false"),
        ({"POLICY_MAPPING_FILE": "/nope.toml"}, "`POLICY_MAPPING_FILE`: no file at `/nope.toml`"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        CoreSettings.from_env(env)


def test_app_settings_defaults_and_derived_values() -> None:
    from ingest.config import Settings

    settings = Settings.from_env(APP_ENV)
    assert settings.adx_ingest_uri == "https://ingest-contoso.westeurope.kusto.windows.net"
    assert settings.ingestion_mode == "queued"
    assert settings.storage_blob_uri == "https://contosofuncs.blob.core.windows.net"
    assert settings.dead_letter_container == "ingest-deadletters"
    assert settings.describe()["identity"] == "default"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ADX_CLUSTER_URI": ""}, "`ADX_CLUSTER_URI` is missing"),
        ({"ADX_CLUSTER_URI": "contoso"}, "`ADX_CLUSTER_URI` must be a URL"),
        ({"ADX_DATABASE": ""}, "`ADX_DATABASE` is missing"),
        (
            {"ADX_INGESTION_MODE": "fast"},
            "`ADX_INGESTION_MODE` must be one of queued, streaming, managed",
        ),
        (
            {"EventHubConnection__fullyQualifiedNamespace": ""},
            "`EventHubConnection__fullyQualifiedNamespace` is missing",
        ),
        ({"EVENTHUB_CONSUMER_GROUP": ""}, "`EVENTHUB_CONSUMER_GROUP` is missing"),
        (
            {"AzureWebJobsStorage__accountName": ""},
            "`AzureWebJobsStorage__accountName` (or `AzureWebJobsStorage`) is missing",
        ),
        ({"ADX_RETRIES": "-1"}, "`ADX_RETRIES` must be at least 0"),
    ],
)
def test_app_settings_name_what_is_wrong(change: dict[str, str], message: str) -> None:
    from ingest.config import Settings

    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**APP_ENV, **change})
    assert message in str(caught.value)


def test_a_connection_string_may_replace_the_identity_based_connection() -> None:
    from ingest.config import Settings

    env = {
        **APP_ENV,
        "EventHubConnection__fullyQualifiedNamespace": "",
        "EventHubConnection": "Endpoint=sb://x/",
    }
    assert Settings.from_env(env).eventhub_connection == "EventHubConnection"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"AZURE_CLIENT_ID": "1111"},
            "set `EventHubConnection__credential` to `managedidentity` and "
            "`EventHubConnection__clientId` to `1111`",
        ),
        (
            {"EventHubConnection__clientId": "1111"},
            "`EventHubConnection__clientId` needs `EventHubConnection__credential`",
        ),
        (
            {"EventHubConnection__credential": "clientsecret"},
            "`EventHubConnection__credential` must be `managedidentity`",
        ),
        (
            {
                "EventHubConnection__credential": "managedidentity",
                "EventHubConnection__clientId": "1111",
                "EventHubConnection__managedIdentityResourceId": "/subscriptions/x",
            },
            "name the identity twice",
        ),
        (
            {
                "AZURE_CLIENT_ID": "1111",
                "EventHubConnection__credential": "managedidentity",
                "EventHubConnection__clientId": "1111",
            },
            "`AzureWebJobsStorage` would connect as the system-assigned one",
        ),
    ],
)
def test_a_user_assigned_identity_must_be_named_on_every_connection(
    change: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({**APP_ENV, **change})


def test_the_identity_combinations_that_work() -> None:
    system = Settings.from_env(APP_ENV)
    assert system.managed_identity_client_id == ""
    named = {
        "AZURE_CLIENT_ID": "1111",
        "EventHubConnection__credential": "managedidentity",
        "EventHubConnection__clientId": "1111",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "1111",
    }
    assert Settings.from_env({**APP_ENV, **named}).managed_identity_client_id == "1111"
    # A connection string for storage (Azurite) needs no identity on that connection.
    local = {k: v for k, v in named.items() if not k.startswith("AzureWebJobsStorage")}
    local["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    env = {**APP_ENV, **local}
    del env["AzureWebJobsStorage__accountName"]
    assert Settings.from_env(env).storage_connection == "UseDevelopmentStorage=true"


def test_deployed_settings_are_what_the_app_reads() -> None:
    import ast

    from ingest.config import ALTERNATIVE_SETTINGS, DEPLOYED_SETTINGS

    source = (ROOT / "ingest" / "config.py").read_text(encoding="utf-8")
    literals = {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    host_read = {
        name for name in DEPLOYED_SETTINGS if name.startswith(("APPLICATIONINSIGHTS", "PYTHON_"))
    }
    for name in DEPLOYED_SETTINGS - host_read:
        # Either a literal, or a connection prefix + suffix (EventHubConnection__clientId).
        prefix, _, suffix = name.partition("__")
        assert name in literals or (f"__{suffix}" in source and prefix in literals), name
    assert ALTERNATIVE_SETTINGS.isdisjoint(DEPLOYED_SETTINGS)
