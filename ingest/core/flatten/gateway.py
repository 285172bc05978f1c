"""``GatewayLogs`` records: one row per gateway request, with what its logged bodies say."""

from __future__ import annotations

from ingest.core.bodies import analyze_request, analyze_response
from ingest.core.coerce import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    to_bool,
    to_datetime,
    to_int,
    to_str,
)
from ingest.core.flatten.fields import FORMAT_VALUES, GATEWAY_LOGS, Fields, lower_keys
from ingest.core.flatten.finish import (
    Finisher,
    UrlFacts,
    error_message,
    normalize_kind,
    url_facts,
)
from ingest.core.privacy import mask_secrets
from ingest.model import (
    LandingRow,
    Rejected,
    RejectReason,
    SourceFormat,
    UsageSource,
)

_INTS = (
    ("ResponseCode", "responseCode", INT_MIN, INT_MAX),
    ("BackendResponseCode", "backendResponseCode", INT_MIN, INT_MAX),
    ("DurationMs", "durationMs", LONG_MIN, LONG_MAX),
    ("BackendTimeMs", "backendTime", LONG_MIN, LONG_MAX),
    ("ClientTimeMs", "clientTime", LONG_MIN, LONG_MAX),
    ("RequestSize", "requestSize", LONG_MIN, LONG_MAX),
    ("ResponseSize", "responseSize", LONG_MIN, LONG_MAX),
)
"""GatewayLogs integer columns, their (camelCase) field names, and the column type's range: the
slow path's table (``flatten_gateway`` reads the same fields, in this order, one by one)."""

_LOG_ANALYTICS = SourceFormat.LOG_ANALYTICS
_NO_SOURCE = UsageSource.NONE
"""Enum members read once (reading one from its class is slow on a hot path too)."""


_URLS: dict[tuple[str, str], tuple[str, str, UrlFacts | None]] = {}
_URLS_SIZE = 4096


def _urls(url: str, backend_url: str) -> tuple[str, str, UrlFacts | None]:
    """A call's URL and backend URL without secrets, and the facts of the one that names it.

    The URL's facts name the deployment, API version and kind; the backend's when the URL is
    absent, or when the gateway rewrote the path and only the backend's names a deployment.
    Cached by the pair (calls repeat a few of them).
    """
    key = (url, backend_url)
    found = _URLS.get(key)
    if found is None:
        facts = url_facts(url) if url else None
        scrubbed = facts.scrubbed if facts is not None else ""
        backend = url_facts(backend_url).scrubbed if backend_url else ""
        if facts is None:
            if backend:
                facts = url_facts(backend)
        elif not facts.deployment and backend and scrubbed != backend:
            rewritten = url_facts(backend)
            if rewritten.deployment:
                facts = rewritten
        found = (scrubbed, backend, facts)
        if len(_URLS) >= _URLS_SIZE:
            _URLS.clear()
        _URLS[key] = found
    return found


