"""``GatewayLlmLogs`` records: token counts and message chunks of APIM's LLM logging."""

from __future__ import annotations

from ingest.core.bodies import Usage, render_messages
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
from ingest.core.flatten.fields import FORMAT_VALUES, GATEWAY_LLM_LOGS, Fields
from ingest.core.flatten.finish import (
    NO_USAGE,
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
)

_LLM_LOG = UsageSource.LLM_LOG
"""An enum member read once (reading one from its class is slow on a hot path)."""


_TOKENS = (
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "cachedTokens",
    "reasoningTokens",
    "cacheWriteTokens",
)
"""The token count fields, in the order of Usage's fields."""


def flatten_llm(f: Fields, fmt: SourceFormat, finisher: Finisher) -> LandingRow | Rejected:
    """One GatewayLlmLogs record (raises FieldError for a value that cannot be read).

    As for GatewayLogs, a conversion runs only for a value of an unexpected type, and those that
    may raise run in the order they always did (sequence number, streaming flag, token counts).
    """
    get = f.get
    timestamp = to_datetime(get("time", get("timeGenerated")), "time", finisher.timestamp_formats)
    if timestamp is None:
        return Rejected(RejectReason.BAD_TIMESTAMP, "record has no `time`", fmt.value)
    row = finisher.blank.copy()
    row["Timestamp"] = timestamp
    row["Category"] = GATEWAY_LLM_LOGS
    row["SourceFormat"] = FORMAT_VALUES[fmt]
    value = get("correlationId")
    if value is not None:
        row["CorrelationId"] = value if value.__class__ is str else to_str(value)
    value = get("requestId")
    if value is not None:
        row["RequestId"] = value if value.__class__ is str else to_str(value)
    value = get("deploymentName")
    if value is not None:
        row["DeploymentName"] = value if value.__class__ is str else to_str(value)
    value = get("modelName")
    if value is not None:
        row["ModelName"] = value if value.__class__ is str else to_str(value)
    value = get("apiVersion")
    if value is not None:
        row["ApiVersion"] = value if value.__class__ is str else to_str(value)
    sequence = get("sequenceNumber")
    if sequence is not None and (
        sequence.__class__ is not int or not INT_MIN <= sequence <= INT_MAX
    ):
        sequence = to_int(sequence, "sequenceNumber", INT_MIN, INT_MAX)
    row["SequenceNumber"] = sequence
    row["ResourceId"] = to_str(get("resourceId", get("_ResourceId")))
    region = get("Region", get("region", get("location")))
    row["Region"] = region if region.__class__ is str else to_str(region)
    operation = get("operationName")
    if operation.__class__ is not str:
        operation = to_str(operation)
    if operation:
        if operation.lower().startswith("microsoft.apimanagement/"):
            operation = ""
        row["OperationId"] = operation
        row["OperationKind"] = normalize_kind(operation)
    streaming = get("isStreamCompletion")
    if streaming is not None and streaming.__class__ is not bool:
        streaming = to_bool(streaming, "isStreamCompletion")
    row["IsStreaming"] = streaming
    prompt = get("promptTokens")
    completion = get("completionTokens")
    total = get("totalTokens")
    cached = get("cachedTokens") if "cachedTokens" in f else get("promptCachedTokens")
    reasoning = get("reasoningTokens")
    write = get("cacheWriteTokens")
    if (
        prompt.__class__ is not int
        or completion.__class__ is not int
        or total.__class__ is not int
        or cached is not None
        or reasoning is not None
        or write is not None
        or not LONG_MIN <= prompt <= LONG_MAX
        or not LONG_MIN <= completion <= LONG_MAX
        or not LONG_MIN <= total <= LONG_MAX
    ):  # not the common case of three counts that fit and no other: each one is checked
        counts = [prompt, completion, total, cached, reasoning, write]
        for index, value in enumerate(counts):
            if value is not None and (
                value.__class__ is not int or not LONG_MIN <= value <= LONG_MAX
            ):
                counts[index] = to_int(value, _TOKENS[index])
        prompt, completion, total, cached, reasoning, write = counts
    usage = Usage(prompt, completion, total, cached, reasoning, write)
    if (usage.cached or usage.cache_write) and is_anthropic(
        row["ModelName"], row["DeploymentName"]
    ):
        # For Claude models APIM logs promptTokens without the cached part, beside it.
        usage = input_excluding_cache(usage)
    if usage.prompt is not None or usage.completion is not None or usage.total is not None:
        set_usage(row, usage, _LLM_LOG)
    else:
        row["UsageSource"] = NO_USAGE
    if finisher.capturing:
        row["PromptText"] = finisher.capture(render_messages(get("requestMessages")))
        row["CompletionText"] = finisher.capture(render_messages(get("responseMessages")))
    return row
