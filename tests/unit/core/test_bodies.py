"""What logged bodies say: requests, JSON and streamed responses, cut bodies, errors, estimates."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.core.bodies import (
    _FINAL_EVENTS,
    CHARS_PER_TOKEN,
    ResponseInfo,
    Usage,
    _read_chunk,
    _same_shape_length,
    _same_shape_text,
    _says_nothing_new,
    _stream_text,
    _text_of_events,
    analyze_request,
    analyze_response,
    completion_text,
    estimate_tokens,
    render_messages,
    usage_from,
)
from ingest.model import UsageSource
from tests.conftest import FIXTURES


def _json(doc: object) -> str:
    return orjson.dumps(doc).decode()


def _sse(*chunks: object, done: bool = True) -> str:
    lines = [f"data: {_json(c)}\n\n" for c in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines)


CHAT_RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi!"}}
    ],
    "usage": {
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}


# ---------------------------------------------------------------------------------------------
# Requests


def test_absent_request_bodies_say_nothing() -> None:
    for body in (None, ""):
        info = analyze_request(body)
        assert (info.present, info.truncated, info.document, info.stream, info.model) == (
            False,
            False,
            None,
            None,
            "",
        )
        assert info.text() == ""


def test_chat_request_gives_model_stream_flag_and_prompt() -> None:
    body = _json(
        {
            "model": "gpt-4o",
            "stream": True,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            ],
        }
    )
    info = analyze_request(body)
    assert info.present is True
    assert info.truncated is False
    assert info.stream is True
    assert info.model == "gpt-4o"
    assert info.document is not None
    assert info.document["stream"] is True
    assert info.text() == "system: Be brief.\nuser: Hello"


def test_request_stream_flag_is_true_only_for_the_json_true() -> None:
    assert analyze_request(_json({"messages": []})).stream is False
    assert analyze_request(_json({"stream": False, "messages": []})).stream is False
    assert analyze_request(_json({"stream": "true"})).stream is False
    # A "stream" inside a message is not the request's flag.
    inner = _json({"messages": [{"role": "user", "content": '"stream": true'}]})
    assert analyze_request(inner).stream is False


def test_embeddings_and_responses_requests_render_their_input() -> None:
    embeddings = analyze_request(_json({"input": ["first", "second"], "model": "emb-3"}))
    assert embeddings.model == "emb-3"
    assert embeddings.text() == "first\nsecond"
    responses = analyze_request(
        _json({"model": "gpt-4.1", "instructions": "Be kind.", "input": "What is APIM?"})
    )
    assert responses.model == "gpt-4.1"
    assert responses.text() == "instructions: Be kind.\nWhat is APIM?"


def test_request_body_may_be_an_object_already() -> None:
    info = analyze_request({"model": "gpt-4o-mini", "stream": True, "prompt": "Say hi"})
    assert (info.present, info.truncated, info.stream, info.model) == (
        True,
        False,
        True,
        "gpt-4o-mini",
    )
    assert info.text() == "Say hi"


def test_cut_request_keeps_stream_flag_and_model_but_no_document() -> None:
    full = _json(
        {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x" * 9000}]}
    )
    info = analyze_request(full[:8192])
    assert info.present is True
    assert info.truncated is True
    assert info.document is None
    assert info.stream is True
    assert info.model == "gpt-4o"
    assert info.text() == ""


def test_cut_request_without_flag_leaves_stream_unknown() -> None:
    info = analyze_request('{"messages": [{"role": "user", "content": "cut here')
    assert info.truncated is True
    assert info.stream is None
    assert info.model == ""


def test_request_that_ends_like_json_but_is_not_is_truncated() -> None:
    info = analyze_request('{"model": "gpt-4o", "stream": true,}')
    assert info.truncated is True
    assert info.document is None
    assert (info.stream, info.model) == (True, "gpt-4o")


def test_request_that_is_json_but_not_an_object_has_no_document() -> None:
    info = analyze_request("[1, 2, 3]")
    assert (info.present, info.truncated, info.document, info.stream) == (True, False, None, None)


# ---------------------------------------------------------------------------------------------
# Plain JSON responses


def test_chat_response_with_usage() -> None:
    info = analyze_response(_json(CHAT_RESPONSE))
    assert info.present is True
    assert info.truncated is False
    assert info.is_sse is False
    assert info.model == "gpt-4o-2024-08-06"
    assert info.request_id == "chatcmpl-1"
    assert info.finish_reason == "stop"
    assert info.usage == Usage(prompt=12, completion=3, total=15, cached=8, reasoning=0)
    assert info.usage_source is UsageSource.RESPONSE
    assert info.text() == "Hi!"
    assert info.text_length() == 3
    assert info.has_text is True


def test_embeddings_response_usage_has_no_completion() -> None:
    body = _json(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 7, "total_tokens": 7},
        }
    )
    info = analyze_response(body)
    assert info.model == "text-embedding-3-small"
    assert info.usage == Usage(prompt=7, completion=None, total=7)
    assert info.usage_source is UsageSource.RESPONSE
    assert info.finish_reason == ""


def test_responses_api_response_reads_status_and_usage_details() -> None:
    body = _json(
        {
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "model": "gpt-4.1-2025-04-14",
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Three controls."}],
                }
            ],
            "usage": {
                "input_tokens": 18,
                "input_tokens_details": {"cached_tokens": 4},
                "output_tokens": 24,
                "output_tokens_details": {"reasoning_tokens": 6},
                "total_tokens": 42,
            },
        }
    )
    info = analyze_response(body)
    assert info.request_id == "resp_1"
    assert info.finish_reason == "completed"
    assert info.usage == Usage(prompt=18, completion=24, total=42, cached=4, reasoning=6)
    assert info.text() == "Three controls."


def test_usage_counts_sent_as_text_or_floats_are_read() -> None:
    usage = usage_from({"prompt_tokens": "12", "completion_tokens": 3.0, "total_tokens": True})
    assert usage == Usage(prompt=12, completion=3, total=None)
    assert usage_from({}) is None
    assert usage_from({"model": "x"}) is None
    assert usage_from("12") is None


def test_response_body_may_be_an_object_already() -> None:
    info = analyze_response(CHAT_RESPONSE)
    assert info.document is CHAT_RESPONSE
    assert info.usage == Usage(12, 3, 15, 8, 0)


def test_absent_response_body() -> None:
    info = analyze_response(None)
    assert (info.present, info.truncated, info.usage, info.usage_source) == (
        False,
        False,
        None,
        UsageSource.NONE,
    )
    assert analyze_response("").present is False
    assert info.text() == ""


# ---------------------------------------------------------------------------------------------
# Cut bodies


def test_body_cut_at_8192_bytes_salvages_model_id_and_usage() -> None:
    # Usage is moved first here, as some backends send it, so that it survives the cut.
    doc = {
        "id": "chatcmpl-cut",
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 900, "completion_tokens": 2000, "total_tokens": 2900},
        "choices": [{"message": {"role": "assistant", "content": "y" * 9000}}],
    }
    body = _json(doc)[:8192]
    assert len(body) == 8192
    info = analyze_response(body)
    assert info.truncated is True
    assert info.document is None
    assert info.model == "gpt-4o-mini"
    assert info.request_id == "chatcmpl-cut"
    assert info.usage == Usage(prompt=900, completion=2000, total=2900)
    assert info.usage_source is UsageSource.SALVAGED


def test_embeddings_fixture_cut_at_8192_has_model_but_no_usage() -> None:
    record = orjson.loads((FIXTURES / "apim" / "embeddings_cut_8192.json").read_bytes())
    records = record["records"] if isinstance(record, dict) and "records" in record else [record]
    body = records[0]["properties"]["backendResponseBody"]
    info = analyze_response(body)
    assert info.truncated is True
    assert info.usage is None
    assert info.usage_source is UsageSource.NONE
    assert info.has_text is False


def test_cut_body_with_usage_cut_inside_gives_no_usage() -> None:
    body = '{"id": "x", "model": "m", "usage": {"prompt_tokens": 9, "completion_to'
    info = analyze_response(body)
    assert (info.truncated, info.model, info.request_id, info.usage) == (True, "m", "x", None)


# ---------------------------------------------------------------------------------------------
# Streams


def _chat_chunk(
    text: str | None = None, finish: str | None = None, usage: object = None
) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "delta": {} if text is None else {"content": text}}
    choice["finish_reason"] = finish
    return {
        "id": "chatcmpl-s",
        "model": "gpt-4o-2024-08-06",
        "object": "chat.completion.chunk",
        "choices": [choice],
        "usage": usage,
    }


def test_stream_without_usage_chunk_has_text_but_no_usage() -> None:
    body = _sse(_chat_chunk("Hel"), _chat_chunk("lo \\u00e9"), _chat_chunk(finish="stop"))
    info = analyze_response(body)
    assert info.is_sse is True
    assert info.truncated is False
    assert info.model == "gpt-4o-2024-08-06"
    assert info.request_id == "chatcmpl-s"
    assert info.finish_reason == "stop"
    assert info.usage is None
    assert info.usage_source is UsageSource.NONE
    assert info.text() == "Hello \\u00e9"
    assert info.text_length() == len("Hello \\u00e9")


def test_stream_text_length_counts_escapes_as_one_character() -> None:
    body = 'data: {"choices":[{"delta":{"content":"a\\nb\\u00e9"}}]}\n\ndata: [DONE]\n\n'
    info = analyze_response(body)
    assert info.text() == "a\nbé"
    assert info.text_length() == 4


def _piece_by_piece(text: str) -> int | None:
    """The summed delta contents, one piece per ``"content":"`` (None where that is not exact)."""
    if "\\" in text or '"content"content"' in text or '"content"' not in text:
        return None
    pieces = text.split('"content":"')[1:]
    if text.count('"content"') != len(pieces) or any('"' not in piece for piece in pieces):
        return None
    return sum(piece.find('"') for piece in pieces)


