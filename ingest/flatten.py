"""One APIM record -> one landing row, or the reason it cannot be one.

Dispatch is by category: ``GatewayLogs`` and ``GatewayLlmLogs`` diagnostic records (camelCase as
streamed to Event Hubs, or PascalCase as exported from Log Analytics), and anything else that the
log-to-eventhub mapping (``ingest.policy``) can read. Field lookup is case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ingest.bodies import (
    LLM_KINDS,
    RequestInfo,
    ResponseInfo,
    Usage,
    analyze_request,
    analyze_response,
    estimate_tokens,
    render_messages,
)
from ingest.coerce import FieldError, TimestampError, to_bool, to_datetime, to_int, to_str
from ingest.config import CoreSettings
from ingest.model import LandingRow, RejectReason, SourceFormat, UsageSource, empty_landing_row
from ingest.privacy import CaptureMode, capture, scrub_url

GATEWAY_LOGS = "GatewayLogs"
GATEWAY_LLM_LOGS = "GatewayLlmLogs"
POLICY = "Policy"

_CATEGORY_BY_TYPE = {
    "apimanagementgatewaylogs": GATEWAY_LOGS,
    "apimanagementgatewaylog": GATEWAY_LOGS,
    "apimanagementgatewayllmlog": GATEWAY_LLM_LOGS,
    "apimanagementgatewayllmlogs": GATEWAY_LLM_LOGS,
}
"""Log Analytics table names (the ``Type`` column of an export) and their categories."""

OPERATION_KINDS = {
    "chatcompletions_create": "chat",
    "completions_create": "completions",
    "embeddings_create": "embeddings",
    "createresponse": "responses",
    "responses_create": "responses",
    "imagegenerations_create": "images",
    "imagesgenerations_create": "images",
    "transcriptions_create": "audio",
    "translations_create": "audio",
    "speech_create": "audio",
}
"""Azure OpenAI operation ids (from the OpenAPI spec) and the kind of call they are."""

_OBJECT_KINDS = {
    "chat.completion": "chat",
    "chat.completion.chunk": "chat",
    "text_completion": "completions",
    "embedding": "embeddings",
    "response": "responses",
}

_DEPLOYMENT = re.compile(r"/deployments/([^/?#]+)", re.IGNORECASE)
_API_VERSION = re.compile(r"[?&]api-version=([^&#]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Reject:
    """Why a record cannot become a landing row."""

    reason: RejectReason
    detail: str
    source_format: str = ""


def lower_keys(obj: Any) -> dict[str, Any]:
    """A dict with lower-cased keys ({} for anything that is not a dict)."""
    if not isinstance(obj, dict):
        return {}
    return {k.lower() if isinstance(k, str) else k: v for k, v in obj.items()}


def kind_from_url(url: str) -> str:
    """The operation kind from an Azure OpenAI URL path ('' when the path does not say)."""
    path = url.split("?", 1)[0].lower().rstrip("/")
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/completions"):
        return "completions"
    if path.endswith("/embeddings"):
        return "embeddings"
    if "/responses" in path:
        return "responses"
    if "/images/" in path:
        return "images"
    if "/audio/" in path:
        return "audio"
    return ""


_KIND_CACHE: dict[str, str] = {}


def normalize_kind(value: str) -> str:
    """An operation id, object type or description as one of the operation kinds (cached)."""
    kind = _KIND_CACHE.get(value)
    if kind is None:
        kind = _normalize_kind(value)
        if len(_KIND_CACHE) < 4096:
            _KIND_CACHE[value] = kind
    return kind


def _normalize_kind(value: str) -> str:
    text = value.strip().lower()
    if not text:
        return ""
    if text in OPERATION_KINDS:
        return OPERATION_KINDS[text]
    if text in _OBJECT_KINDS:
        return _OBJECT_KINDS[text]
    if text in ("chat", "completions", "embeddings", "responses", "images", "audio", "other"):
        return text
    for needle, kind in (
        ("chat", "chat"),
        ("embed", "embeddings"),
        ("response", "responses"),
        ("completion", "completions"),
        ("image", "images"),
        ("audio", "audio"),
        ("speech", "audio"),
        ("transcri", "audio"),
    ):
        if needle in text:
            return kind
    return "other"


@dataclass(frozen=True, slots=True)
class UrlFacts:
    """What an Azure OpenAI URL says: deployment, API version, kind, and its secret-free form."""

    deployment: str
    api_version: str
    kind: str
    is_v1: bool
    scrubbed: str


_URL_CACHE: dict[str, UrlFacts] = {}
_URL_CACHE_SIZE = 4096
"""URLs repeat (a few deployments and API versions), so their facts are computed once."""


def url_facts(url: str) -> UrlFacts:
    """Facts of a URL, cached."""
    facts = _URL_CACHE.get(url)
    if facts is None:
        is_v1 = "/openai/v1/" in url.lower()
        m = _DEPLOYMENT.search(url)
        v = _API_VERSION.search(url)
        facts = UrlFacts(
            deployment=m.group(1) if m else "",
            api_version=v.group(1) if v else ("v1" if is_v1 else ""),
            kind=kind_from_url(url),
            is_v1=is_v1,
            scrubbed=scrub_url(url),
        )
        if len(_URL_CACHE) >= _URL_CACHE_SIZE:
            _URL_CACHE.clear()
        _URL_CACHE[url] = facts
    return facts


def apply_url(row: LandingRow, url: str, request: RequestInfo) -> None:
    """Deployment, API version and kind from the URL (v1 API: deployment is the body's model)."""
    if not url:
        return
    facts = url_facts(url)
    if facts.deployment:
        row["DeploymentName"] = facts.deployment
    elif facts.is_v1 and request.model:
        row["DeploymentName"] = request.model
    if facts.api_version:
        row["ApiVersion"] = facts.api_version
    if facts.kind:
        row["OperationKind"] = facts.kind


_SOURCE_VALUES = {source: source.value for source in UsageSource}
"""Plain strings of the usage sources (an enum's ``.value`` is a slow property on a hot path)."""


def set_usage(row: LandingRow, usage: Usage, source: UsageSource) -> None:
    """Write token counts, deriving the total (and embeddings' zero completion) when absent."""
    completion = usage.completion
    if completion is None and row["OperationKind"] == "embeddings":
        completion = 0
    total = usage.total
    if total is None and usage.prompt is not None and completion is not None:
        total = usage.prompt + completion
    row["PromptTokens"] = usage.prompt
    row["CompletionTokens"] = completion
    row["TotalTokens"] = total
    row["CachedTokens"] = usage.cached
    row["ReasoningTokens"] = usage.reasoning
    row["UsageSource"] = _SOURCE_VALUES[source]


class Flattener:
    """Turns decoded records into landing rows with the configured capture and mapping."""

    def __init__(self, settings: CoreSettings) -> None:
        from ingest.policy import PolicyMapping  # local: policy imports this module's helpers

        self.settings = settings
        self.policy = PolicyMapping.load(settings.policy_mapping_file)
        self._capture = settings.capture_text is not CaptureMode.NONE

    def flatten(self, record: Any, fallback_time: str | None = None) -> LandingRow | Reject:
        """Flatten one record; never raises on bad input."""
        if not isinstance(record, dict):
            return Reject(
                RejectReason.NOT_A_RECORD, f"record is a {type(record).__name__}, not an object"
            )
        fields, fmt = _fields(record)
        category = to_str(fields.get("category"))
        if not category:
            category = _CATEGORY_BY_TYPE.get(to_str(fields.get("type")).lower(), "")
        if not category and fmt is SourceFormat.DIAGNOSTICS:
            fmt = SourceFormat.POLICY
        try:
            if category == GATEWAY_LOGS:
                return self._gateway(fields, fmt)
            if category == GATEWAY_LLM_LOGS:
                return self._llm(fields, fmt)
            if category:
                return Reject(
                    RejectReason.UNSUPPORTED_CATEGORY,
                    f"category `{category[:80]}` is not GatewayLogs or GatewayLlmLogs",
                    fmt.value,
                )
            return self.policy.flatten(lower_keys(record), self, fallback_time)
        except TimestampError as bad_time:
            return Reject(RejectReason.BAD_TIMESTAMP, str(bad_time), fmt.value)
        except FieldError as bad_field:  # one name per except: compiled code types each
            return Reject(RejectReason.BAD_FIELD, str(bad_field), fmt.value)

    # -- helpers shared with the policy mapping ------------------------------------------------

    def finish_call(
        self,
        row: LandingRow,
        request: RequestInfo,
        response: ResponseInfo,
        exact: Usage | None,
        exact_source: UsageSource,
    ) -> None:
        """Fill model, streaming, errors, tokens and text from what the bodies say."""
        if not row["ModelName"]:
            row["ModelName"] = response.model
        if not row["RequestId"]:
            row["RequestId"] = response.request_id
        if row["IsStreaming"] is None and (request.stream is not None or response.present):
            row["IsStreaming"] = bool(request.stream) or response.is_sse
        if not row["FinishReason"]:
            row["FinishReason"] = response.finish_reason
        if not row["ErrorCode"]:
            row["ErrorCode"] = response.error_code
            row["ErrorMessage"] = response.error_message[:1024]
        row["IsRequestBodyTruncated"] = request.truncated if request.present else None
        row["IsResponseBodyTruncated"] = response.truncated if response.present else None

        if exact is not None:
            set_usage(row, exact, exact_source)
        elif response.usage is not None:
            set_usage(row, response.usage, response.usage_source)
        else:
            self._estimate(row, request, response)

        if self._capture:
            mode, limit = self.settings.capture_text, self.settings.capture_text_max_chars
            row["PromptText"] = capture(request.text(), mode, limit)
            row["CompletionText"] = capture(response.text(), mode, limit)

    def _estimate(self, row: LandingRow, request: RequestInfo, response: ResponseInfo) -> None:
        row["UsageSource"] = UsageSource.NONE.value
        kind = row["OperationKind"]
        code = row["ResponseCode"]
        if not self.settings.estimate_tokens or kind not in LLM_KINDS:
            return
        if code is not None and not 200 <= code < 300:
            return
        prompt = estimate_tokens(len(request.text())) if request.document is not None else None
        completion: int | None = None
        if kind == "embeddings":
            completion = 0 if prompt is not None else None
        elif response.has_text:
            completion = estimate_tokens(response.text_length())
        if prompt is None and completion is None:
            return
        set_usage(row, Usage(prompt=prompt, completion=completion), UsageSource.ESTIMATED)

    # -- GatewayLogs -----------------------------------------------------------------------------

    def _gateway(self, f: _Fields, fmt: SourceFormat) -> LandingRow | Reject:
        row = empty_landing_row()
        timestamp = to_datetime(f.get("time", f.get("timeGenerated")), "time")
        if timestamp is None:
            return Reject(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
        row["Timestamp"] = timestamp
        row["Category"] = GATEWAY_LOGS
        row["SourceFormat"] = fmt.value
        texts = {column: v for column, key in _GATEWAY_STRINGS if (v := f.get(key)) is not None}
        numbers = {column: v for column, key in _GATEWAY_INTS if (v := f.get(key)) is not None}
        if texts and set(map(type, texts.values())) != {str}:  # rare: an id sent as a number
            texts = {column: to_str(value) for column, value in texts.items()}
        if numbers and set(map(type, numbers.values())) != {int}:  # rare: a number sent as text
            numbers = {c: to_int(v, _GATEWAY_KEYS[c]) for c, v in numbers.items()}
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
        row["IsRecordTruncated"] = (
            to_bool(truncated, "truncated") if truncated is not None else None
        )
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
        self.finish_call(row, request, response, None, UsageSource.NONE)
        return row

    # -- GatewayLlmLogs --------------------------------------------------------------------------

    def _llm(self, f: _Fields, fmt: SourceFormat) -> LandingRow | Reject:
        row = empty_landing_row()
        timestamp = to_datetime(f.get("time", f.get("timeGenerated")), "time")
        if timestamp is None:
            return Reject(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
        row["Timestamp"] = timestamp
        row["Category"] = GATEWAY_LLM_LOGS
        row["SourceFormat"] = fmt.value
        row["CorrelationId"] = to_str(f.get("correlationId"))
        row["RequestId"] = to_str(f.get("requestId"))
        row["SequenceNumber"] = to_int(f.get("sequenceNumber"), "sequenceNumber")
        row["ResourceId"] = to_str(f.get("resourceId", f.get("_ResourceId")))
        row["Region"] = to_str(f.get("Region", f.get("region", f.get("location"))))
        row["DeploymentName"] = to_str(f.get("deploymentName"))
        row["ModelName"] = to_str(f.get("modelName"))
        row["ApiVersion"] = to_str(f.get("apiVersion"))
        operation = to_str(f.get("operationName"))
        if operation.lower().startswith("microsoft.apimanagement/"):
            operation = ""
        row["OperationId"] = operation
        row["OperationKind"] = normalize_kind(operation)
        row["IsStreaming"] = to_bool(f.get("isStreamCompletion"), "isStreamCompletion")
        usage = Usage(
            prompt=to_int(f.get("promptTokens"), "promptTokens"),
            completion=to_int(f.get("completionTokens"), "completionTokens"),
            total=to_int(f.get("totalTokens"), "totalTokens"),
            cached=to_int(f.get("cachedTokens", f.get("promptCachedTokens")), "cachedTokens"),
            reasoning=to_int(f.get("reasoningTokens"), "reasoningTokens"),
        )
        if usage.prompt is not None or usage.completion is not None or usage.total is not None:
            set_usage(row, usage, UsageSource.LLM_LOG)
        else:
            row["UsageSource"] = UsageSource.NONE.value
        if self._capture:
            mode, limit = self.settings.capture_text, self.settings.capture_text_max_chars
            messages = render_messages(f.get("requestMessages"))
            row["PromptText"] = capture(messages, mode, limit)
            messages = render_messages(f.get("responseMessages"))
            row["CompletionText"] = capture(messages, mode, limit)
        return row


_Fields = dict[str, Any]
"""A record's top level merged with its ``properties``, keyed by the camelCase field names."""

KNOWN_FIELDS = (
    "time timeGenerated category type correlationId resourceId _ResourceId location region "
    "apimSubscriptionId productId userId callerIpAddress apiId apiRevision operationId "
    "operationName method url backendId backendUrl cache responseCode backendResponseCode "
    "durationMs totalTime backendTime clientTime requestSize responseSize isRequestSuccess "
    "truncated lastError lastErrorSource lastErrorReason lastErrorMessage lastErrorSection "
    "backendRequestBody requestBody backendResponseBody responseBody requestId sequenceNumber "
    "deploymentName modelName apiVersion isStreamCompletion promptTokens completionTokens "
    "totalTokens cachedTokens promptCachedTokens reasoningTokens requestMessages "
    "responseMessages"
).split()
"""Every field the diagnostic readers look up, in the camelCase the Event Hub stream uses."""

_CANONICAL = {name.lower(): name for name in KNOWN_FIELDS}


def _is_camel(obj: dict[str, Any]) -> bool:
    for key in obj:
        return isinstance(key, str) and key[:1].islower()
    return True


def _canonical(obj: dict[str, Any], into: dict[str, Any]) -> None:
    for key, value in obj.items():
        if isinstance(key, str):
            into[_CANONICAL.get(key.lower(), key)] = value


def _fields(record: dict[str, Any]) -> tuple[_Fields, SourceFormat]:
    """The merged fields of a record, keyed by camelCase names, and the shape it came in."""
    properties = record.get("properties")
    if "time" in record and isinstance(properties, dict) and _is_camel(properties):
        # The Event Hub stream (camelCase): the fast path. The properties' "operationName"
        # (GatewayLlmLogs) wins over the top level's, which only names the log category.
        return {**record, **properties}, SourceFormat.DIAGNOSTICS
    merged: dict[str, Any] = {}
    _canonical(record, merged)
    nested = record.get("properties", record.get("Properties"))
    if isinstance(nested, dict):
        _canonical(nested, merged)
    exported = "timeGenerated" in merged and "time" not in merged
    return merged, SourceFormat.LOG_ANALYTICS if exported else SourceFormat.DIAGNOSTICS


_GATEWAY_STRINGS = (
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

_GATEWAY_INTS = (
    ("ResponseCode", "responseCode"),
    ("BackendResponseCode", "backendResponseCode"),
    ("DurationMs", "durationMs"),
    ("BackendTimeMs", "backendTime"),
    ("ClientTimeMs", "clientTime"),
    ("RequestSize", "requestSize"),
    ("ResponseSize", "responseSize"),
)
"""GatewayLogs integer columns and their (camelCase) field names."""

_GATEWAY_KEYS = dict(_GATEWAY_STRINGS + _GATEWAY_INTS)
