"""What logged request and response bodies say: model, usage, streaming, errors and text.

APIM logs bodies as JSON documents serialised into strings, cut at the configured size (8192 bytes
at most). A cut body is invalid JSON, and OpenAI puts ``usage`` at the end, so this module parses
the whole document when it can and salvages what survives when it cannot. Streamed (SSE) bodies are
read chunk by chunk; usage is in the last chunk only when the client asked for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson

from ingest.core.coerce import LONG_MAX, LONG_MIN, FieldError
from ingest.core.scan import count, find
from ingest.model import UsageSource

LLM_KINDS = frozenset({"chat", "completions", "embeddings", "responses"})
"""Operation kinds whose calls consume tokens."""

CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text with OpenAI tokenizers; used only for estimates."""

_FROM_RESPONSE, _FROM_STREAM, _SALVAGED = (
    UsageSource.RESPONSE,
    UsageSource.STREAM,
    UsageSource.SALVAGED,
)
"""Enum members read once (reading one from its class is slow on a hot path)."""


@dataclass(slots=True)
class Usage:
    """Token counts of one call; any count may be unknown."""

    prompt: int | None = None
    completion: int | None = None
    total: int | None = None
    cached: int | None = None
    reasoning: int | None = None
    cache_write: int | None = None


def _count(value: Any) -> int | None:
    """A token count as logged: a whole number, an integral float, or digits in a string.

    Raises FieldError for a count beyond a long (``1e20``, 23 digits): the record becomes a
    ``bad_field`` dead letter instead of a row no store can take.
    """
    if type(value) is int:
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdecimal():  # not "²", which int() refuses
        number = int(value.strip())
    else:
        return None
    if not LONG_MIN <= number <= LONG_MAX:
        raise FieldError(f"a token count is `{str(value)[:40]}`, out of the range of a long")
    return number


