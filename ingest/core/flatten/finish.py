"""What every input family shares once its own fields are read: kinds, URL facts, tokens, text.

``Finisher.finish_call`` fills model, streaming, errors, token counts (exact, or estimated) and the
captured text from what the logged bodies say; GatewayLogs records and log-to-eventhub payloads
both end here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.config import CaptureMode, CoreSettings
from ingest.core.bodies import LLM_KINDS, RequestInfo, ResponseInfo, Usage, estimate_tokens
from ingest.core.coerce import LONG_MAX, FieldError
from ingest.core.privacy import capturer, mask_secrets, scrub_url
from ingest.model import LandingRow, UsageSource, empty_landing_row

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
    "messages_create": "chat",
}
"""Azure OpenAI operation ids (from the OpenAPI spec) and the kind of call they are."""

_OBJECT_KINDS = {
    "chat.completion": "chat",
    "chat.completion.chunk": "chat",
    "text_completion": "completions",
    "embedding": "embeddings",
    "response": "responses",
    "message": "chat",
}

_DEPLOYMENT = re.compile(r"/deployments/([^/?#]+)", re.IGNORECASE)
_API_VERSION = re.compile(r"[?&]api-version=([^&#]+)", re.IGNORECASE)


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
    if path.endswith("/messages") and "/threads/" not in path:  # Anthropic Messages API
        return "chat"
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
    """What an LLM URL says: deployment, API version, kind, and its secret-free form.

    ``model_in_body``: the path names no deployment but is an LLM endpoint (the v1 API,
    ``/openai/responses``, Anthropic's ``/anthropic/v1/messages``, Foundry's ``/models/...``): the
    request body's ``model`` names the deployment.
    """

    deployment: str
    api_version: str
    kind: str
    model_in_body: bool
    scrubbed: str


_URL_CACHE: dict[str, UrlFacts] = {}
_URL_CACHE_SIZE = 4096
"""URLs repeat (a few deployments and API versions), so their facts are computed once."""


def url_facts(url: str) -> UrlFacts:
    """Facts of a URL, cached."""
    facts = _URL_CACHE.get(url)
    if facts is None:
        is_v1 = "/openai/v1/" in url.lower()
        scrubbed = scrub_url(url)  # the facts too: a JWT as the deployment, `;sig=` after a value
        m = _DEPLOYMENT.search(scrubbed)
        v = _API_VERSION.search(scrubbed)
        kind = kind_from_url(url)
        facts = UrlFacts(
            deployment=m.group(1) if m else "",
            api_version=v.group(1) if v else ("v1" if is_v1 else ""),
            kind=kind,
            model_in_body=m is None and (is_v1 or kind != ""),
            scrubbed=scrubbed,
        )
        if len(_URL_CACHE) >= _URL_CACHE_SIZE:
            _URL_CACHE.clear()
        _URL_CACHE[url] = facts
    return facts


_MESSAGES: dict[str, str] = {}
_MESSAGES_SIZE = 1024
_MESSAGE_MAX_CACHED = 512


def error_message(message: str) -> str:
    """An error message as a row keeps it: masked, then cut (cached: errors repeat, as 429s do).

    Messages longer than a few hundred characters are masked each time (rarely the same twice).
    """
    masked = _MESSAGES.get(message)
    if masked is None:
        masked = mask_secrets(message)[:1024]
        if len(message) <= _MESSAGE_MAX_CACHED:
            if len(_MESSAGES) >= _MESSAGES_SIZE:
                _MESSAGES.clear()
            _MESSAGES[message] = masked
    return masked


def apply_url(row: LandingRow, url: str, request: RequestInfo) -> None:
    """Deployment, API version and kind from the URL (or the body's model: see UrlFacts)."""
    if not url:
        return
    facts = url_facts(url)
    if facts.deployment:
        row["DeploymentName"] = facts.deployment
    elif facts.model_in_body and request.model:
        row["DeploymentName"] = request.model
    if facts.api_version:
        row["ApiVersion"] = facts.api_version
    if facts.kind:
        row["OperationKind"] = facts.kind


_SOURCE_VALUES = {source: source.value for source in UsageSource}
"""Plain strings of the usage sources (an enum's ``.value`` is a slow property on a hot path)."""
NO_USAGE = UsageSource.NONE.value
"""The UsageSource column's value for a row whose tokens no record gives."""
_ESTIMATED = UsageSource.ESTIMATED
"""An enum member read once (reading one from its class is slow on a hot path too)."""


CONTRADICTORY = "contradictory"
"""UsageFlag of counts that cannot all be true (a negative count, more cached than prompt tokens,
more reasoning than completion tokens, a total that is not prompt + completion)."""
LOWER_BOUND = "lower_bound"
"""UsageFlag of an estimate from the visible part of a cut body: the call used at least that."""


def _contradicts(usage: Usage, completion: int | None) -> bool:
    prompt, total, cached, write = usage.prompt, usage.total, usage.cached, usage.cache_write
    reasoning = usage.reasoning
    if prompt is not None:
        if prompt < 0:
            return True
        if (cached or write) and (cached or 0) + (write or 0) > prompt:
            return True
        if total is not None and completion is not None and total != prompt + completion:
            return True
    if completion is not None:
        if completion < 0:
            return True
        if reasoning and reasoning > completion:
            return True
    # Negative parts the checks above let through (a prompt or completion unknown).
    return (
        (total is not None and total < 0)
        or (cached is not None and cached < 0)
        or (write is not None and write < 0)
        or (reasoning is not None and reasoning < 0)
    )


def set_usage(row: LandingRow, usage: Usage, source: UsageSource, flag: str = "") -> None:
    """Write token counts, deriving the total (and embeddings' zero completion) when absent.

    Counts that contradict each other are written as logged and flagged ``contradictory``, so
    that no KPI silently trusts them (LlmCalls() prefers any other source of the same call).
    """
    completion = usage.completion
    if completion is None and row["OperationKind"] == "embeddings":
        completion = 0
    total = usage.total
    if total is None and usage.prompt is not None and completion is not None:
        total = usage.prompt + completion
        if total > LONG_MAX:  # two counts that fit, whose sum does not
            raise FieldError(
                f"the total of `{usage.prompt}` and `{completion}` tokens is too large"
            )
    row["PromptTokens"] = usage.prompt
    row["CompletionTokens"] = completion
    row["TotalTokens"] = total
    row["CachedTokens"] = usage.cached
    row["ReasoningTokens"] = usage.reasoning
    row["CacheWriteTokens"] = usage.cache_write
    row["UsageSource"] = _SOURCE_VALUES[source]
    row["UsageFlag"] = CONTRADICTORY if _contradicts(usage, completion) else flag


def is_anthropic(*names: str) -> bool:
    """Whether a model, deployment or URL names an Anthropic (Claude) model or endpoint."""
    text = " ".join(names).lower()
    return "claude" in text or "/anthropic/" in text


def input_excluding_cache(usage: Usage) -> Usage:
    """Counts whose prompt excludes the cached part (Anthropic's way) in this project's meaning.

    PromptTokens is every input token billed: the cache reads and writes are added to it, and a
    total that was the sum of the parts without them is derived again.
    """
    extra = (usage.cached or 0) + (usage.cache_write or 0)
    if not extra or usage.prompt is None:
        return usage
    return Usage(
        usage.prompt + extra,
        usage.completion,
        None,
        usage.cached,
        usage.reasoning,
        usage.cache_write,
    )


class Finisher:
    """Fills a row from its call's bodies, with the configured capture and estimates."""

    def __init__(self, settings: CoreSettings, timestamp_formats: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.capturing = settings.capture_text is not CaptureMode.NONE
        self.timestamp_formats = timestamp_formats
        """strptime formats of times that are not ISO 8601, for every input family alike."""
        self.blank = empty_landing_row()
        """The empty row every family's row is a copy of (one call less per row; never filled)."""
        self.capture = capturer(settings.capture_text, settings.capture_text_max_chars)
        """Text as the capture mode allows ('' under ``none``)."""

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
        if response.kind and row["OperationKind"] in ("", "other"):
            row["OperationKind"] = normalize_kind(response.kind) or row["OperationKind"]
        if not row["ErrorCode"]:
            row["ErrorCode"] = response.error_code
            message = response.error_message  # masked, then cut below
            row["ErrorMessage"] = error_message(message) if message else ""
        row["IsRequestBodyTruncated"] = request.truncated if request.present else None
        row["IsResponseBodyTruncated"] = response.truncated if response.present else None

        if exact is not None:
            set_usage(row, exact, exact_source)
        elif response.usage is not None:
            set_usage(row, response.usage, response.usage_source)
        else:
            self._estimate(row, request, response)

        if self.capturing:
            row["PromptText"] = self.capture(request.text())
            row["CompletionText"] = self.capture(response.text())

    def _estimate(self, row: LandingRow, request: RequestInfo, response: ResponseInfo) -> None:
        row["UsageSource"] = NO_USAGE
        kind = row["OperationKind"]
        code = row["ResponseCode"]
        if not self.settings.estimate_tokens or kind not in LLM_KINDS:
            return
        if code is not None and not 200 <= code < 300:
            return
        # What is visible of a cut body is estimated too, as a lower bound, flagged as one.
        lower = False
        prompt: int | None = None
        if request.document is not None:
            prompt = estimate_tokens(len(request.text()))
        elif request.cut_text:
            prompt = estimate_tokens(request.visible_length())
            lower = True
        completion: int | None = None
        if kind == "embeddings":
            completion = 0 if prompt is not None else None
        elif response.has_text:
            completion = estimate_tokens(response.text_length())
            lower = lower or response.truncated
        elif response.cut_text:
            completion = estimate_tokens(response.visible_length())
            lower = True
        if prompt is None and completion is None:
            return
        set_usage(
            row,
            Usage(prompt=prompt, completion=completion),
            _ESTIMATED,
            LOWER_BOUND if lower else "",
        )
