"""Settings refuse bad configuration with a message that names the setting."""

from __future__ import annotations

import pytest

from ingest.config import DEFAULT_POLICY_MAPPING, CaptureMode, CoreSettings
from ingest.errors import ConfigError
from tests.conftest import APP_ENV


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