_CHUNK = 'data: {"id":"c","choices":[{"index":0,"delta":{"content":"%s"},"x":null}]}\n\n'
_SHAPES = [
    'data: {"choices":[{"delta":{"content":"%s"}}]}\n\n',
    'data: {"choices":[{"delta":{"role":"assistant","content":"%s"}}]}\n\n',
    'data: {"choices":[{"delta":{"content":"%s","x":"content"}}]}\n\n',
    _CHUNK,
]
_CONTENTS = st.text(alphabet='ab :{}"', max_size=4) | st.sampled_from(
    ["content", '"content"', 'content":"', '":"', ""]
)


@st.composite
def _streams(draw: st.DrawFn) -> str:
    """Chat streams: mostly of one chunk shape, some mixed, cut or with odd contents."""
    shapes = draw(st.lists(st.sampled_from(_SHAPES), min_size=1, max_size=3))
    chunks = [
        draw(st.sampled_from(shapes)) % draw(_CONTENTS) for _ in range(draw(st.integers(1, 8)))
    ]
    if draw(st.booleans()):  # the last chunk with more text on its line
        chunks[-1] = chunks[-1].replace("\n", draw(st.sampled_from(["}", " ", "x"])) + "\n", 1)
    text = "".join(chunks) + draw(st.sampled_from(["data: [DONE]\n\n", ""]))
    return text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _streams() | st.lists(st.sampled_from(['"content":"', '"', ":", "content", "a"])).map("".join)
)
def test_same_shape_stream_length_is_the_piece_by_piece_count(text: str) -> None:
    keys = text.count('"content"')
    if "\\" in text or '"content"content"' in text or not keys:
        return
    length = _same_shape_length(text, keys)
    if length is not None:  # taken only where the piece-by-piece count is exact, and equal to it
        assert length == _piece_by_piece(text)


