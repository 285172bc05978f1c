"""A deterministic APIM traffic simulator: event bodies as APIM writes them, and the ground truth.

Several subscriptions, products and users call chat, embeddings and Responses API deployments and
a Claude deployment (Anthropic Messages API, plain and streamed, with prompt caching), served
round-robin by two backends in two regions. Two teams' calls are also logged by a
log-to-eventhub usage policy (ai-hub-gateway style: the response id, no APIM request id), in
events of their own beside the diagnostic logs of the same calls. The traffic has what
production has: APIM token-limit 429s, backend 429s, content-filter 400s, streamed calls with and
without a usage chunk, streamed calls logged without a body (their counts only in
GatewayLlmLogs), embeddings bodies cut at 8 KB, GatewayLlmLogs records arriving in later events
than their GatewayLogs partners, duplicate events and a few malformed ones. The same seed gives
the same bytes.

The ground truth says, per subscription and model, how many calls and tokens there were, and how
many of them the logs carry exactly: the KPIs computed through the pipeline must equal it.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

RESOURCE_ID = (
    "/SUBSCRIPTIONS/00000000-1111-2222-3333-444444444444/RESOURCEGROUPS/RG-AIGW/PROVIDERS/"
    "MICROSOFT.APIMANAGEMENT/SERVICE/APIM-AIGW-DEMO"
)
GATEWAY = "https://apim-aigw-demo.azure-api.net"
BACKENDS = (
    ("aoai-swedencentral", "https://aoai-swc-01.openai.azure.com", "Sweden Central"),
    ("aoai-eastus", "https://aoai-eus-01.openai.azure.com", "East US"),
)
"""The origin design: one gateway, round-robin and failover across two regions."""

TEAMS = (
    ("sub-finance-app", "ai-finance", 3),
    ("sub-hr-assistant", "ai-hr", 2),
    ("sub-legal-review", "ai-legal", 2),
    ("sub-support-bot", "ai-support", 4),
    ("sub-data-science", "ai-research", 3),
)
"""(subscription, product, users)."""

DEPLOYMENTS = {
    "gpt-4o": ("chat", "gpt-4o-2024-08-06"),
    "gpt-4o-mini": ("chat", "gpt-4o-mini-2024-07-18"),
    "text-embedding-3-small": ("embeddings", "text-embedding-3-small"),
    "gpt-4.1": ("responses", "gpt-4.1-2025-04-14"),
    "claude-sonnet-4-5": ("messages", "claude-sonnet-4-5-20250929"),
}
POLICY_TEAMS = frozenset({"sub-support-bot", "sub-finance-app"})
"""Subscriptions whose successful chat and Responses API calls a usage policy logs as well."""
WORDS = (
    "budget quarterly policy travel invoice contract review summary customer ticket refund model "
    "report forecast revenue audit compliance meeting schedule vendor approval risk metric"
).split()
EXACT_SOURCES = ("response", "stream", "llm_log", "policy")


@dataclass
class Truth:
    """Per (subscription, model): calls and tokens, all and exactly logged."""

    rows: dict[tuple[str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    events: int = 0
    records: int = 0
    duplicates: int = 0
    malformed: int = 0

    def add(self, subscription: str, model: str, prompt: int, completion: int, exact: bool) -> None:
        """Count one call."""
        row = self.rows[(subscription, model)]
        row["Calls"] += 1
        row["PromptTokens"] += prompt
        row["CompletionTokens"] += completion
        if exact:
            row["ExactCalls"] += 1
            row["ExactPromptTokens"] += prompt
            row["ExactCompletionTokens"] += completion

    def as_dict(self) -> dict[str, Any]:
        """The truth as JSON-ready data."""
        return {
            "events": self.events,
            "records": self.records,
            "duplicate_events": self.duplicates,
            "malformed_events": self.malformed,
            "usage": [
                {"SubscriptionId": sub, "ModelName": model, **dict(sorted(values.items()))}
                for (sub, model), values in sorted(self.rows.items())
            ],
        }


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _vector(rng: random.Random, dimensions: int, shown: int) -> tuple[str, bool]:
    """An embedding vector, comma-separated: the text and whether it holds every value.

    ``dimensions`` draws of ``uniform(-0.05, 0.05)``, written out only until the text is ``shown``
    characters long (the logged body is cut there); the other draws are still taken, so the rest
    of the traffic does not depend on the cut.
    """
    low, high = -0.05, 0.05
    draw = rng.random  # uniform(low, high) is low + (high - low) * random(): one draw each
    parts: list[str] = []
    length = -1  # no comma before the first value
    while len(parts) < dimensions and length < shown:
        parts.append(f"{low + (high - low) * draw():.9f}")
        length += len(parts[-1]) + 1
    for _ in range(dimensions - len(parts)):
        draw()
    return ",".join(parts), len(parts) == dimensions


def _time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0Z"


class Simulator:
    """Generates the traffic of a period at a rate, call by call."""

    def __init__(self, seed: int, start: datetime, hours: float, calls_per_minute: float) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.end = start + timedelta(hours=hours)
        self.calls_per_minute = calls_per_minute
        self.truth = Truth()
        self._round_robin = 0

    def _backend(self) -> tuple[str, str, str]:
        self._round_robin += 1
        return BACKENDS[self._round_robin % len(BACKENDS)]

    def _call(self, moment: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One call: its GatewayLogs record and its GatewayLlmLogs records (possibly none)."""
        rng = self.rng
        subscription, product, users = rng.choice(TEAMS)
        deployment = rng.choices(list(DEPLOYMENTS), weights=(40, 27, 13, 10, 10))[0]
        kind, model = DEPLOYMENTS[deployment]
        backend_id, backend_host, _region = self._backend()
        correlation = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        prompt_text = _text(rng, rng.randint(8, 300))
        completion_text = _text(rng, rng.randint(5, 250)) if kind != "embeddings" else ""
        prompt_tokens = max(1, len(prompt_text) // 4 + rng.randint(0, 9))
        completion_tokens = (
            0 if kind == "embeddings" else max(1, len(completion_text) // 4 + rng.randint(0, 9))
        )
        # Claude's prompt caching: input read from the cache and written to it, billed apart.
        cache_read = rng.choice((0, 0, 1024, 2048)) if kind == "messages" else 0
        cache_write = rng.choice((0, 0, 0, 512)) if kind == "messages" else 0
        outcome = rng.choices(["ok", "apim429", "backend429", "filtered"], weights=(90, 4, 4, 2))[0]
        if kind == "responses":
            path = "/openai/v1/responses"
        elif kind == "messages":
            path = "/anthropic/v1/messages"
        elif kind == "embeddings":
            path = f"/openai/deployments/{deployment}/embeddings?api-version=2024-10-21"
        else:
            path = f"/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21"
        streamed = kind in ("chat", "messages") and rng.random() < 0.35
        if kind == "messages":
            style = "sse" if streamed else "json"
        else:
            style = rng.choice(["usage", "no_usage", "no_body"]) if streamed else "json"
        llm_logged = (
            kind == "chat" and outcome == "ok" and (style == "no_body" or rng.random() < 0.3)
        )

        request: dict[str, Any]
        if kind == "chat":
            request = {"messages": [{"role": "user", "content": prompt_text}], "max_tokens": 800}
            if streamed:
                request["stream"] = True
                if style == "usage":
                    request["stream_options"] = {"include_usage": True}
        elif kind == "embeddings":
            request = {"input": prompt_text}
        elif kind == "messages":
            request = {
                "model": deployment,
                "max_tokens": 800,
                "messages": [{"role": "user", "content": prompt_text}],
            }
            if streamed:
                request["stream"] = True
        else:
            request = {"model": deployment, "input": prompt_text, "max_output_tokens": 800}
        props: dict[str, Any] = {
            "apiId": "azure-openai-api",
            "apiRevision": "1",
            "apimSubscriptionId": subscription,
            "productId": product,
            "userId": f"{product}-user-{rng.randint(1, users)}",
            "method": "POST",
            "url": GATEWAY + path,
            "operationId": {
                "chat": "ChatCompletions_Create",
                "embeddings": "embeddings_create",
                "messages": "Messages_Create",
            }.get(kind, "createResponse"),
            "cache": "none",
            "clientProtocol": "HTTP/1.1",
            "clientTime": rng.randint(0, 4),
            "requestSize": 200 + len(prompt_text),
            "requestBody": orjson.dumps(request).decode()[:8192],
        }
        duration = rng.randint(300, 9000)
        code = 200
        usage_exact = False
        if outcome == "apim429":
            code, duration = 429, rng.randint(1, 5)
            props["responseBody"] = (
                '{"statusCode": 429, "message": "Token limit is exceeded. Try again in 30 s."}'
            )
            props["lastError"] = {
                "source": "llm-token-limit",
                "reason": "TokenLimitExceeded",
                "section": "inbound",
                "message": "Token limit is exceeded. Try again in 30 seconds.",
            }
        else:
            props.update(
                backendId=backend_id,
                backendUrl=backend_host + path,
                backendMethod="POST",
                backendRequestBody=props["requestBody"],
                backendTime=duration - rng.randint(1, 20),
            )
            if outcome == "backend429":
                code = 429
                props["backendResponseBody"] = (
                    '{"error": {"code": "429", "message": "Rate limit is exceeded."}}'
                )
            elif outcome == "filtered":
                code = 400
                props["backendResponseBody"] = orjson.dumps(
                    {
                        "error": {
                            "code": "content_filter",
                            "status": 400,
                            "message": "The response was filtered due to the prompt triggering "
                            "Azure OpenAI's content management policy.",
                        }
                    }
                ).decode()
            elif kind == "messages":
                body, usage_exact = self._claude_response(
                    model,
                    style,
                    correlation,
                    (prompt_tokens, cache_read, cache_write, completion_tokens),
                    completion_text,
                )
                props["backendResponseBody"] = body
            else:
                logged, usage_exact = self._response(
                    kind,
                    model,
                    deployment,
                    style,
                    correlation,
                    prompt_tokens,
                    completion_tokens,
                    completion_text,
                )
                if logged is not None:
                    props["backendResponseBody"] = logged
            props["backendResponseCode"] = code
        props["responseCode"] = code
        props["responseSize"] = len(props.get("backendResponseBody", "")) + 300
        record = {
            "time": _time(moment),
            "resourceId": RESOURCE_ID,
            "category": "GatewayLogs",
            "operationName": "Microsoft.ApiManagement/GatewayLogs",
            "correlationId": correlation,
            "callerIpAddress": f"203.0.113.{rng.randint(1, 254)}",
            "durationMs": duration,
            "isRequestSuccess": code == 200,
            "location": "Sweden Central",
            "resultType": "Succeeded" if code == 200 else "Failed",
            "Level": 4,
            "properties": props,
        }
        llm_records = (
            self._llm_records(
                moment,
                correlation,
                deployment,
                model,
                streamed,
                prompt_text,
                completion_text,
                prompt_tokens,
                completion_tokens,
            )
            if llm_logged
            else []
        )
        billed = outcome == "ok"
        policy_logged = billed and subscription in POLICY_TEAMS and kind in ("chat", "responses")
        if policy_logged:
            llm_records.append(
                self._usage_event(
                    moment,
                    subscription,
                    product,
                    deployment,
                    model,
                    backend_id,
                    f"resp_{correlation[:12]}"
                    if kind == "responses"
                    else f"chatcmpl-{correlation[:8]}",
                    prompt_tokens,
                    completion_tokens,
                )
            )
        input_tokens = prompt_tokens + cache_read + cache_write  # every input token billed
        self.truth.add(
            subscription,
            model if billed else "",
            input_tokens if billed else 0,
            completion_tokens if billed else 0,
            billed and (usage_exact or llm_logged or policy_logged),
        )
        return [record], llm_records

    def _usage_event(
        self,
        moment: datetime,
        subscription: str,
        product: str,
        deployment: str,
        model: str,
        backend_id: str,
        response_id: str,
        prompt: int,
        completion: int,
    ) -> dict[str, Any]:
        """A log-to-eventhub usage event of one call, as the ai-hub-gateway policy writes it."""
        return {
            "id": response_id,
            "timestamp": f"{moment:%m/%d/%Y %I:%M:%S %p}",
            "appId": "NA",
            "subscriptionId": subscription,
            "productName": product,
            "targetService": "chat.completion",
            "model": model,
            "gatewayName": GATEWAY.removeprefix("https://"),
            "gatewayRegion": "Sweden Central",
            "backendId": backend_id,
            "deploymentName": deployment,
            "promptTokens": prompt,
            "responseTokens": completion,
            "totalTokens": prompt + completion,
        }

    def _claude_response(
        self,
        model: str,
        style: str,
        correlation: str,
        counts: tuple[int, int, int, int],
        text: str,
    ) -> tuple[str, bool]:
        """An Anthropic Messages API body (a message or its event stream); whether it is whole."""
        fresh, read, write, completion = counts
        message_id = f"msg_{correlation[:12]}"
        usage = {
            "input_tokens": fresh,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens": completion,
        }
        if style == "json":
            body = orjson.dumps(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "usage": usage,
                }
            ).decode()
            return body[:8192], len(body) <= 8192
        start = {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "usage": {**usage, "output_tokens": 1},
            },
        }
        events: list[tuple[str, dict[str, Any]]] = [("message_start", start)]
        events.append(("content_block_start", {"type": "content_block_start", "index": 0}))
        for word in text.split():
            delta = {"type": "text_delta", "text": word + " "}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
        events.append(("message_delta", {**end, "usage": {"output_tokens": completion}}))
        events.append(("message_stop", {"type": "message_stop"}))
        body = "".join(f"event: {name}\ndata: {orjson.dumps(e).decode()}\n\n" for name, e in events)
        return body[:8192], len(body) <= 8192

    def _response(
        self,
        kind: str,
        model: str,
        deployment: str,
        style: str,
        correlation: str,
        prompt: int,
        completion: int,
        text: str,
    ) -> tuple[str | None, bool]:
        """The logged response body and whether it carries exact usage."""
        rng = self.rng
        cid = f"chatcmpl-{correlation[:8]}"
        if kind == "embeddings":
            head = '{"object":"list","data":[{"object":"embedding","index":0,"embedding":['
            vector, whole = _vector(rng, 1536, 8192 - len(head))
            if not whole:  # APIM keeps 8192 bytes of a body: the rest of the vector is cut
                return (head + vector)[:8192], False
            body = (
                f'{head}{vector}]}}],"model":"{model}",'
                f'"usage":{{"prompt_tokens":{prompt},"total_tokens":{prompt}}}}}'
            )
            return body[:8192], len(body) <= 8192
        document: dict[str, Any]
        if kind == "responses":
            document = {
                "id": f"resp_{correlation[:12]}",
                "object": "response",
                "status": "completed",
                "model": model,
                "output": [
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text}],
                    }
                ],
                "usage": {
                    "input_tokens": prompt,
                    "output_tokens": completion,
                    "total_tokens": prompt + completion,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0},
                },
            }
            out = orjson.dumps(document).decode()
            return out[:8192], len(out) <= 8192
        if style == "json":
            document = {
                "id": cid,
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
            out = orjson.dumps(document).decode()
            return out[:8192], len(out) <= 8192
        if style == "no_body":
            return None, False
        chunks = [
            'data: {"choices":[],"created":0,"id":"","model":"","object":"",'
            '"prompt_filter_results":[]}\n\n'
        ]
        for word in text.split():
            chunk = {
                "id": cid,
                "model": model,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
            }
            chunks.append(f"data: {orjson.dumps(chunk).decode()}\n\n")
        last = {
            "id": cid,
            "model": model,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        chunks.append(f"data: {orjson.dumps(last).decode()}\n\n")
        if style == "usage":
            usage = {
                "id": cid,
                "model": model,
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
            chunks.append(f"data: {orjson.dumps(usage).decode()}\n\n")
        chunks.append("data: [DONE]\n\n")
        body = "".join(chunks)
        return body[:8192], style == "usage" and len(body) <= 8192

    def _llm_records(
        self,
        moment: datetime,
        correlation: str,
        deployment: str,
        model: str,
        streamed: bool,
        prompt: str,
        completion: str,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> list[dict[str, Any]]:
        base = {
            "time": _time(moment),
            "resourceId": RESOURCE_ID,
            "category": "GatewayLlmLogs",
            "operationName": "Microsoft.ApiManagement/GatewayLlmLogs",
            "correlationId": correlation,
            "Region": "Sweden Central",
        }
        return [
            {
                **base,
                "properties": {
                    "sequenceNumber": 0,
                    "apiVersion": "2024-10-21",
                    "deploymentName": deployment,
                    "modelName": model,
                    "operationName": "ChatCompletions_Create",
                    "requestId": f"chatcmpl-{correlation[:8]}",
                    "isStreamCompletion": streamed,
                    "promptTokens": prompt_tokens,
                    "completionTokens": completion_tokens,
                    "totalTokens": prompt_tokens + completion_tokens,
                },
            },
            {
                **base,
                "properties": {
                    "sequenceNumber": 1,
                    "deploymentName": "",
                    "requestMessages": [{"role": "user", "content": prompt}],
                },
            },
            {
                **base,
                "properties": {
                    "sequenceNumber": 2,
                    "deploymentName": "",
                    "responseMessages": [{"role": "assistant", "content": completion}],
                },
            },
        ]

    def events(self) -> Iterator[bytes]:
        """Event bodies in time order (one JSON document per event)."""
        rng = self.rng
        moment = self.start
        pending: list[dict[str, Any]] = []
        delayed: list[dict[str, Any]] = []
        emitted: list[bytes] = []
        mean_gap = 60.0 / self.calls_per_minute
        while moment < self.end:
            gateway, llm = self._call(moment)
            pending.extend(gateway)
            for record in llm:
                if (
                    "category" in record
                ):  # GatewayLlmLogs arrive in a later event than their partner
                    delayed.append(record)
                else:  # a log-to-eventhub payload is an event of its own
                    yield from self._emit_payload(record)
            moment += timedelta(seconds=rng.expovariate(1 / mean_gap))
            if len(pending) >= rng.randint(1, 10):
                records = pending + delayed[: rng.randint(0, len(delayed))]
                delayed = delayed[len(records) - len(pending) :]
                pending = []
                yield from self._emit(records, emitted)
        if pending or delayed:
            yield from self._emit(pending + delayed, emitted)

    def _emit_payload(self, payload: dict[str, Any]) -> Iterator[bytes]:
        self.truth.events += 1
        self.truth.records += 1
        yield orjson.dumps(payload)

    def _emit(self, records: list[dict[str, Any]], emitted: list[bytes]) -> Iterator[bytes]:
        rng = self.rng
        body = orjson.dumps({"records": records})
        self.truth.events += 1
        self.truth.records += len(records)
        yield body
        if len(emitted) < 64:
            emitted.append(body)
        if rng.random() < 0.003 and emitted:  # at-least-once: an earlier event again
            self.truth.duplicates += 1
            yield rng.choice(emitted)
        if rng.random() < 0.002:  # a malformed event: cut in the middle
            self.truth.malformed += 1
            self.truth.events += 1
            self.truth.records += 1
            yield body[: len(body) // 2]


def simulate(
    seed: int, start: datetime, hours: float, calls_per_minute: float
) -> tuple[Iterator[bytes], Simulator]:
    """The event bodies, and the simulator holding the truth (complete once they are consumed)."""
    sim = Simulator(seed, start, hours, calls_per_minute)
    return sim.events(), sim


def write_truth(sim: Simulator, path: str) -> None:
    """The ground truth as JSON."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump(sim.truth.as_dict(), out, indent=2)
        out.write("\n")


DEFAULT_START = datetime(2025, 10, 1, tzinfo=UTC)
