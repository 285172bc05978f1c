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


def normalize_kind(value: str) -> str:
    """An operation id, object type or description as one of the operation kinds."""
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


def apply_url(row: LandingRow, url: str, request: RequestInfo) -> None:
    """Deployment, API version and kind from the URL (v1 API: deployment is the body's model)."""
    m = _DEPLOYMENT.search(url)
    if m is not None:
        row["DeploymentName"] = m.group(1)
    elif "/openai/v1/" in url.lower() and request.model:
        row["DeploymentName"] = request.model
    m = _API_VERSION.search(url)
    if m is not None:
        row["ApiVersion"] = m.group(1)
    elif "/openai/v1/" in url.lower():
        row["ApiVersion"] = "v1"
    kind = kind_from_url(url)
    if kind:
        row["OperationKind"] = kind


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
    row["UsageSource"] = source.value


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
        top = lower_keys(record)
        category = to_str(top.get("category"))
        if not category:
            category = _CATEGORY_BY_TYPE.get(to_str(top.get("type")).lower(), "")
        fmt = (
            SourceFormat.LOG_ANALYTICS
            if "timegenerated" in top and "time" not in top
            else SourceFormat.DIAGNOSTICS
        )
        try:
            if category == GATEWAY_LOGS:
                return self._gateway(top, fmt)
            if category == GATEWAY_LLM_LOGS:
                return self._llm(top, fmt)
            if category:
                return Reject(
                    RejectReason.UNSUPPORTED_CATEGORY,
                    f"category `{category[:80]}` is not GatewayLogs or GatewayLlmLogs",
                    fmt.value,
                )
            return self.policy.flatten(top, self, fallback_time)
        except TimestampError as exc:
            return Reject(
                RejectReason.BAD_TIMESTAMP, str(exc), fmt.value if category else POLICY_FORMAT
            )
        except FieldError as exc:
            return Reject(
                RejectReason.BAD_FIELD, str(exc), fmt.value if category else POLICY_FORMAT
            )

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
        prompt = estimate_tokens(request.text()) if request.document is not None else None
        completion: int | None = None
        if kind == "embeddings":
            completion = 0 if prompt is not None else None
        elif response.document is not None or response.chunks:
            completion = estimate_tokens(response.text())
        if prompt is None and completion is None:
            return
        set_usage(row, Usage(prompt=prompt, completion=completion), UsageSource.ESTIMATED)

    # -- GatewayLogs -----------------------------------------------------------------------------

    def _gateway(self, top: dict[str, Any], fmt: SourceFormat) -> LandingRow | Reject:
        f = {**top, **lower_keys(top.get("properties"))}
        row = empty_landing_row()
        timestamp = to_datetime(f.get("time", f.get("timegenerated")), "time")
        if timestamp is None:
            return Reject(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
        row["Timestamp"] = timestamp
        row["Category"] = GATEWAY_LOGS
        row["SourceFormat"] = fmt.value
        row["CorrelationId"] = to_str(f.get("correlationid"))
        row["ResourceId"] = to_str(f.get("resourceid", f.get("_resourceid")))
        row["Region"] = to_str(f.get("location", f.get("region")))
        row["SubscriptionId"] = to_str(f.get("apimsubscriptionid"))
        row["ProductId"] = to_str(f.get("productid"))
        row["UserId"] = to_str(f.get("userid"))
        row["CallerIpAddress"] = to_str(f.get("calleripaddress"))
        row["ApiId"] = to_str(f.get("apiid"))
        row["ApiRevision"] = to_str(f.get("apirevision"))
        operation_id = to_str(f.get("operationid"))
        row["OperationId"] = operation_id
        row["Method"] = to_str(f.get("method"))
        url = to_str(f.get("url"))
        row["Url"] = scrub_url(url)
        row["BackendId"] = to_str(f.get("backendid"))
        row["BackendUrl"] = scrub_url(to_str(f.get("backendurl")))
        code = to_int(f.get("responsecode"), "responseCode")
        backend_code = to_int(f.get("backendresponsecode"), "backendResponseCode")
        row["ResponseCode"] = code
        row["BackendResponseCode"] = backend_code
        row["IsRequestSuccess"] = to_bool(f.get("isrequestsuccess"), "isRequestSuccess")
        row["DurationMs"] = to_int(f.get("durationms", f.get("totaltime")), "durationMs")
        row["BackendTimeMs"] = to_int(f.get("backendtime"), "backendTime")
        row["ClientTimeMs"] = to_int(f.get("clienttime"), "clientTime")
        row["RequestSize"] = to_int(f.get("requestsize"), "requestSize")
        row["ResponseSize"] = to_int(f.get("responsesize"), "responseSize")
        row["Cache"] = to_str(f.get("cache"))
        row["IsRecordTruncated"] = to_bool(f.get("truncated"), "truncated")
        last_error = lower_keys(f.get("lasterror"))
        row["LastErrorSource"] = to_str(last_error.get("source", f.get("lasterrorsource")))
        row["LastErrorReason"] = to_str(last_error.get("reason", f.get("lasterrorreason")))
        row["LastErrorMessage"] = to_str(last_error.get("message", f.get("lasterrormessage")))[
            :1024
        ]
        row["LastErrorSection"] = to_str(last_error.get("section", f.get("lasterrorsection")))
        if code == 429:
            row["ThrottledBy"] = "backend" if backend_code == 429 else "apim"

        # Backend bodies are what the model saw and said; frontend ones are the fallback.
        request = analyze_request(f.get("backendrequestbody") or f.get("requestbody"))
        response = analyze_response(f.get("backendresponsebody") or f.get("responsebody"))
        row["OperationKind"] = normalize_kind(operation_id) if operation_id else ""
        apply_url(row, url or row["BackendUrl"], request)
        if not row["OperationKind"]:
            row["OperationKind"] = "other"
        self.finish_call(row, request, response, None, UsageSource.NONE)
        return row

    # -- GatewayLlmLogs --------------------------------------------------------------------------

    def _llm(self, top: dict[str, Any], fmt: SourceFormat) -> LandingRow | Reject:
        f = {**top, **lower_keys(top.get("properties"))}
        row = empty_landing_row()
        timestamp = to_datetime(f.get("time", f.get("timegenerated")), "time")
        if timestamp is None:
            return Reject(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
        row["Timestamp"] = timestamp
        row["Category"] = GATEWAY_LLM_LOGS
        row["SourceFormat"] = fmt.value
        row["CorrelationId"] = to_str(f.get("correlationid"))
        row["RequestId"] = to_str(f.get("requestid"))
        row["SequenceNumber"] = to_int(f.get("sequencenumber"), "sequenceNumber")
        row["ResourceId"] = to_str(f.get("resourceid", f.get("_resourceid")))
        row["Region"] = to_str(f.get("region", f.get("location")))
        row["DeploymentName"] = to_str(f.get("deploymentname"))
        row["ModelName"] = to_str(f.get("modelname"))
        row["ApiVersion"] = to_str(f.get("apiversion"))
        operation = to_str(f.get("operationname"))
        if operation.lower().startswith("microsoft.apimanagement/"):
            operation = ""
        row["OperationId"] = operation
        row["OperationKind"] = normalize_kind(operation)
        row["IsStreaming"] = to_bool(f.get("isstreamcompletion"), "isStreamCompletion")
        usage = Usage(
            prompt=to_int(f.get("prompttokens"), "promptTokens"),
            completion=to_int(f.get("completiontokens"), "completionTokens"),
            total=to_int(f.get("totaltokens"), "totalTokens"),
            cached=to_int(f.get("cachedtokens", f.get("promptcachedtokens")), "cachedTokens"),
            reasoning=to_int(f.get("reasoningtokens"), "reasoningTokens"),
        )
        if usage.prompt is not None or usage.completion is not None or usage.total is not None:
            set_usage(row, usage, UsageSource.LLM_LOG)
        else:
            row["UsageSource"] = UsageSource.NONE.value
        if self._capture:
            mode, limit = self.settings.capture_text, self.settings.capture_text_max_chars
            row["PromptText"] = capture(render_messages(f.get("requestmessages")), mode, limit)
            row["CompletionText"] = capture(render_messages(f.get("responsemessages")), mode, limit)
        return row


POLICY_FORMAT = SourceFormat.POLICY.value