def _sub(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _detail(details: Any, key: str) -> int | None:
    return _count(details.get(key)) if isinstance(details, dict) else None


ANTHROPIC_CACHE_KEYS = ("cache_read_input_tokens", "cache_creation_input_tokens")


def anthropic_usage(counts: dict[str, Any]) -> Usage | None:
    """Usage from Anthropic Messages API counts, in this project's meaning of each count.

    Anthropic's ``input_tokens`` counts neither cache reads nor cache writes; here PromptTokens is
    every input token billed (all three), CachedTokens the cache reads and CacheWriteTokens the
    cache writes, as for the other families. No total is sent: it is derived downstream.
    """
    fresh = _count(counts.get("input_tokens"))
    read = _count(counts.get("cache_read_input_tokens"))
    write = _count(counts.get("cache_creation_input_tokens"))
    completion = _count(counts.get("output_tokens"))
    if fresh is None and completion is None:
        return None
    prompt = None
    if fresh is not None:
        prompt = fresh + (read or 0) + (write or 0)
        if prompt > LONG_MAX:
            raise FieldError(f"the input tokens of `{str(counts)[:80]}` are too many for a long")
    return Usage(prompt, completion, None, read, None, write)


def usage_from(obj: Any) -> Usage | None:
    """Usage from a Chat/Completions/Embeddings, Responses API or Anthropic ``usage`` object."""
    if not isinstance(obj, dict) or not obj:
        return None
    get = obj.get
    if "cache_read_input_tokens" in obj or "cache_creation_input_tokens" in obj:
        return anthropic_usage(obj)
    if "input_tokens" in obj or "output_tokens" in obj:
        prompt, completion = get("input_tokens"), get("output_tokens")
        cached, reasoning = get("input_tokens_details"), get("output_tokens_details")
    else:
        prompt, completion = get("prompt_tokens"), get("completion_tokens")
        cached, reasoning = get("prompt_tokens_details"), get("completion_tokens_details")
    total = get("total_tokens")
    # Counts are ints nearly always: convert only what is not (a hot path: one call per field).
    # orjson reads integers up to 2**64 - 1 as ints: those past a long are checked too.
    if prompt.__class__ is not int or prompt > LONG_MAX:
        prompt = _count(prompt)
    if completion.__class__ is not int or completion > LONG_MAX:
        completion = _count(completion)
    if total.__class__ is not int or total > LONG_MAX:
        total = _count(total)
    if prompt is None and completion is None and total is None:
        return None
    if cached is not None:
        cached = _detail(cached, "cached_tokens")
    if reasoning is not None:
        reasoning = _detail(reasoning, "reasoning_tokens")
    return Usage(prompt, completion, total, cached, reasoning)


def estimate_tokens(chars: int) -> int:
    """A rough token count for text of ``chars`` characters whose real count was not logged."""
    return -(-chars // CHARS_PER_TOKEN)


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


def _message_text(message: dict[str, Any]) -> str:
    """A message's text and tool calls, without its role."""
    text = _content_text(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = _sub(call, "function")
        if isinstance(function, dict):
            text += f"[tool_call {function.get('name', '')}({function.get('arguments', '')})]"
    return text


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
        if message.__class__ is dict:  # the common message: its text is its string content
            text = message.get("content")
            if text.__class__ is not str or "tool_calls" in message:
                text = _message_text(message)
        elif isinstance(message, str):
            lines.append(message)
            continue
        elif isinstance(message, dict):
            text = _message_text(message)
        else:
            continue
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
                if message.get("role") == "assistant":  # its line, without building and cutting it
                    texts.append(_message_text(message))
                else:
                    texts.append(render_messages([message]).removeprefix("assistant: "))
            elif isinstance(choice.get("text"), str):
                texts.append(choice["text"])
        return "\n".join(texts)
    if response.get("type") == "message":  # Anthropic Messages API: content blocks
        return _content_text(response.get("content"))
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
_SALVAGE_KEYS = re.compile(r'"(model|id|usage)"\s*:\s*')
"""Keys worth reading in a cut body (a quote-led scan skips the numbers of a vector quickly)."""
_AFTER_KEY = re.compile(r"\s*:\s*")
"""What may follow a key's closing quote, up to its value."""
_DELTA_CONTENT = re.compile(r'"content"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"')
"""A chat stream chunk's delta text (``choices[].delta.content``; no other key is ``content``)."""
_DELTA_START = '"content":"'
_OVERLAPPING_CONTENT = '"content"content"'
"""The one way two ``"content"`` keys can overlap in a text (then counting them is not exact)."""


_VISIBLE_TEXT = re.compile(
    r'"(?:content|text|input|prompt|instructions)"\s*:\s*"((?:[^"\\]++|\\.)*+)'
)
"""A text value in a cut body, closed or running to the cut (escapes count as one character)."""
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)")


def visible_text_length(cut: str) -> int:
    """Characters of message text still visible in a body cut mid-document.

    Counts the values of the keys that hold prompt or completion text (``content``, ``text``,
    ``input``, ``prompt``, ``instructions``), the last one up to the cut: a lower bound of the text
    the call really had, for an estimate that is flagged as one.
    """
    total = 0
    for m in _VISIBLE_TEXT.finditer(cut):
        value = m.group(1)
        if "\\" in value:
            total -= sum(len(e.group()) - 1 for e in _ESCAPE.finditer(value))
        total += len(value)
    return total


@dataclass(slots=True)
class RequestInfo:
    """What a logged request body says."""

    present: bool = False
    truncated: bool = False
    document: dict[str, Any] | None = None
    stream: bool | None = None
    model: str = ""
    cut_text: str = ""
    """The body as logged when it was cut (read only for estimates)."""
    rendered: str | None = None
    """The prompt text once rendered (an estimate and the capture both read it)."""

    def text(self) -> str:
        """The prompt text ('' when the body is absent or cut)."""
        if self.rendered is None:
            self.rendered = prompt_text(self.document) if self.document is not None else ""
        return self.rendered

    def visible_length(self) -> int:
        """Characters of prompt text that survive in a cut body (a lower bound of the whole)."""
        return visible_text_length(self.cut_text) if self.cut_text else 0


def _load(body: Any) -> Any:
    """A body as JSON: objects pass through, strings are parsed; raises on invalid JSON."""
    if isinstance(body, (dict, list)):
        return body
    return orjson.loads(body)


_JSON_ENDS = ("}", "]")
"""How a JSON document ends. A text that ends otherwise (blanks aside) was cut: no need to parse it
to know (a cut embeddings body is 8 KB of numbers that a parser would read only to fail). Both
readers below check this inline, on the hot path."""


def _cut_request(body: Any) -> RequestInfo:
    """What a cut (or otherwise unreadable) request body still says: stream flag and model."""
    text = body if isinstance(body, str) else ""
    m = _STREAM_FLAG.search(text)
    stream = (m.group(1) == "true") if m else None
    m = _MODEL_FIELD.search(text)
    return RequestInfo(True, True, None, stream, m.group(1) if m else "", text)


def analyze_request(body: Any) -> RequestInfo:
    """Read a request body (a JSON string, an object, or absent)."""
    if body is None or body == "":
        return RequestInfo()
    if isinstance(body, str):
        last = body[-1]
        if last in " \r\n\t":
            last = body.rstrip()[-1:]
        if last not in _JSON_ENDS:  # cut
            return _cut_request(body)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _cut_request(body)
    else:
        try:
            document = _load(body)
        except ValueError:
            return _cut_request(body)
    if not isinstance(document, dict):
        return RequestInfo(True)
    model = document.get("model")
    model = model if isinstance(model, str) else ""
    return RequestInfo(True, False, document, document.get("stream") is True, model)


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
    stream_text: str = ""
    kind: str = ""
    """What the body says the call was: its ``object`` or ``type`` (chat.completion, message)."""
    cut_text: str = ""
    """The body as logged when it was cut and is not a stream (read only for estimates)."""
    anthropic: dict[str, Any] | None = None
    """Usage counts of an Anthropic stream, gathered from its message_start and message_delta."""
    rendered: str | None = None
    """The completion text once rendered (an estimate and the capture both read it)."""

    @property
    def has_text(self) -> bool:
        """Whether a completion text can be read (a parsed document or a stream)."""
        return self.document is not None or bool(self.stream_text)

    def text_length(self) -> int:
        """Characters of completion text, without decoding every stream chunk (for estimates)."""
        text = self.stream_text
        if self.document is not None or not text:
            return len(self.text())
        if "\\" not in text and find(text, _OVERLAPPING_CONTENT) < 0:
            # The common chat stream, counted by C string methods alone: with no escape, and
            # every "content" key followed by `:"` (equal counts, since no two keys overlap), the
            # pattern below matches exactly after each `"content":"`, up to the next quote.
            keys = count(text, '"content"')
            if not keys:
                return len(self.text())
            length = _same_shape_length(text, keys)
            if length is not None:
                return length
            pieces = text.split(_DELTA_START)
            if keys == len(pieces) - 1:
                del pieces[0]
                lengths = list(map(str.find, pieces, repeat('"')))
                if -1 not in lengths:  # a piece without its closing quote: let the pattern judge
                    return sum(lengths)
        pieces = _DELTA_CONTENT.findall(text)
        if not pieces:  # Responses API or legacy completions streams: decode them properly
            return len(self.text())
        total = sum(map(len, pieces))
        if "\\" not in self.stream_text:  # no escape anywhere: every piece is its own length
            return total
        escaped = [p for p in pieces if "\\" in p]  # an escape (\n, \u00e9) is one character
        for piece in escaped:
            try:  # noqa: SIM105 - a hot loop: try/except is cheaper than contextlib.suppress
                total += len(orjson.loads(f'"{piece}"')) - len(piece)
            except orjson.JSONDecodeError:
                pass
        return total

    def visible_length(self) -> int:
        """Characters of completion text that survive in a cut JSON body (a lower bound)."""
        return visible_text_length(self.cut_text) if self.cut_text else 0

    def text(self) -> str:
        """The completion text, from the document or the stream's deltas."""
        if self.rendered is None:
            self.rendered = self._render()
        return self.rendered

    def _render(self) -> str:
        if self.document is not None:
            return completion_text(self.document)
        text = self.stream_text
        if text:
            same = _same_shape_text(text)
            return _text_of_events(text) if same is None else same
        return ""


def _text_of_events(text: str) -> str:
    """The delta text of an SSE text, chunk by chunk (a chunk that is not an object adds none)."""
    chunks = []
    for line in text.split("\n"):
        if line.startswith("data:"):
            chunk = _parse_chunk(line[5:].strip())  # "[DONE]" is not an object: None
            if chunk is not None:
                chunks.append(chunk)
    return _stream_text(chunks)


def _same_shape_text(text: str) -> str | None:
    r"""A chat stream's delta text without parsing its middle chunks, when they share one shape.

    The middle of a long stream repeats one chunk with only its content changed: from a content's
    closing quote to the next ``"content":"`` stands the same text (``between``) each time. When
    every middle piece ends with it, no middle content holds a quote, and ``between`` starts
    exactly one ``data:`` line, each middle event is one template around its content. The
    template is read once with a content of its own, and must give it: that proves it for every
    middle event, whose contents are then decoded in one go, with the first and last events'
    when they are the template too. Other events before the second content and from the last
    one on are read chunk by chunk. Gives what reading every chunk gives, or None (then every
    chunk is read): not taken for fewer than two middle events, an escaped quote, or a ``\u``
    escape (half a surrogate pair per chunk must stay unreadable, as chunk by chunk).
    """
    start = text.find(_DELTA_START)
    if start < 0:
        return None
    first = start + len(_DELTA_START)
    close = text.find('"', first)
    following = text.find(_DELTA_START, close)
    if close < 0 or following <= close:
        return None
    between = text[close:following]
    data = between.find("\ndata:") + 1
    if data <= 0 or between.count("data:") != 1:
        return None
    last = text.rfind(_DELTA_START)
    middle = text[following + len(_DELTA_START) : last]
    pieces = middle.split(_DELTA_START)
    if len(pieces) < 2:
        return None
    cut = len(between)  # at least 1: it starts with the closing quote
    # `removesuffix` takes `between` off a piece that ends with it and leaves any other piece
    # whole: every piece ended with it exactly when the contents are `cut` shorter each.
    contents = "".join(map(str.removesuffix, pieces, repeat(between)))
    if len(contents) != len(middle) - (len(pieces) - 1) * len(_DELTA_START) - len(pieces) * cut:
        return None
    # Each middle event is the lines `opening + content + closing`. A content with no quote or
    # escape is one JSON string, so the event gives some fixed texts, read from the template's
    # own strings, with that content n times between them (n is 1 or, when a later key of the
    # same name hides it, 0). A content longer than the template can only come back whole with
    # n = 1 and no fixed text (the fixed texts are at most as long as the template): then every
    # middle event gives its content and nothing else, as the chunk-by-chunk reading would.
    opening = text[close + data : following + len(_DELTA_START)]
    closing = between[: between.find("\n")]
    probe = "0" * (len(opening) + len(closing) + 1)
    if _text_of_events(f"{opening}{probe}{closing}") != probe:
        return None
    # The first and last events are the template too when the text starts with `opening` and
    # the last content is followed by `closing` and a line break (or the end): their contents
    # join the middle's. Otherwise (a role chunk first, a stream cut in its last event) those
    # events are read chunk by chunk.
    head_is_template = text.startswith(opening)  # then its one key is the first content's
    after = last + len(_DELTA_START)
    end = text.find('"', after)
    rest = end + len(closing)
    tail_is_template = (
        end >= 0 and text.startswith(closing, end) and (rest == len(text) or text[rest] == "\n")
    )
    lead = text[first:close] if head_is_template else ""
    trail = text[after:end] if tail_is_template else ""
    raw = lead + contents + trail
    # A content that ends with a backslash escapes its closing quote: the event is not what it
    # looks like. The last content's would escape the quote the decoding adds, and fail it.
    check_from = start if head_is_template else close
    if '"' in raw or ("\\" in raw and ("\\u" in raw or text.find('\\"', check_from, last) >= 0)):
        return None
    try:
        decoded: str = orjson.loads(f'"{raw}"')
    except orjson.JSONDecodeError:
        return None
    head = "" if head_is_template else _text_of_events(text[: close + data])
    tail = _text_of_events(text[rest:] if tail_is_template else text[last - cut + data :])
    return head + decoded + tail


def _same_shape_length(text: str, keys: int) -> int | None:
    """The summed length of a chat stream's delta contents when its chunks share one shape.

    For a stream with no escape, whose ``keys`` ``"content"`` keys never overlap. A stream repeats
    one chunk with only its content changed, so the text from a content's closing quote to the
    next ``"content":"`` (``repeated``, that key included) is the same every time. Then the span
    from the first content to the last key is contents and ``repeated`` in turn, and two counts
    over it measure the contents without a piece per chunk. Exact only when the span holds
    ``keys - 1`` of them (one before each key but the first: then every key is a
    ``"content":"``) and no other quote (no content ran past its own closing quote); else None.
    """
    start = text.find(_DELTA_START)
    if start < 0:
        return None
    start += len(_DELTA_START)
    close = text.find('"', start)
    if close < 0:
        return None
    if keys == 1:
        return close - start
    following = text.find(_DELTA_START, close)
    if following <= close:  # none, or the closing quote opens the next key: not this shape
        return None
    repeated = text[close : following + len(_DELTA_START)]
    last = text.rfind(_DELTA_START) + len(_DELTA_START)
    end = text.find('"', last)
    if end < 0:
        return None
    others = keys - 1
    if count(text, repeated, start, last) != others:
        return None
    if text.count('"', start, last) != others * repeated.count('"'):
        return None
    return last - start - others * len(repeated) + end - last


def _stream_text(chunks: Iterable[dict[str, Any]]) -> str:
    parts: list[str] = []
    for chunk in chunks:
        kind = chunk.get("type")
        if kind == "response.output_text.delta":
            delta = chunk.get("delta")
            if isinstance(delta, str):
                parts.append(delta)
            continue
        if kind == "content_block_delta":  # Anthropic: delta {"type": "text_delta", "text": ...}
            text = _sub(chunk.get("delta"), "text")
            if isinstance(text, str):
                parts.append(text)
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


def _salvage_usage(text: str, start: int) -> Usage | None:
    """The complete ``{...}`` object starting at ``start`` in a cut JSON text, read as usage."""
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
                    return None
    return None


def _salvage(text: str, info: ResponseInfo) -> None:
    """Model, id and usage from what survives of a cut JSON body, in one pass over it."""
    info.truncated = True
    info.cut_text = text
    # Every key is quoted: nothing after the last quote (and the colon after it) can match, so the
    # scan stops there instead of reading the 8 KB of numbers of a cut embeddings body.
    last_quote = text.rfind('"')
    after = _AFTER_KEY.match(text, last_quote + 1)
    for m in _SALVAGE_KEYS.finditer(text, 0, after.end() if after else last_quote + 1):
        key, value_start = m.group(1), m.end()
        if key == "usage":
            if text.startswith("{", value_start):
                usage = _salvage_usage(text, value_start)
                if usage is not None:
                    info.usage, info.usage_source = usage, _SALVAGED
        elif text.startswith('"', value_start):
            end = text.find('"', value_start + 1)
            if end > 0:
                if key == "model" and not info.model:
                    info.model = text[value_start + 1 : end]
                elif key == "id" and not info.request_id:
                    info.request_id = text[value_start + 1 : end]


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
    get = document.get
    model = get("model")
    info.model = model if isinstance(model, str) else ""
    rid = get("id")
    info.request_id = rid if isinstance(rid, str) else ""
    kind = get("object") or get("type")
    info.kind = kind if isinstance(kind, str) else ""
    choices = get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        info.finish_reason = reason if isinstance(reason, str) else ""
    elif kind == "response" and isinstance(get("status"), str):
        info.finish_reason = document["status"]
    elif kind == "message" and isinstance(get("stop_reason"), str):  # Anthropic
        info.finish_reason = document["stop_reason"]
    if "error" in document or "statusCode" in document:
        _read_error(document, info)


_FINAL_RESPONSE_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_FINAL_EVENTS = _FINAL_RESPONSE_EVENTS | {"message_stop"}
"""Events that end a stream whole (a ``data: [DONE]`` line does too)."""
_HEAD_CHUNKS = 3
"""Chunks read from the start of a stream for model and id (Azure's first chunk has neither)."""
_TAIL_CHUNKS = 3
"""Chunks read from the end of a stream for usage and finish reason (usage is the last one)."""


def _read_anthropic_event(kind: str, chunk: dict[str, Any], info: ResponseInfo) -> None:
    """Read one Anthropic stream event.

    message_start names the message and its input counts; message_delta carries the cumulative
    output count and the stop reason.
    """
    counts = info.anthropic
    if counts is None:
        counts = info.anthropic = {}
    if kind == "message_start":
        message = chunk.get("message")
        if isinstance(message, dict):
            if not info.model:
                _read_document(message, info)
            usage = message.get("usage")
            if isinstance(usage, dict):
                for key, value in usage.items():
                    # message_delta's counts, read first, are final; message_start's output
                    # count is a placeholder, so output comes from message_delta only.
                    if key != "output_tokens":
                        counts.setdefault(key, value)
    elif kind == "message_delta":
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            for key, value in usage.items():
                if value is not None:
                    counts[key] = value
        reason = _sub(chunk.get("delta"), "stop_reason")
        if isinstance(reason, str) and not info.finish_reason:
            info.finish_reason = reason
    elif kind == "error" and not info.error_code:
        error = chunk.get("error")
        if isinstance(error, dict):
            code = error.get("type")
            info.error_code = code if isinstance(code, str) else ""
            message = error.get("message")
            info.error_message = message if isinstance(message, str) else ""


_ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "ping",
        "error",
    }
)


