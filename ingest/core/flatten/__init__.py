"""One APIM record -> one landing row, or the reason it cannot be one.

Dispatch is by category: ``GatewayLogs`` (``gateway``) and ``GatewayLlmLogs`` (``llm``) diagnostic
records, camelCase as streamed to Event Hubs or PascalCase as exported from Log Analytics
(``fields``), and anything else that the log-to-eventhub mapping (``policy``) can read. Every
family ends in ``finish``. Field lookup is case-insensitive.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.config import CoreSettings
from ingest.core.coerce import FieldError, TimestampError, shown, to_str
from ingest.core.flatten.fields import (
    CAMEL_FIELDS,
    CATEGORY_BY_TYPE,
    GATEWAY_LLM_LOGS,
    GATEWAY_LOGS,
    lower_keys,
    record_fields,
)
from ingest.core.flatten.finish import Finisher
from ingest.core.flatten.gateway import flatten_gateway
from ingest.core.flatten.llm import flatten_llm
from ingest.core.flatten.policy import PolicyMapping
from ingest.model import LandingRow, Rejected, RejectReason, SourceFormat

_DIAGNOSTICS = SourceFormat.DIAGNOSTICS
"""An enum member read once (reading one from its class is slow on a hot path)."""


def _properties_object(text: str) -> dict[str, Any] | None:
    """A ``properties`` field sent as JSON text, parsed (None when it is not a JSON object)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class Flattener:
    """Turns decoded records into landing rows with the configured capture and mapping."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.policy = PolicyMapping.load(settings.policy_mapping_file)
        # Every family reads the same time formats: the mapping's (the diagnostic path too).
        self.finisher = Finisher(settings, self.policy.timestamp_formats)

    def flatten(self, record: Any, fallback_time: str | None = None) -> LandingRow | Rejected:
        """Flatten one record; never raises on bad input."""
        if not isinstance(record, dict):
            return Rejected(
                RejectReason.NOT_A_RECORD, f"record is a {type(record).__name__}, not an object"
            )
        properties = record.get("properties")
        if properties.__class__ is str:  # resource-log exports may serialise it: read it once more
            parsed = _properties_object(properties)
            if parsed is None:
                return Rejected(
                    RejectReason.BAD_FIELD,
                    "`properties` is a string that is not a JSON object",
                    SourceFormat.DIAGNOSTICS.value,
                )
            record, properties = {**record, "properties": parsed}, parsed
        fields: dict[str, Any] | None = None
        if "time" in record and isinstance(properties, dict):
            for key in properties:  # camelCase when the first key is (an empty dict counts as such)
                camel = key in CAMEL_FIELDS or (isinstance(key, str) and key[:1].islower())
                break
            else:
                camel = True
            if camel:
                # The Event Hub stream's shape, the fast path. The properties' "operationName"
                # (GatewayLlmLogs) wins over the top level's, which only names the log category.
                fields, fmt = {**record, **properties}, _DIAGNOSTICS
        if fields is None:
            fields, fmt = record_fields(record)
        category = fields.get("category")
        if category.__class__ is not str:
            category = to_str(category)
        if not category:
            category = CATEGORY_BY_TYPE.get(to_str(fields.get("type")).lower(), "")
        if not category and fmt is SourceFormat.DIAGNOSTICS:
            fmt = SourceFormat.POLICY
        try:
            if category == GATEWAY_LOGS:
                return flatten_gateway(fields, fmt, self.finisher)
            if category == GATEWAY_LLM_LOGS:
                return flatten_llm(fields, fmt, self.finisher)
            if category:
                return Rejected(
                    RejectReason.UNSUPPORTED_CATEGORY,
                    f"category `{shown(category)}` is not GatewayLogs or GatewayLlmLogs",
                    fmt.value,
                )
            return self.policy.flatten(lower_keys(record), self.finisher, fallback_time)
        except TimestampError as exc:
            return Rejected(RejectReason.BAD_TIMESTAMP, str(exc), fmt.value)
        except FieldError as exc:
            return Rejected(RejectReason.BAD_FIELD, str(exc), fmt.value)
