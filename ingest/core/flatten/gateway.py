"""``GatewayLogs`` records: one row per gateway request, with what its logged bodies say."""

from __future__ import annotations

from ingest.core.bodies import analyze_request, analyze_response
from ingest.core.coerce import to_bool, to_datetime, to_int, to_str
from ingest.core.flatten.fields import GATEWAY_LOGS, Fields, lower_keys
from ingest.core.flatten.finish import Finisher, apply_url, normalize_kind, url_facts
from ingest.model import (
    LandingRow,
    Rejected,
    RejectReason,
    SourceFormat,
    UsageSource,
    empty_landing_row,
)

_STRINGS = (
    ("CorrelationId", "correlationId"),
    ("ResourceId", "resourceId"),
    ("Region", "location"),
    ("SubscriptionId", "apimSubscriptionId"),
    ("ProductId", "productId"),
    ("UserId", "userId"),
    ("CallerIpAddress", "callerIpAddress"),
    ("ApiId", "apiId"),
    ("ApiRevision", "apiRevision"),
    ("OperationId", "operationId"),
    ("Method", "method"),
    ("BackendId", "backendId"),
    ("BackendUrl", "backendUrl"),
    ("Cache", "cache"),
)
"""GatewayLogs string columns and their (camelCase) field names."""

_INTS = (
    ("ResponseCode", "responseCode"),
    ("BackendResponseCode", "backendResponseCode"),
    ("DurationMs", "durationMs"),
    ("BackendTimeMs", "backendTime"),
    ("ClientTimeMs", "clientTime"),
    ("RequestSize", "requestSize"),
    ("ResponseSize", "responseSize"),
)
"""GatewayLogs integer columns and their (camelCase) field names."""

_KEYS = dict(_STRINGS + _INTS)


def flatten_gateway(f: Fields, fmt: SourceFormat, finisher: Finisher) -> LandingRow | Rejected:
    """One GatewayLogs record (raises FieldError for a value that cannot be read)."""
    row = empty_landing_row()
    timestamp = to_datetime(f.get("time", f.get("timeGenerated")), "time")
    if timestamp is None:
        return Rejected(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
    row["Timestamp"] = timestamp
    row["Category"] = GATEWAY_LOGS
    row["SourceFormat"] = fmt.value
    texts = {column: v for column, key in _STRINGS if (v := f.get(key)) is not None}
    numbers = {column: v for column, key in _INTS if (v := f.get(key)) is not None}
    if texts and set(map(type, texts.values())) != {str}:  # rare: an id sent as a number
        texts = {column: to_str(value) for column, value in texts.items()}
    if numbers and set(map(type, numbers.values())) != {int}:  # rare: a number sent as text
        numbers = {c: to_int(v, _KEYS[c]) for c, v in numbers.items()}
    row.update(texts)  # type: ignore[typeddict-item]
    row.update(numbers)  # type: ignore[typeddict-item]
    if not row["ResourceId"]:
        row["ResourceId"] = to_str(f.get("_ResourceId"))
    if not row["Region"]:
        row["Region"] = to_str(f.get("region"))
    if row["DurationMs"] is None:
        row["DurationMs"] = to_int(f.get("totalTime"), "totalTime")
    url = to_str(f.get("url"))
    row["Url"] = url_facts(url).scrubbed if url else ""
    if row["BackendUrl"]:
        row["BackendUrl"] = url_facts(row["BackendUrl"]).scrubbed
    success = f.get("isRequestSuccess")
    row["IsRequestSuccess"] = (
        success
        if success is None or success.__class__ is bool
        else to_bool(success, "isRequestSuccess")
    )
    truncated = f.get("truncated")
    row["IsRecordTruncated"] = to_bool(truncated, "truncated") if truncated is not None else None
    last_error = f.get("lastError")
    if isinstance(last_error, dict):
        errors = lower_keys(last_error)
        row["LastErrorSource"] = to_str(errors.get("source"))
        row["LastErrorReason"] = to_str(errors.get("reason"))
        row["LastErrorMessage"] = to_str(errors.get("message"))[:1024]
        row["LastErrorSection"] = to_str(errors.get("section"))
    elif fmt is SourceFormat.LOG_ANALYTICS:  # Log Analytics flattens lastError into columns
        row["LastErrorSource"] = to_str(f.get("lastErrorSource"))
        row["LastErrorReason"] = to_str(f.get("lastErrorReason"))
        row["LastErrorMessage"] = to_str(f.get("lastErrorMessage"))[:1024]
        row["LastErrorSection"] = to_str(f.get("lastErrorSection"))
    if row["ResponseCode"] == 429:
        row["ThrottledBy"] = "backend" if row["BackendResponseCode"] == 429 else "apim"

    # Backend bodies are what the model saw and said; frontend ones are the fallback.
    request = analyze_request(f.get("backendRequestBody") or f.get("requestBody"))
    response = analyze_response(f.get("backendResponseBody") or f.get("responseBody"))
    operation_id = row["OperationId"]
    row["OperationKind"] = normalize_kind(operation_id) if operation_id else ""
    apply_url(row, url or row["BackendUrl"], request)
    if not row["OperationKind"]:
        row["OperationKind"] = "other"
    finisher.finish_call(row, request, response, None, UsageSource.NONE)
    return row