def test_a_same_shape_stream_is_measured_whole() -> None:
    text = "".join(_CHUNK % word for word in ("Hel", "lo", "", " world")) + "data: [DONE]\n\n"
    assert _same_shape_length(text, text.count('"content"')) == len("Hello world")
    mixed = text.replace('"x":null', '"x":1', 1)  # one chunk of another shape: measured by piece
    assert _same_shape_length(mixed, mixed.count('"content"')) is None
    assert analyze_response(mixed).text_length() == len("Hello world")


_TEXT_CONTENTS = st.text(alphabet='ab :{}"\\n\n', max_size=5) | st.sampled_from(
    [
        "content",
        'content":"',
        'x"content":"y',
        "\\n",
        "\\u00e9",
        "\\ud83d",
        "\\ude00",
        "\\",
        "\\\\",
        "é",
        "\x00",
        "",
    ]
)
_TEXT_SHAPES = [
    *_SHAPES,
    'data: {"choices":[{"delta":{"content":"%s"}}]}\n\ndata: {"choices":[{"text":"t"}]}\n\n',
    'event: x\ndata: {"choices":[{"delta":{"content":"%s"}}]}\n\n',
    'data: {"choices":[{"delta":{"content":"%s"}},{"delta":{"content":"z"}}]}\n\n',
    'data: {"choices":[{"message":{"content":"%s"}}]}\n\n',
    'data: {"choices":[{"delta":{"content":"%s"}}]\n\n',
    'data: {"choices":[{"text":"0","delta":{}}],"content":"%s"}\n\n',  # the same text each time
]