def _read_chunk(chunk: dict[str, Any], info: ResponseInfo) -> None:
    kind = chunk.get("type")
    if kind.__class__ is str and kind in _ANTHROPIC_EVENTS:
        _read_anthropic_event(kind, chunk, info)
        return
    if kind is not None and isinstance(kind, str) and kind.startswith("response."):
        # Responses API stream: created/completed events carry the whole response object.
        response = chunk.get("response")
        if isinstance(response, dict):
            if not info.model:
                _read_document(response, info)
            if kind in _FINAL_RESPONSE_EVENTS:
                _read_document(response, info)
                info.usage = info.usage or usage_from(response.get("usage"))
        return
    if not info.model:
        model = chunk.get("model")
        if isinstance(model, str):
            info.model = model
    if not info.request_id:
        rid = chunk.get("id")
        if isinstance(rid, str):
            info.request_id = rid
    if not info.finish_reason:
        for choice in chunk.get("choices") or ():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            if isinstance(reason, str):
                info.finish_reason = reason
    if info.usage is None:
        usage = chunk.get("usage")
        if usage is not None:
            info.usage = usage_from(usage)
    if "error" in chunk and not info.error_code:
        _read_error(chunk, info)


def _parse_chunk(payload: str) -> dict[str, Any] | None:
    if payload[-1:] != "}":  # not an object (a cut chunk): no need to parse it to know
        return None
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return chunk if isinstance(chunk, dict) else None


