"""What logged request and response bodies say: model, usage, streaming, errors and text.

APIM logs bodies as JSON documents serialised into strings, cut at the configured size (8192 bytes
at most). A cut body is invalid JSON, and OpenAI puts ``usage`` at the end, so this module parses
the whole document when it can and salvages what survives when it cannot. Streamed (SSE) bodies are
read chunk by chunk; usage is in the last chunk only when the client asked for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.model import UsageSource

LLM_KINDS = frozenset({"chat", "completions", "embeddings", "responses"})
"""Operation kinds whose calls consume tokens."""

CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text with OpenAI tokenizers; used only for estimates."""


@dataclass(slots=True)
class Usage:
    """Token counts of one call; any count may be unknown."""

    prompt: int | None = None
    completion: int | None = None
    total: int | None = None
    cached: int | None = None
    reasoning: int | None = None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _sub(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def usage_from(obj: Any) -> Usage | None:
    """Usage from a Chat/Completions/Embeddings or a Responses API ``usage`` object."""
    if not isinstance(obj, dict) or not obj:
        return None
    if "input_tokens" in obj or "output_tokens" in obj:
        usage = Usage(
            prompt=_count(obj.get("input_tokens")),
            completion=_count(obj.get("output_tokens")),
            total=_count(obj.get("total_tokens")),
            cached=_count(_sub(obj.get("input_tokens_details"), "cached_tokens")),
            reasoning=_count(_sub(obj.get("output_tokens_details"), "reasoning_tokens")),
        )
    else:
        usage = Usage(
            prompt=_count(obj.get("prompt_tokens")),
            completion=_count(obj.get("completion_tokens")),
            total=_count(obj.get("total_tokens")),
            cached=_count(_sub(obj.get("prompt_tokens_details"), "cached_tokens")),
            reasoning=_count(_sub(obj.get("completion_tokens_details"), "reasoning_tokens")),
        )
    if usage.prompt is None and usage.completion is None and usage.total is None:
        return None
    return usage


def estimate_tokens(text: str) -> int:
    """A rough token count for text whose real count was not logged."""
    return -(-len(text) // CHARS_PER_TOKEN)


# ---------------------------------------------------------------------------------------------
# Text rendering


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
                elif isinstance(part.get("type"), str):
                    parts.append(f"[{part['type']}]")
        return "\n".join(parts)
    return ""


def render_messages(messages: Any) -> str:
    """Messages (``[{"role", "content"}]``, or a string) as ``role: text`` lines."""
    if isinstance(messages, str):
        return messages
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        return ""
    lines = []
    for message in messages:
        if isinstance(message, str):
            lines.append(message)
            continue
        if not isinstance(message, dict):
            continue
        text = _content_text(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = _sub(call, "function")
            if isinstance(function, dict):
                text += f"[tool_call {function.get('name', '')}({function.get('arguments', '')})]"
        role = message.get("role")
        lines.append(f"{role}: {text}" if isinstance(role, str) and role else text)
    return "\n".join(lines)


def prompt_text(request: dict[str, Any]) -> str:
    """The prompt of a Chat, Completions, Embeddings or Responses request."""
    if "messages" in request:
        return render_messages(request["messages"])
    parts = []
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        parts.append(f"instructions: {instructions}")
    for key in ("input", "prompt"):
        value = request.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            if all(isinstance(v, str) for v in value):
                parts.append("\n".join(value))
            else:
                parts.append(render_messages(value))
    return "\n".join(p for p in parts if p)


def completion_text(response: dict[str, Any]) -> str:
    """The completion of a Chat, Completions or Responses response."""
    choices = response.get("choices")
    if isinstance(choices, list):
        texts = []
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                texts.append(render_messages([message]).removeprefix("assistant: "))
            elif isinstance(choice.get("text"), str):
                texts.append(choice["text"])
        return "\n".join(texts)
    output = response.get("output")
    if isinstance(output, list):
        texts = []
        for item in output:
            if isinstance(item, dict) and item.get("type") == "message":
                texts.append(_content_text(item.get("content")))
        return "\n".join(texts)
    return ""


# ---------------------------------------------------------------------------------------------
# Requests


_STREAM_FLAG = re.compile(r'"stream"\s*:\s*(true|false)')
_MODEL_FIELD = re.compile(r'"model"\s*:\s*"([^"\\]{1,200})"')
_ID_FIELD = re.compile(r'"id"\s*:\s*"((?:chatcmpl|cmpl|resp)[^"\\]{0,200})"')
_USAGE_KEY = re.compile(r'"usage"\s*:\s*\{')


@dataclass(slots=True)
class RequestInfo:
    """What a logged request body says."""

    present: bool = False
    truncated: bool = False
    document: dict[str, Any] | None = None
    stream: bool | None = None
    model: str = ""

    def text(self) -> str:
        """The prompt text ('' when the body is absent or cut)."""
        return prompt_text(self.document) if self.document is not None else ""


def _load(body: Any) -> Any:
    """A body as JSON: objects pass through, strings are parsed; raises on invalid JSON."""
    if isinstance(body, (dict, list)):
        return body
    return orjson.loads(body)


def analyze_request(body: Any) -> RequestInfo:
    """Read a request body (a JSON string, an object, or absent)."""
    if body is None or body == "":
        return RequestInfo()
    info = RequestInfo(present=True)
    try:
        document = _load(body)
    except orjson.JSONDecodeError:
        info.truncated = True
        text = body if isinstance(body, str) else ""
        m = _STREAM_FLAG.search(text)
        info.stream = (m.group(1) == "true") if m else None
        m = _MODEL_FIELD.search(text)
        info.model = m.group(1) if m else ""
        return info
    if not isinstance(document, dict):
        return info
    info.document = document
    info.stream = document.get("stream") is True
    model = document.get("model")
    info.model = model if isinstance(model, str) else ""
    return info


# ---------------------------------------------------------------------------------------------
# Responses


@dataclass(slots=True)
class ResponseInfo:
    """What a logged response body says."""

    present: bool = False
    truncated: bool = False
    is_sse: bool = False
    model: str = ""
    request_id: str = ""
    finish_reason: str = ""
    error_code: str = ""
    error_message: str = ""
    usage: Usage | None = None
    usage_source: UsageSource = UsageSource.NONE
    document: dict[str, Any] | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    salvaged_text: str = ""

    def text(self) -> str:
        """The completion text, from the document or the stream's deltas."""
        if self.document is not None:
            return completion_text(self.document)
        if self.chunks:
            return _stream_text(self.chunks)
        return self.salvaged_text


def _stream_text(chunks: Iterable[dict[str, Any]]) -> str:
    parts: list[str] = []
    for chunk in chunks:
        if chunk.get("type") == "response.output_text.delta":
            delta = chunk.get("delta")
            if isinstance(delta, str):
                parts.append(delta)
            continue
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = _sub(delta, "content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(choice.get("text"), str):
                parts.append(choice["text"])
    return "".join(parts)


def _salvage_usage(text: str) -> Usage | None:
    """The last complete ``"usage": {...}`` object in a cut JSON text."""
    matches = list(_USAGE_KEY.finditer(text))
    for m in reversed(matches):
        start = m.end() - 1
        depth = 0
        for i in range(start, len(text)):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        return usage_from(orjson.loads(text[start : i + 1]))
                    except orjson.JSONDecodeError:
                        break
    return None


def _read_error(document: dict[str, Any], info: ResponseInfo) -> None:
    error = document.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        info.error_code = "" if code is None else str(code)
        message = error.get("message")
        info.error_message = message if isinstance(message, str) else ""
    elif error is None and "statusCode" in document and "message" in document:
        # APIM's own error body, e.g. {"statusCode": 429, "message": "Token limit is exceeded..."}
        info.error_code = str(document["statusCode"])
        message = document["message"]
        info.error_message = message if isinstance(message, str) else ""


def _read_document(document: dict[str, Any], info: ResponseInfo) -> None:
    model = document.get("model")
    info.model = model if isinstance(model, str) else ""
    rid = document.get("id")
    info.request_id = rid if isinstance(rid, str) else ""
    choices = document.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        info.finish_reason = reason if isinstance(reason, str) else ""
    elif document.get("object") == "response" and isinstance(document.get("status"), str):
        info.finish_reason = document["status"]
    _read_error(document, info)


def _analyze_sse(text: str, info: ResponseInfo) -> None:
    info.is_sse = True
    done = False
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            continue
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            info.truncated = True
            continue
        if not isinstance(chunk, dict):
            continue
        kind = chunk.get("type")
        if isinstance(kind, str) and kind.startswith("response."):
            # Responses API stream: the final event carries the whole response object.
            response = chunk.get("response")
            if isinstance(response, dict):
                if kind in ("response.completed", "response.incomplete", "response.failed"):
                    done = True
                _read_document(response, info)
                usage = usage_from(response.get("usage"))
                if usage is not None:
                    info.usage = usage
        else:
            if not info.model and isinstance(chunk.get("model"), str):
                info.model = chunk["model"]
            if not info.request_id and isinstance(chunk.get("id"), str):
                info.request_id = chunk["id"]
            for choice in chunk.get("choices") or ():
                reason = _sub(choice, "finish_reason")
                if isinstance(reason, str):
                    info.finish_reason = reason
            usage = usage_from(chunk.get("usage"))
            if usage is not None:
                info.usage = usage
            if "error" in chunk:
                _read_error(chunk, info)
        info.chunks.append(chunk)
    if not done:
        info.truncated = True
    if info.usage is not None:
        info.usage_source = UsageSource.SALVAGED if info.truncated else UsageSource.STREAM


def _is_sse(text: str) -> bool:
    head = text[:64].lstrip()
    return head.startswith("data:") or head.startswith("event:")


def analyze_response(body: Any) -> ResponseInfo:
    """Read a response body (JSON string, SSE text, an object, or absent)."""
    if body is None or body == "":
        return ResponseInfo()
    info = ResponseInfo(present=True)
    if isinstance(body, str) and _is_sse(body):
        _analyze_sse(body, info)
        return info
    try:
        document = _load(body)
    except orjson.JSONDecodeError:
        info.truncated = True
        text = body if isinstance(body, str) else ""
        m = _MODEL_FIELD.search(text)
        info.model = m.group(1) if m else ""
        m = _ID_FIELD.search(text)
        info.request_id = m.group(1) if m else ""
        info.usage = _salvage_usage(text)
        if info.usage is not None:
            info.usage_source = UsageSource.SALVAGED
        return info
    if not isinstance(document, dict):
        return info
    info.document = document
    _read_document(document, info)
    info.usage = usage_from(document.get("usage"))
    if info.usage is not None:
        info.usage_source = UsageSource.RESPONSE
    return info
