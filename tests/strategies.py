"""Hypothesis strategies: realistic APIM records, envelopes and mutated event bodies."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from hypothesis import strategies as st

ids = st.uuids().map(str)
times = st.datetimes(
    min_value=__import__("datetime").datetime(2020, 1, 1),
    max_value=__import__("datetime").datetime(2030, 1, 1),
).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
deployments = st.sampled_from(["gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "o3-mini"])
models = st.sampled_from(["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "o3-mini-2025-01-31"])
counts = st.integers(min_value=0, max_value=200_000)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(-100, 100), max_size=3),
)


@st.composite
def usages(draw: st.DrawFn) -> dict[str, Any]:
    prompt, completion = draw(counts), draw(counts)
    if draw(st.booleans()):
        return {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
            "input_tokens_details": {"cached_tokens": draw(st.integers(0, prompt))},
            "output_tokens_details": {"reasoning_tokens": draw(st.integers(0, completion))},
        }
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if draw(st.booleans()):
        usage["prompt_tokens_details"] = {"cached_tokens": draw(st.integers(0, prompt))}
    return usage


@st.composite
def response_bodies(draw: st.DrawFn) -> str:
    body = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "model": draw(models),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": draw(st.text(max_size=200))},
            }
        ],
        "usage": draw(usages()),
    }
    text = orjson.dumps(body).decode()
    cut = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=len(text))))
    return text if cut is None else text[:cut]


@st.composite
def gateway_records(draw: st.DrawFn) -> dict[str, Any]:
    deployment = draw(deployments)
    properties: dict[str, Any] = {
        "method": "POST",
        "url": f"https://gw.example/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21",
        "responseCode": draw(st.sampled_from([200, 200, 200, 400, 429, 500])),
        "apimSubscriptionId": draw(st.sampled_from(["team-a", "team-b"])),
        "productId": "p",
        "operationId": "ChatCompletions_Create",
        "backendId": draw(st.sampled_from(["be-swc", "be-eus"])),
        "backendTime": draw(st.integers(0, 60_000)),
    }
    if draw(st.booleans()):
        properties["requestBody"] = orjson.dumps(
            {
                "messages": [{"role": "user", "content": draw(st.text(max_size=100))}],
                "stream": draw(st.booleans()),
            }
        ).decode()
    if draw(st.booleans()):
        properties["backendResponseBody"] = draw(response_bodies())
    for key in draw(st.lists(st.sampled_from(sorted(properties)), max_size=2, unique=True)):
        del properties[key]
    return {
        "time": draw(times),
        "category": "GatewayLogs",
        "correlationId": draw(ids),
        "durationMs": draw(st.integers(0, 60_000)),
        "properties": properties,
    }


@st.composite
def llm_records(draw: st.DrawFn) -> dict[str, Any]:
    prompt, completion = draw(counts), draw(counts)
    return {
        "time": draw(times),
        "category": "GatewayLlmLogs",
        "correlationId": draw(ids),
        "properties": {
            "sequenceNumber": draw(st.integers(0, 10)),
            "deploymentName": draw(deployments),
            "modelName": draw(models),
            "promptTokens": prompt,
            "completionTokens": completion,
            "totalTokens": prompt + completion,
        },
    }


@st.composite
def policy_records(draw: st.DrawFn) -> dict[str, Any]:
    prompt, completion = draw(counts), draw(counts)
    as_text = draw(st.booleans())
    return {
        "timestamp": draw(st.sampled_from(["9/30/2024 12:31:32 PM", "2024-09-30T12:31:32Z"])),
        "subscriptionId": draw(st.sampled_from(["team-a", "team-b"])),
        "deploymentName": draw(deployments),
        "promptTokens": str(prompt) if as_text else prompt,
        "responseTokens": str(completion) if as_text else completion,
        "totalTokens": str(prompt + completion) if as_text else prompt + completion,
    }


good_records = st.one_of(gateway_records(), llm_records(), policy_records())


@st.composite
def poison_records(draw: st.DrawFn) -> Any:
    """Records that must become dead letters (or, at worst, odd rows), never exceptions."""
    base = draw(good_records)
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(junk)
    if choice == 1:
        base["time" if "time" in base else "timestamp"] = draw(junk)
        return base
    if choice == 2:
        target = base.get("properties", base)
        if target:
            target[draw(st.sampled_from(sorted(target)))] = draw(junk)
        return base
    if choice == 3:
        base["category"] = draw(st.text(min_size=1, max_size=10))
        return base
    return {draw(st.text(max_size=5)): draw(junk)}


any_records = st.one_of(good_records, poison_records())


@st.composite
def event_bodies(draw: st.DrawFn) -> bytes:
    """Event bodies as they may arrive, including damaged ones."""
    records = draw(st.lists(any_records, max_size=6))
    shape = draw(st.sampled_from(["envelope", "array", "single"]))
    document: Any = (
        {"records": records}
        if shape == "envelope"
        else records
        if shape == "array" or not records
        else records[0]
    )
    body = orjson.dumps(document)
    if draw(st.booleans()):
        body = b"\xef\xbb\xbf" + body
    if draw(st.booleans()):
        body = gzip.compress(body)
    mutation = draw(st.sampled_from(["none", "none", "truncate", "flip", "garbage"]))
    if mutation == "truncate" and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif mutation == "flip" and body:
        index = draw(st.integers(0, len(body) - 1))
        body = body[:index] + bytes([body[index] ^ draw(st.integers(1, 255))]) + body[index + 1 :]
    elif mutation == "garbage":
        body = draw(st.binary(max_size=200))
    return body