@st.composite
def _text_streams(draw: st.DrawFn) -> str:
    """Chat streams of mostly one shape with odd contents: escapes, quotes, halves of a pair."""
    shapes = draw(st.lists(st.sampled_from(_TEXT_SHAPES), min_size=1, max_size=2))
    shapes = shapes[:1] if draw(st.booleans()) else shapes  # one shape: the case worth reading
    contents = _TEXT_CONTENTS if draw(st.booleans()) else st.text(alphabet="ab é", max_size=3)
    leads = [
        'data: {"choices":[{"delta":{"role":"assistant","content":"%s"}}]}\n\n',
        'data: {"type":"content_block_delta","delta":{"text":"Z"},'
        '"choices":[{"delta":{"content":"%s"}}]}\n\n',  # another shape, and another text
    ]
    chunks = [draw(st.sampled_from(leads)) % draw(contents)] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 9))):
        chunks.append(draw(st.sampled_from(shapes)) % draw(contents))
    if draw(st.booleans()):  # the last chunk with more text on its line
        chunks[-1] = chunks[-1].replace("\n", draw(st.sampled_from(["}", " ", "x"])) + "\n", 1)
    text = "".join(chunks) + draw(st.sampled_from(["data: [DONE]\n\n", ""]))
    return text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text


def _every_chunk(text: str) -> str:
    """The delta text of every ``data:`` line parsed on its own (the reference reading)."""
    chunks = []
    for line in text.split("\n"):
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            try:
                chunk = orjson.loads(line[5:].strip())
            except orjson.JSONDecodeError:
                continue
            if isinstance(chunk, dict):
                chunks.append(chunk)
    return _stream_text(chunks)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_text_streams())
def test_same_shape_stream_text_is_what_every_chunk_gives(text: str) -> None:
    assert _text_of_events(text) == _every_chunk(text)
    fast = _same_shape_text(text)
    if fast is not None:  # taken only where it gives what reading every chunk gives
        assert fast == _every_chunk(text)


