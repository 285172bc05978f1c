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
