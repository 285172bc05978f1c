"""``GatewayLlmLogs`` records: token counts and message chunks of APIM's LLM logging."""

from __future__ import annotations

from ingest.core.bodies import Usage, render_messages
from ingest.core.coerce import INT_MAX, INT_MIN, to_bool, to_datetime, to_int, to_str
from ingest.core.flatten.fields import GATEWAY_LLM_LOGS, Fields
from ingest.core.flatten.finish import (
    Finisher,
    input_excluding_cache,
    is_anthropic,
    normalize_kind,
    set_usage,
)
from ingest.model import (
    LandingRow,
    Rejected,
    RejectReason,
    SourceFormat,
    UsageSource,
    empty_landing_row,
)

_FORMATS = {fmt: fmt.value for fmt in SourceFormat}
"""Plain strings of the source formats (an enum's ``.value`` is a slow property on a hot path)."""
_NO_USAGE = UsageSource.NONE.value
_LLM_LOG = UsageSource.LLM_LOG
"""An enum member read once (reading one from its class is slow on a hot path)."""


def flatten_llm(f: Fields, fmt: SourceFormat, finisher: Finisher) -> LandingRow | Rejected:
    """One GatewayLlmLogs record (raises FieldError for a value that cannot be read)."""
    row = empty_landing_row()
    timestamp = to_datetime(
        f.get("time", f.get("timeGenerated")), "time", finisher.timestamp_formats
    )
    if timestamp is None:
        return Rejected(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
    row["Timestamp"] = timestamp
    row["Category"] = GATEWAY_LLM_LOGS
    row["SourceFormat"] = _FORMATS[fmt]
    row["CorrelationId"] = to_str(f.get("correlationId"))
    row["RequestId"] = to_str(f.get("requestId"))
    row["SequenceNumber"] = to_int(f.get("sequenceNumber"), "sequenceNumber", INT_MIN, INT_MAX)
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
        cache_write=to_int(f.get("cacheWriteTokens"), "cacheWriteTokens"),
    )
    if (usage.cached or usage.cache_write) and is_anthropic(
        row["ModelName"], row["DeploymentName"]
    ):
        # For Claude models APIM logs promptTokens without the cached part, beside it.
        usage = input_excluding_cache(usage)
    if usage.prompt is not None or usage.completion is not None or usage.total is not None:
        set_usage(row, usage, _LLM_LOG)
    else:
        row["UsageSource"] = _NO_USAGE
    if finisher.capturing:
        row["PromptText"] = finisher.capture(render_messages(f.get("requestMessages")))
        row["CompletionText"] = finisher.capture(render_messages(f.get("responseMessages")))
    return row
