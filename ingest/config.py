"""Settings: the only code that knows setting names. Built once from a mapping (``os.environ``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ingest.errors import ConfigError
from ingest.schema import SCHEMAS_DIR


class CaptureMode(StrEnum):
    """How much prompt and completion text is stored (``CAPTURE_TEXT``)."""

    NONE = "none"
    REDACTED = "redacted"
    FULL = "full"


DEFAULT_POLICY_MAPPING = SCHEMAS_DIR / "log_to_eventhub.toml"
"""Mapping used for log-to-eventhub payloads when ``POLICY_MAPPING_FILE`` is not set."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _int_setting(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"setting `{name}` must be a whole number, got `{raw}`") from exc
    if value < minimum:
        raise ConfigError(f"setting `{name}` must be at least {minimum}, got `{raw}`")
    return value


def _bool_setting(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"setting `{name}` must be true or false, got `{raw}`")


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """What the pure core needs: text capture, limits and the log-to-eventhub mapping."""

    capture_text: CaptureMode = CaptureMode.NONE
    capture_text_max_chars: int = 8192
    dead_letter_max_bytes: int = 65536
    estimate_tokens: bool = True
    policy_mapping_file: Path = DEFAULT_POLICY_MAPPING
    fallback_time: str | None = None
    """The time of a record that has none and no enqueued time (files read by the local tools:
    ``--fallback-time``); without it such a record is a ``bad_timestamp`` dead letter. Events
    from Event Hubs always have their enqueued time."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CoreSettings:
        """Read and validate the core settings; raise ConfigError naming the bad one."""
        mode_raw = env.get("CAPTURE_TEXT", "").strip().lower() or CaptureMode.NONE.value
        try:
            mode = CaptureMode(mode_raw)
        except ValueError as exc:
            choices = ", ".join(m.value for m in CaptureMode)
            raise ConfigError(
                f"setting `CAPTURE_TEXT` must be one of {choices}, got `{mode_raw}`"
            ) from exc
        mapping_raw = env.get("POLICY_MAPPING_FILE", "").strip()
        mapping = Path(mapping_raw) if mapping_raw else DEFAULT_POLICY_MAPPING
        if not mapping.is_file():
            raise ConfigError(f"setting `POLICY_MAPPING_FILE`: no file at `{mapping}`")
        return cls(
            capture_text=mode,
            capture_text_max_chars=_int_setting(env, "CAPTURE_TEXT_MAX_CHARS", 8192, 0),
            dead_letter_max_bytes=_int_setting(env, "DEAD_LETTER_MAX_BYTES", 65536, 1024),
            estimate_tokens=_bool_setting(env, "ESTIMATE_TOKENS", True),
            policy_mapping_file=mapping,
        )


INGESTION_MODES = ("queued", "streaming", "managed")
"""queued: one blob per table per batch (default); streaming: straight to the engine;
managed: streaming with fallback to queued when the payload is large or streaming fails."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"setting `{name}` is missing")
    return value


