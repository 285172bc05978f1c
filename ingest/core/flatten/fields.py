"""A record's fields as the readers see them: top level and ``properties`` merged, camelCase keys.

The Event Hub stream sends camelCase under ``properties``; Log Analytics exports send PascalCase
columns at the top level (``TimeGenerated``, ``Type``). Both are read through one set of names.
"""

from __future__ import annotations

from typing import Any

from ingest.model import SourceFormat

GATEWAY_LOGS = "GatewayLogs"
GATEWAY_LLM_LOGS = "GatewayLlmLogs"
POLICY = "Policy"
"""The ``Category`` of a row read from a log-to-eventhub payload."""

CATEGORY_BY_TYPE = {
    "apimanagementgatewaylogs": GATEWAY_LOGS,
    "apimanagementgatewaylog": GATEWAY_LOGS,
    "apimanagementgatewayllmlog": GATEWAY_LLM_LOGS,
    "apimanagementgatewayllmlogs": GATEWAY_LLM_LOGS,
}
"""Log Analytics table names (the ``Type`` column of an export) and their categories."""

Fields = dict[str, Any]
"""A record's top level merged with its ``properties``, keyed by the camelCase field names."""

KNOWN_FIELDS = (
    "time timeGenerated category type correlationId resourceId _ResourceId location region "
    "apimSubscriptionId productId userId callerIpAddress apiId apiRevision operationId "
    "operationName method url backendId backendUrl cache responseCode backendResponseCode "
    "durationMs totalTime backendTime clientTime requestSize responseSize isRequestSuccess "
    "truncated lastError lastErrorSource lastErrorReason lastErrorMessage lastErrorSection "
    "backendRequestBody requestBody backendResponseBody responseBody requestId sequenceNumber "
    "deploymentName modelName apiVersion isStreamCompletion promptTokens completionTokens "
    "totalTokens cachedTokens promptCachedTokens cacheWriteTokens reasoningTokens requestMessages "
    "responseMessages"
).split()
"""Every field the diagnostic readers look up, in the camelCase the Event Hub stream uses."""

_CANONICAL = {name.lower(): name for name in KNOWN_FIELDS}
CAMEL_FIELDS = frozenset(name for name in KNOWN_FIELDS if name[:1].islower())
"""Known names that start with a lower-case letter: a set lookup tells a first key's case."""

FORMAT_VALUES = {fmt: fmt.value for fmt in SourceFormat}
"""Plain strings of the source formats (an enum's ``.value`` is a slow property on a hot path)."""


def lower_keys(obj: Any) -> dict[str, Any]:
    """A dict with lower-cased keys ({} for anything that is not a dict)."""
    if not isinstance(obj, dict):
        return {}
    return {k.lower() if isinstance(k, str) else k: v for k, v in obj.items()}


def _canonical(obj: dict[str, Any], into: dict[str, Any]) -> None:
    for key, value in obj.items():
        if isinstance(key, str):
            into[_CANONICAL.get(key.lower(), key)] = value


def record_fields(record: dict[str, Any]) -> tuple[Fields, SourceFormat]:
    """The merged fields of a record, keyed by camelCase names, and the shape it came in.

    For every shape but the Event Hub stream's own (a ``time`` and camelCase ``properties``),
    which ``Flattener.flatten`` merges itself, without a call per record.
    """
    merged: dict[str, Any] = {}
    _canonical(record, merged)
    nested = record.get("properties", record.get("Properties"))
    if isinstance(nested, dict):
        _canonical(nested, merged)
    exported = "timeGenerated" in merged and "time" not in merged
    return merged, SourceFormat.LOG_ANALYTICS if exported else SourceFormat.DIAGNOSTICS