def test_a_long_same_shape_stream_is_read_without_its_middle_chunks() -> None:
    words = ("Hel", "lo", "", " w\\u00f6rld" if False else " w\\n", "orld", "!")
    text = "".join(_CHUNK % word for word in words) + "data: [DONE]\n\n"
    assert _same_shape_text(text) == "Hello w\norld!" == _text_of_events(text)
    assert analyze_response(text).text() == "Hello w\norld!"
    pair = text.replace("orld", "\\ud83d", 1).replace("!", "\\ude00", 1)  # half a pair per chunk
    assert _same_shape_text(pair) is None
    assert analyze_response(pair).text() == "Hello w\n"  # each half is unreadable alone


@pytest.mark.parametrize(
    "contents",
    [
        ["ab\\", "nc", "d", "e"],  # the first content ends with a backslash: its quote is escaped
        ["a", "b", "c", "d\\"],  # the last one does
        ["a\\", "\\", "n\\", "\\"],
        ["a", "b\\n", "c", "\\t"],  # escapes that are whole: read in one go
    ],
)
def test_a_same_shape_stream_reads_escapes_as_every_chunk_does(contents: list[str]) -> None:
    text = "".join(_CHUNK % content for content in contents)
    fast = _same_shape_text(text)
    assert fast is None or fast == _every_chunk(text)
    assert analyze_response(text).text() == _every_chunk(text)


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "content": "Hi assistant: there"},
        {"role": "assistant", "content": "assistant: twice"},
        {"role": "tool", "content": "42"},
        {"content": "no role"},
        {"role": "assistant", "content": "call", "tool_calls": [{"function": {"name": "f"}}]},
        {"role": "assistant", "content": "none", "tool_calls": []},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}]},
        {"role": "assistant", "content": None},
    ],
)
def test_a_choice_message_reads_as_its_rendered_line(message: dict[str, object]) -> None:
    expected = render_messages([message]).removeprefix("assistant: ")
    assert completion_text({"choices": [{"message": message}]}) == expected


def test_stream_with_usage_chunk() -> None:
    usage = {"prompt_tokens": 26, "completion_tokens": 17, "total_tokens": 43}
    body = _sse(
        _chat_chunk("Hi"),
        _chat_chunk(finish="stop"),
        {"id": "chatcmpl-s", "model": "gpt-4o-2024-08-06", "choices": [], "usage": usage},
    )
    info = analyze_response(body)
    assert info.usage == Usage(prompt=26, completion=17, total=43)
    assert info.usage_source is UsageSource.STREAM
    assert info.finish_reason == "stop"
    assert info.truncated is False


def test_stream_fixture_with_include_usage() -> None:
    body = (FIXTURES / "sse_chat_include_usage.txt").read_text(encoding="utf-8")
    info = analyze_response(body)
    assert info.is_sse is True
    assert info.model == "gpt-4o-2024-08-06"
    assert info.request_id == "chatcmpl-AD1zqQk3mW8xN2v0pLr5tY7uI9oPa"
    assert info.usage == Usage(prompt=26, completion=17, total=43, cached=0, reasoning=0)
    assert info.usage_source is UsageSource.STREAM


def test_cut_stream_is_truncated_and_drops_the_half_chunk() -> None:
    body = (
        _sse(_chat_chunk("one"), _chat_chunk("two"), done=False) + 'data: {"id":"chatcmpl-s","cho'
    )
    info = analyze_response(body)
    assert info.truncated is True
    assert info.usage is None
    assert info.text() == "onetwo"
    assert info.text_length() == 6


def test_cut_stream_with_usage_is_salvaged() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    body = _sse(_chat_chunk("x"), {"choices": [], "usage": usage}, done=False)
    info = analyze_response(body)
    assert info.truncated is True  # no [DONE]
    assert info.usage == Usage(5, 1, 6)
    assert info.usage_source is UsageSource.SALVAGED