def _https_url(env: Mapping[str, str], name: str, value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ConfigError(
            f"setting `{name}` must be a URL like https://<cluster>.<region>.kusto.windows.net"
        )
    return value.rstrip("/")


EVENTHUB_CONNECTION = "EventHubConnection"
"""The Event Hub trigger's ``connection`` (function_app.py): its settings share this prefix."""

HOST_STORAGE = "AzureWebJobsStorage"
"""The host's storage connection (checkpoints), which also holds the dead-letter container."""

MANAGED_IDENTITY = "managedidentity"
"""The documented value of ``<connection>__credential`` for a managed identity."""

DEPLOYED_SETTINGS = frozenset(
    {
        f"{EVENTHUB_CONNECTION}__fullyQualifiedNamespace",
        f"{EVENTHUB_CONNECTION}__credential",
        f"{EVENTHUB_CONNECTION}__clientId",
        "EVENTHUB_NAME",
        "EVENTHUB_CONSUMER_GROUP",
        f"{HOST_STORAGE}__accountName",
        f"{HOST_STORAGE}__credential",
        f"{HOST_STORAGE}__clientId",
        "ADX_CLUSTER_URI",
        "ADX_INGEST_URI",
        "ADX_DATABASE",
        "ADX_INGESTION_MODE",
        "ADX_RETRIES",
        "ADX_RETRY_BASE_SECONDS",
        "AZURE_CLIENT_ID",
        "DEAD_LETTER_CONTAINER",
        "CAPTURE_TEXT",
        "CAPTURE_TEXT_MAX_CHARS",
        "DEAD_LETTER_MAX_BYTES",
        "ESTIMATE_TOKENS",
        "POLICY_MAPPING_FILE",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
        "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME",
    }
)
"""The app settings of a deployment with a user-assigned identity (``infra/`` sets exactly these):
every setting this module reads, in its identity-based form, plus the four the Functions host and
its Python worker read for Application Insights (OpenTelemetry, Entra authentication)."""

ALTERNATIVE_SETTINGS = frozenset(
    {
        EVENTHUB_CONNECTION,
        HOST_STORAGE,
        f"{HOST_STORAGE}__blobServiceUri",
        f"{HOST_STORAGE}__queueServiceUri",
        f"{HOST_STORAGE}__tableServiceUri",
    }
)
"""Settings this module also reads, in place of identity-based ones: connection strings (local
development, Azurite) and service URIs (a sovereign cloud)."""


def _identity(env: Mapping[str, str], connection: str) -> str:
    """The client id an identity-based connection uses ('' for the system-assigned identity).

    The host reads ``<connection>__credential`` and ``<connection>__clientId``; ``AZURE_CLIENT_ID``
    alone is not honoured for triggers (the scale controller ignores it), so a user-assigned
    identity must be named on each connection.
    """
    kind = env.get(f"{connection}__credential", "").strip()
    client_id = env.get(f"{connection}__clientId", "").strip()
    resource_id = env.get(f"{connection}__managedIdentityResourceId", "").strip()
    if kind and kind.lower() != MANAGED_IDENTITY:
        raise ConfigError(
            f"setting `{connection}__credential` must be `{MANAGED_IDENTITY}`, got `{kind}`"
        )
    if (client_id or resource_id) and not kind:
        name = (
            f"{connection}__clientId" if client_id else f"{connection}__managedIdentityResourceId"
        )
        raise ConfigError(
            f"setting `{name}` needs `{connection}__credential` set to `{MANAGED_IDENTITY}`"
        )
    if client_id and resource_id:
        raise ConfigError(
            f"settings `{connection}__clientId` and `{connection}__managedIdentityResourceId` "
            "name the identity twice: keep one"
        )
    app_identity = env.get("AZURE_CLIENT_ID", "").strip()
    if app_identity and not (client_id or resource_id):
        raise ConfigError(
            f"setting `AZURE_CLIENT_ID` names a user-assigned identity, but `{connection}` would "
            f"connect as the system-assigned one: set `{connection}__credential` to "
            f"`{MANAGED_IDENTITY}` and `{connection}__clientId` to `{app_identity}`"
        )
    return client_id


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the Functions app needs, validated once at start-up."""

    core: CoreSettings
    adx_cluster_uri: str
    adx_ingest_uri: str
    adx_database: str
    ingestion_mode: str = "queued"
    adx_retries: int = 3
    adx_retry_base_seconds: float = 1.0
    managed_identity_client_id: str = ""
    dead_letter_container: str = "ingest-deadletters"
    storage_connection: str = ""
    storage_blob_uri: str = ""
    eventhub_connection: str = "EventHubConnection"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every setting; ConfigError names the first bad or missing one."""
        core = CoreSettings.from_env(env)
        cluster = _https_url(env, "ADX_CLUSTER_URI", _required(env, "ADX_CLUSTER_URI"))
        ingest = env.get("ADX_INGEST_URI", "").strip()
        if ingest:
            ingest = _https_url(env, "ADX_INGEST_URI", ingest)
        else:
            scheme, _, host = cluster.partition("://")
            ingest = f"{scheme}://ingest-{host}"
        mode = env.get("ADX_INGESTION_MODE", "queued").strip().lower() or "queued"
        if mode not in INGESTION_MODES:
            raise ConfigError(
                f"setting `ADX_INGESTION_MODE` must be one of {', '.join(INGESTION_MODES)}, "
                f"got `{mode}`"
            )
        connection = EVENTHUB_CONNECTION
        if env.get(f"{connection}__fullyQualifiedNamespace", "").strip():
            _identity(env, connection)
        elif not env.get(connection, "").strip():
            raise ConfigError(
                f"setting `{connection}__fullyQualifiedNamespace` is missing "
                f"(or `{connection}` with a connection string)"
            )
        _required(env, "EVENTHUB_NAME")
        _required(env, "EVENTHUB_CONSUMER_GROUP")
        storage = env.get(HOST_STORAGE, "").strip()
        account = env.get(f"{HOST_STORAGE}__accountName", "").strip()
        blob_uri = env.get(f"{HOST_STORAGE}__blobServiceUri", "").strip()
        if account and not blob_uri:
            blob_uri = f"https://{account}.blob.core.windows.net"
        if not storage and not blob_uri:
            raise ConfigError(
                f"setting `{HOST_STORAGE}__accountName` (or `{HOST_STORAGE}`) is missing: "
                "the dead-letter container lives in the app's storage account"
            )
        if not storage:
            _identity(env, HOST_STORAGE)
        seconds_raw = env.get("ADX_RETRY_BASE_SECONDS", "").strip() or "1"
        try:
            seconds = float(seconds_raw)
        except ValueError as exc:
            raise ConfigError(
                f"setting `ADX_RETRY_BASE_SECONDS` must be a number, got `{seconds_raw}`"
            ) from exc
        return cls(
            core=core,
            adx_cluster_uri=cluster,
            adx_ingest_uri=ingest,
            adx_database=_required(env, "ADX_DATABASE"),
            ingestion_mode=mode,
            adx_retries=_int_setting(env, "ADX_RETRIES", 3, 0),
            adx_retry_base_seconds=seconds,
            managed_identity_client_id=env.get("AZURE_CLIENT_ID", "").strip(),
            dead_letter_container=env.get("DEAD_LETTER_CONTAINER", "").strip()
            or "ingest-deadletters",
            storage_connection=storage,
            storage_blob_uri=blob_uri,
            eventhub_connection=connection,
        )

    def describe(self) -> dict[str, str]:
        """The settings as an operator may see them: no secret, no connection string."""
        return {
            "ADX_CLUSTER_URI": self.adx_cluster_uri,
            "ADX_INGEST_URI": self.adx_ingest_uri,
            "ADX_DATABASE": self.adx_database,
            "ADX_INGESTION_MODE": self.ingestion_mode,
            "CAPTURE_TEXT": self.core.capture_text.value,
            "DEAD_LETTER_CONTAINER": self.dead_letter_container,
            "storage": "connection string" if self.storage_connection else "managed identity",
            "identity": "user-assigned" if self.managed_identity_client_id else "default",
        }