def _first_payloads(text: str) -> Iterator[str]:
    """``data:`` payloads of an SSE text, first to last, without splitting the rest of the text."""
    start = 0
    while True:
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        if line.startswith("data:"):
            yield line[5:].strip()
        if end < 0:
            return
        start = end + 1


def _says_nothing_new(payload: str) -> bool:
    """Whether a chat chunk read after the stream's model and id are known would change nothing.

    With no escape in it, a JSON text's keys are written as they are read, so the text tells:
    no ``type`` (no Anthropic or Responses API event, none that ends the stream), no ``error``,
    a ``finish_reason`` and a ``usage`` only as nulls, and one ``choices``, a list (what
    ``_read_chunk`` iterates, whatever it holds). A text that is not JSON changes nothing
    either: a tail chunk that does not parse is counted all the same. (``in`` first: it costs
    a third of a ``count``.)
    """
    return (
        "\\" not in payload
        and '"type"' not in payload
        and '"error"' not in payload
        and (
            '"finish_reason"' not in payload
            or (payload.count('"finish_reason"') == 1 and '"finish_reason":null' in payload)
        )
        and (
            '"usage"' not in payload
            or (payload.count('"usage"') == 1 and '"usage":null' in payload)
        )
        and payload.count('"choices"') == 1
        and '"choices":[' in payload
    )