def test_responses_api_stream_reads_the_completed_event() -> None:
    response = {
        "id": "resp_9",
        "object": "response",
        "model": "gpt-4.1-2025-04-14",
        "status": "completed",
        "usage": {"input_tokens": 10, "output_tokens": 4, "total_tokens": 14},
    }
    in_progress = {k: v for k, v in response.items() if k != "usage"} | {"status": "in_progress"}
    created = {"type": "response.created", "response": in_progress}
    body = "".join(
        [
            "event: response.created\n",
            f"data: {_json(created)}\n\n",
            "event: response.output_text.delta\n",
            f"data: {_json({'type': 'response.output_text.delta', 'delta': 'Hel'})}\n\n",
            f"data: {_json({'type': 'response.output_text.delta', 'delta': 'lo'})}\n\n",
            "event: response.completed\n",
            f"data: {_json({'type': 'response.completed', 'response': response})}\n\n",
        ]
    )
    info = analyze_response(body)
    assert info.is_sse is True
    assert info.truncated is False
    assert info.model == "gpt-4.1-2025-04-14"
    assert info.request_id == "resp_9"
    assert info.finish_reason == "completed"
    assert info.usage == Usage(prompt=10, completion=4, total=14)
    assert info.usage_source is UsageSource.STREAM
    assert info.text() == "Hello"
    assert info.text_length() == 5


# ---------------------------------------------------------------------------------------------
# Errors


def test_openai_error_body() -> None:
    body = _json({"error": {"code": "content_filter", "message": "The prompt was filtered."}})
    info = analyze_response(body)
    assert info.error_code == "content_filter"
    assert info.error_message == "The prompt was filtered."
    assert info.usage is None


def test_numeric_error_code_becomes_text() -> None:
    info = analyze_response('{"error":{"code":429,"message":"Rate limit exceeded."}}')
    assert (info.error_code, info.error_message) == ("429", "Rate limit exceeded.")


def test_apim_own_error_body() -> None:
    body = '{"statusCode": 429, "message": "Token limit is exceeded. Try again in 41 seconds."}'
    info = analyze_response(body)
    assert info.error_code == "429"
    assert info.error_message == "Token limit is exceeded. Try again in 41 seconds."
    assert info.truncated is False
    assert info.model == ""


def test_error_inside_a_stream() -> None:
    body = _sse({"error": {"code": "server_error", "message": "boom"}}, done=False)
    info = analyze_response(body)
    assert (info.error_code, info.error_message) == ("server_error", "boom")
    assert info.truncated is True


# ---------------------------------------------------------------------------------------------
# Estimates


@pytest.mark.parametrize(
    ("chars", "tokens"), [(0, 0), (1, 1), (4, 1), (5, 2), (8, 2), (4001, 1001)]
)
def test_estimate_tokens_rounds_up(chars: int, tokens: int) -> None:
    assert CHARS_PER_TOKEN == 4
    assert estimate_tokens(chars) == tokens


# ---------------------------------------------------------------------------------------------
# Anthropic, contradictions and what a cut body still shows


def test_anthropic_usage_counts_every_input_token_billed() -> None:
    usage = usage_from(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 300,
            "cache_creation_input_tokens": 40,
            "output_tokens": 7,
        }
    )
    assert usage == Usage(prompt=350, completion=7, total=None, cached=300, cache_write=40)


def test_anthropic_usage_without_cache_counts_reads_like_the_responses_api() -> None:
    # Without cache keys the two shapes mean the same thing: input excludes nothing.
    assert usage_from({"input_tokens": 10, "output_tokens": 7}) == Usage(10, 7)


