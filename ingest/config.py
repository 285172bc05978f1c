"""Settings: the only code that knows setting names. Built once from a mapping (``os.environ``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import ConfigError
from ingest.privacy import CaptureMode
from ingest.schema import SCHEMAS_DIR

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
        connection = "EventHubConnection"  # the trigger's `connection` in function_app.py
        if (
            not env.get(f"{connection}__fullyQualifiedNamespace", "").strip()
            and not env.get(connection, "").strip()
        ):
            raise ConfigError(
                f"setting `{connection}__fullyQualifiedNamespace` is missing "
                f"(or `{connection}` with a connection string)"
            )
        _required(env, "EVENTHUB_NAME")
        _required(env, "EVENTHUB_CONSUMER_GROUP")
        storage = env.get("AzureWebJobsStorage", "").strip()
        account = env.get("AzureWebJobsStorage__accountName", "").strip()
        blob_uri = env.get("AzureWebJobsStorage__blobServiceUri", "").strip()
        if account and not blob_uri:
            blob_uri = f"https://{account}.blob.core.windows.net"
        if not storage and not blob_uri:
            raise ConfigError(
                "setting `AzureWebJobsStorage__accountName` (or `AzureWebJobsStorage`) is missing: "
                "the dead-letter container lives in the app's storage account"
            )
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