def _analyze_sse(text: str, info: ResponseInfo) -> None:
    """Read a stream's tail (usage, finish) and head (model, id); the middle only for text."""
    info.is_sse = True
    done = False
    size = complete_end = len(text)  # where the complete chunks end (a cut may leave half a chunk)
    tail = 0
    # The payloads, last to first: jump from one "data:" to the one before, past blank lines.
    found = text.rfind("data:")
    while found >= 0:
        offset = found
        found = text.rfind("data:", 0, offset)
        if offset and text[offset - 1] != "\n":
            continue  # "data:" inside a line is not a payload
        line_end = text.find("\n", offset)
        payload = text[offset + 5 : line_end if line_end >= 0 else size].strip()
        if payload == "[DONE]":
            done = True
            complete_end = offset
            continue
        if info.model and info.request_id and _says_nothing_new(payload):
            tail += 1  # counted as read: reading it would change nothing
            if tail >= _TAIL_CHUNKS:
                break
            continue
        chunk = None
        if payload[-1:] == "}":  # only an object is a chunk: a cut one is not even parsed
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                chunk = None
            if chunk.__class__ is not dict:
                chunk = None
        if chunk is None:
            if tail == 0 and not done:
                info.truncated = True  # the cut fell inside the last chunk
                complete_end = offset
                continue
        else:
            if chunk.get("type") in _FINAL_EVENTS:
                done = True
            _read_chunk(chunk, info)
        tail += 1
        if tail >= _TAIL_CHUNKS:
            break
    stream_text = text[:complete_end]
    if not info.model or info.anthropic is not None:  # the head names the model (and input)
        for head, payload in enumerate(_first_payloads(stream_text)):
            if info.model or head >= _HEAD_CHUNKS:
                break
            chunk = _parse_chunk(payload)
            if chunk is not None:
                _read_chunk(chunk, info)
    info.stream_text = stream_text
    if not done:
        info.truncated = True
    if info.anthropic:
        info.kind = "message"
        info.usage = anthropic_usage(info.anthropic)
    if info.usage is not None:
        info.usage_source = _SALVAGED if info.truncated else _FROM_STREAM


def _is_sse(text: str) -> bool:
    head = text[:64].lstrip()
    return head.startswith("data:") or head.startswith("event:")


def analyze_response(body: Any) -> ResponseInfo:
    """Read a response body (JSON string, SSE text, an object, or absent)."""
    if body is None or body == "":
        return ResponseInfo()
    info = ResponseInfo(True)
    if isinstance(body, str):
        first = body[0]
        if (first in {"d", "e"} or first.isspace()) and _is_sse(body):
            _analyze_sse(body, info)
            return info
        last = body[-1]
        if last in " \r\n\t":
            last = body.rstrip()[-1:]
        if last not in _JSON_ENDS:  # cut
            _salvage(body, info)
            return info
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            _salvage(body, info)
            return info
    else:
        try:
            document = _load(body)
        except orjson.JSONDecodeError:
            _salvage("", info)
            return info
    if not isinstance(document, dict):
        return info
    info.document = document
    _read_document(document, info)
    usage = usage_from(document.get("usage"))
    if usage is not None:
        info.usage = usage
        info.usage_source = _FROM_RESPONSE
    return info