def test_anthropic_stream_takes_input_from_message_start_and_output_from_message_delta() -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "model": "claude-haiku-4-5-20251001",
            "content": [],
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 20, "output_tokens": 1},
        },
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "hi"},
    }
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"output_tokens": 3},
    }
    body = "".join(
        f"event: {c['type']}\ndata: {_json(c)}\n\n"
        for c in (start, delta, end, {"type": "message_stop"})
    )
    info = analyze_response(body)
    assert (info.model, info.request_id, info.finish_reason) == (
        "claude-haiku-4-5-20251001",
        "msg_1",
        "max_tokens",
    )
    assert info.usage == Usage(prompt=25, completion=3, cached=20)
    assert (info.usage_source, info.truncated, info.text()) == (UsageSource.STREAM, False, "hi")
    # Cut before message_delta: the placeholder output count of message_start is not a count.
    cut = analyze_response(body[: body.index("event: message_delta")])
    assert cut.usage == Usage(prompt=25, completion=None, cached=20)
    assert (cut.usage_source, cut.truncated) == (UsageSource.SALVAGED, True)


def test_a_cut_body_shows_its_visible_text_for_a_lower_bound() -> None:
    text = "x" * 500 + "\n" + "y" * 99  # a newline: two characters in the JSON text
    body = _json({"id": "c", "choices": [{"message": {"content": text + "END"}}]})
    cut = body[: body.index("END")]
    info = analyze_response(cut)
    assert info.truncated
    assert info.usage is None
    assert info.visible_length() == 600  # an escape is one character; the value runs to the cut
    request = analyze_request(_json({"messages": [{"content": "abcd" * 50}]})[:150])
    assert request.truncated
    assert 0 < request.visible_length() < 200


_CHUNK_VALUES = {
    "choices": [[], [{"delta": {"content": "x"}}], [{"finish_reason": None}], 5, True, {"a": 1}],
    "finish_reason": [None, "stop"],
    "usage": [None, {"total_tokens": 3}, {}],
    "type": ["message_stop", "response.completed", "x", None],
    "error": [None, {"code": "500"}],
    "statusCode": [429],
    "message": ["busy"],
}


@st.composite
def _chunk_payloads(draw: st.DrawFn) -> str:
    """Chunk texts near the chat shape, some with keys duplicated, escaped or spaced out, or cut."""
    choice: dict[str, object] = {"delta": {"content": "x"}}
    if draw(st.booleans()):
        choice["finish_reason"] = draw(st.sampled_from(_CHUNK_VALUES["finish_reason"]))
    chunk: dict[str, object] = {"choices": draw(st.sampled_from([[choice], [], [choice, 1]]))}
    for key in draw(st.lists(st.sampled_from(sorted(_CHUNK_VALUES)), max_size=3)):
        chunk[key] = draw(st.sampled_from(_CHUNK_VALUES[key]))
    text = _json(chunk)
    edit = draw(st.sampled_from(["", "duplicate", "escape", "space", "cut"]))
    if edit == "duplicate":
        key = draw(st.sampled_from(sorted(_CHUNK_VALUES)))
        text = f'{text[:-1]},"{key}":{_json(draw(st.sampled_from(_CHUNK_VALUES[key])))}}}'
    elif edit == "escape":
        text = text.replace('"usage"', '"\\u0075sage"').replace('"type"', '"typ\\u0065"')
    elif edit == "space":
        text = text.replace('":', '": ')
    elif edit == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    return text


@settings(max_examples=500, deadline=None)
@given(_chunk_payloads(), st.sampled_from(["", "stop"]))
def test_a_chunk_that_says_nothing_new_is_one_reading_would_not_change(
    payload: str, finish: str
) -> None:
    if not _says_nothing_new(payload):
        return
    known = ResponseInfo(True, model="gpt-4o", request_id="chatcmpl-1", finish_reason=finish)
    info = ResponseInfo(True, model="gpt-4o", request_id="chatcmpl-1", finish_reason=finish)
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return  # a tail chunk that does not parse is counted as one that says nothing
    if isinstance(chunk, dict):
        assert chunk.get("type") not in _FINAL_EVENTS
        _read_chunk(chunk, info)
    assert info == known