def flatten_gateway(f: Fields, fmt: SourceFormat, finisher: Finisher) -> LandingRow | Rejected:
    """One GatewayLogs record (raises FieldError for a value that cannot be read).

    The hot path of the core: no throwaway dict per record, and a conversion runs only for a value
    of an unexpected type. Conversions that may raise run in the order they always did (time,
    strings, integers, the fallbacks, flags), which fixes the error a bad record reports.
    """
    get = f.get
    timestamp = to_datetime(get("time", get("timeGenerated")), "time", finisher.timestamp_formats)
    if timestamp is None:
        return Rejected(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
    row = finisher.blank.copy()
    row["Timestamp"] = timestamp
    row["Category"] = GATEWAY_LOGS
    row["SourceFormat"] = FORMAT_VALUES[fmt]
    # Field by field, not a loop over a table: a loop's own steps cost as much as the reading.
    # A missing or null field keeps the column's empty value; a number sent as an id needs to_str.
    value = get("correlationId")
    if value is not None:
        row["CorrelationId"] = value if value.__class__ is str else to_str(value)
    value = get("resourceId")
    if value is not None:
        row["ResourceId"] = value if value.__class__ is str else to_str(value)
    value = get("location")
    if value is not None:
        row["Region"] = value if value.__class__ is str else to_str(value)
    value = get("apimSubscriptionId")
    if value is not None:
        row["SubscriptionId"] = value if value.__class__ is str else to_str(value)
    value = get("productId")
    if value is not None:
        row["ProductId"] = value if value.__class__ is str else to_str(value)
    value = get("userId")
    if value is not None:
        row["UserId"] = value if value.__class__ is str else to_str(value)
    value = get("callerIpAddress")
    if value is not None:
        row["CallerIpAddress"] = value if value.__class__ is str else to_str(value)
    value = get("apiId")
    if value is not None:
        row["ApiId"] = value if value.__class__ is str else to_str(value)
    value = get("apiRevision")
    if value is not None:
        row["ApiRevision"] = value if value.__class__ is str else to_str(value)
    value = get("operationId")
    if value is not None:
        row["OperationId"] = value if value.__class__ is str else to_str(value)
    value = get("method")
    if value is not None:
        row["Method"] = value if value.__class__ is str else to_str(value)
    value = get("backendId")
    if value is not None:
        row["BackendId"] = value if value.__class__ is str else to_str(value)
    value = get("backendUrl")
    if value is not None:
        row["BackendUrl"] = value if value.__class__ is str else to_str(value)
    value = get("cache")
    if value is not None:
        row["Cache"] = value if value.__class__ is str else to_str(value)
    user = row["UserId"]
    if len(user) >= 20:  # an id field some gateways fill with a token (a secret is longer)
        row["UserId"] = mask_secrets(user)
    odd = False
    value = get("responseCode")
    if value is not None:
        if value.__class__ is not int or not INT_MIN <= value <= INT_MAX:
            odd = True
        row["ResponseCode"] = value
    value = get("backendResponseCode")
    if value is not None:
        if value.__class__ is not int or not INT_MIN <= value <= INT_MAX:
            odd = True
        row["BackendResponseCode"] = value
    value = get("durationMs")
    if value is not None:
        if value.__class__ is not int or not LONG_MIN <= value <= LONG_MAX:
            odd = True
        row["DurationMs"] = value
    value = get("backendTime")
    if value is not None:
        if value.__class__ is not int or not LONG_MIN <= value <= LONG_MAX:
            odd = True
        row["BackendTimeMs"] = value
    value = get("clientTime")
    if value is not None:
        if value.__class__ is not int or not LONG_MIN <= value <= LONG_MAX:
            odd = True
        row["ClientTimeMs"] = value
    value = get("requestSize")
    if value is not None:
        if value.__class__ is not int or not LONG_MIN <= value <= LONG_MAX:
            odd = True
        row["RequestSize"] = value
    value = get("responseSize")
    if value is not None:
        if value.__class__ is not int or not LONG_MIN <= value <= LONG_MAX:
            odd = True
        row["ResponseSize"] = value
    if odd:  # rare: a number sent as text, or out of range (then every one is checked)
        for column, key, low, high in _INTS:
            row[column] = to_int(get(key), key, low, high)  # type: ignore[literal-required]
    if not row["ResourceId"]:
        row["ResourceId"] = to_str(get("_ResourceId"))
    if not row["Region"]:
        row["Region"] = to_str(get("region"))
    if row["DurationMs"] is None:
        row["DurationMs"] = to_int(get("totalTime"), "totalTime")
    url = get("url")
    if url.__class__ is not str:
        url = to_str(url)
    row["Url"], row["BackendUrl"], facts = _urls(url, row["BackendUrl"])
    success = get("isRequestSuccess")
    row["IsRequestSuccess"] = (
        success
        if success is None or success.__class__ is bool
        else to_bool(success, "isRequestSuccess")
    )
    truncated = get("truncated")
    if truncated is not None:
        row["IsRecordTruncated"] = to_bool(truncated, "truncated")
    last_error = get("lastError")
    if isinstance(last_error, dict):
        errors = lower_keys(last_error)
        row["LastErrorSource"] = to_str(errors.get("source"))
        row["LastErrorReason"] = to_str(errors.get("reason"))
        row["LastErrorMessage"] = error_message(to_str(errors.get("message")))
        row["LastErrorSection"] = to_str(errors.get("section"))
    elif fmt is _LOG_ANALYTICS:  # Log Analytics flattens lastError into columns
        row["LastErrorSource"] = to_str(get("lastErrorSource"))
        row["LastErrorReason"] = to_str(get("lastErrorReason"))
        row["LastErrorMessage"] = error_message(to_str(get("lastErrorMessage")))
        row["LastErrorSection"] = to_str(get("lastErrorSection"))
    if row["ResponseCode"] == 429:
        row["ThrottledBy"] = "backend" if row["BackendResponseCode"] == 429 else "apim"

    # Backend bodies are what the model saw and said; frontend ones are the fallback.
    request = analyze_request(get("backendRequestBody") or get("requestBody"))
    response = analyze_response(get("backendResponseBody") or get("responseBody"))
    kind = ""
    if facts is not None:
        if facts.deployment:
            row["DeploymentName"] = facts.deployment
        elif facts.model_in_body and request.model:  # the body's model names the deployment
            row["DeploymentName"] = request.model
        if facts.api_version:
            row["ApiVersion"] = facts.api_version
        kind = facts.kind
    if not kind:
        operation_id = row["OperationId"]
        kind = (normalize_kind(operation_id) if operation_id else "") or "other"
    row["OperationKind"] = kind
    finisher.finish_call(row, request, response, None, _NO_SOURCE)
    return row
