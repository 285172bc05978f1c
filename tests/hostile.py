"""Hostile input for the whole path: generated batches, and what every sink's output must satisfy.

A strategy here draws a ``Case``: a batch of events in which good neighbour records (GatewayLogs
records with known correlation ids, which must land as rows) sit beside one hostile class at a
time: numbers out of range or in odd digits, odd times, deep nesting, ``NaN``/``Infinity``/lone
surrogates/invalid UTF-8 inside large envelopes, record bombs, and secrets in every field that
reaches a row or a dead letter and in every URL shape. ``check`` then holds what a sink delivered
to account: no internal error, rows plus dead letters reconcile with the records read, every good
neighbour landed once, every row the core wrote fits its table (no sink had to refuse one), and no
planted secret survives in any column or dead letter (base64 payloads decoded, gzip inflated).

Records are written as JSON text by hand where no encoder would write them (``NaN``, invalid
UTF-8, 30-digit integers, thousands of levels of nesting).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import string
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ingest.batch import run_batch
from ingest.config import CaptureMode
from ingest.core.pipeline import MAX_RECORDS_PER_EVENT, Pipeline
from ingest.model import BatchResult, EventInput, EventMeta
from ingest.schema import DEAD_LETTER_TABLE, LANDING_TABLE, row_checker
from ingest.sinks.adx import AdxSink
from ingest.sinks.dead_letters import DeadLetterStore
from ingest.sinks.memory import MemorySink
from tests.conftest import golden_settings


def examples(count: int) -> settings:
    """Settings for ``count`` generated cases (scaled by ``HYPOTHESIS_EXAMPLES``, 300 by default,
    as the core's properties are: ``HYPOTHESIS_EXAMPLES=3000`` searches ten times harder)."""
    scale = int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")) / 300
    return settings(
        max_examples=max(1, round(count * scale)),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


HOSTILE = examples(60)
"""Generated cases per property in the unit run: enough to meet every class, seconds in all."""

CHUNK = 12
"""A secret counts as leaked when any of its 12-character pieces appears in an output."""

GOOD_URL = "https://gw.example/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
GOOD_RESPONSE = (
    '{"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-08-06", '
    '"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", '
    '"content": "Fine."}}], "usage": {"prompt_tokens": 9, "completion_tokens": 2, '
    '"total_tokens": 11}}'
)
GOOD_REQUEST = '{"messages": [{"role": "user", "content": "Hello?"}]}'


def good_record(tag: str) -> dict[str, Any]:
    """A GatewayLogs record that always becomes a row; ``tag`` is its correlation id."""
    return {
        "time": "2024-09-30T12:31:31.4465902Z",
        "category": "GatewayLogs",
        "correlationId": tag,
        "durationMs": 846,
        "properties": {
            "method": "POST",
            "url": GOOD_URL,
            "responseCode": 200,
            "backendResponseCode": 200,
            "apimSubscriptionId": "team-a",
            "backendTime": 842,
            "requestBody": GOOD_REQUEST,
            "backendResponseBody": GOOD_RESPONSE,
        },
    }


def llm_record(**properties: Any) -> dict[str, Any]:
    """A GatewayLlmLogs record with the given properties."""
    return {
        "time": "2024-09-30T12:31:31.4465902Z",
        "category": "GatewayLlmLogs",
        "correlationId": "llm",
        "properties": {"deploymentName": "gpt-4o", "promptTokens": 5, **properties},
    }


def policy_record(**fields: Any) -> dict[str, Any]:
    """A log-to-eventhub payload in the AI-gateway style of the default mapping."""
    return {
        "timestamp": "2024-09-30T12:31:32Z",
        "subscriptionId": "team-a",
        "deploymentName": "gpt-4o",
        "promptTokens": 3,
        **fields,
    }


def dumps(value: Any) -> bytes:
    """JSON as Python writes it: integers of any size, ``NaN`` and ``Infinity`` included."""
    return json.dumps(value).encode()


# ---------------------------------------------------------------------------------------------
# The case: events, the good neighbours they hold, the secrets planted in them


@dataclass
class Case:
    """A batch of events, the correlation ids that must land as rows, the secrets that must not."""

    events: list[EventInput] = field(default_factory=list)
    good: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def add(self, body: bytes, *, good: Iterable[str] = (), secrets: Iterable[str] = ()) -> None:
        """Append one event (with Event Hub lineage, as the trigger hands it over)."""
        sequence = len(self.events)
        meta = EventMeta("1", 7000 + sequence, str(4096 * sequence), "2024-09-30T12:31:40.0000000Z")
        self.events.append(EventInput(body, meta))
        self.good.extend(good)
        self.secrets.extend(secrets)


@dataclass
class Part:
    """One record as JSON text, with the secrets planted in it."""

    raw: bytes
    secrets: list[str] = field(default_factory=list)


def envelope(parts: list[Part], good_count: int, tag: str, draw: st.DrawFn) -> Case:
    """One diagnostic-settings envelope: ``good_count`` good records around the hostile parts."""
    case = Case()
    goods = [f"{tag}-{i}" for i in range(good_count)]
    records = [Part(orjson.dumps(good_record(g))) for g in goods]
    for part in parts:
        records.insert(draw(st.integers(0, len(records))), part)
    body = b'{"records": [' + b",".join(p.raw for p in records) + b"]}"
    shape = draw(st.sampled_from(["plain", "plain", "bom", "gzip", "bom+gzip"]))
    if "bom" in shape:
        body = b"\xef\xbb\xbf" + body
    if "gzip" in shape:
        body = gzip.compress(body, compresslevel=1)
    case.add(body, good=goods, secrets=[s for p in parts for s in p.secrets])
    return case


@st.composite
def batches(draw: st.DrawFn, parts: st.SearchStrategy[Part], max_good: int = 6) -> Case:
    """A batch: envelopes mixing hostile parts with good neighbours, and a plain good event."""
    case = Case()
    tag = draw(st.uuids()).hex[:12]
    for index in range(draw(st.integers(1, 3))):
        hostile = draw(st.lists(parts, min_size=1, max_size=3))
        one = envelope(hostile, draw(st.integers(0, max_good)), f"{tag}-{index}", draw)
        case.events += one.events
        case.good += one.good
        case.secrets += one.secrets
    case.add(orjson.dumps({"records": [good_record(f"{tag}-plain")]}), good=[f"{tag}-plain"])
    # Lineage as the trigger gives it: one sequence number per event.
    case.events = [
        EventInput(e.body, EventMeta("1", 7000 + i, str(4096 * i), e.meta.enqueued_time))
        for i, e in enumerate(case.events)
    ]
    return case


# ---------------------------------------------------------------------------------------------
# Numbers


HUGE_INTEGERS = st.one_of(
    st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64 - 1, 2**64, 10**30]),
    st.integers(min_value=2**31, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**31) - 1),
)
ODD_DIGITS = st.text(
    alphabet=st.characters(categories=["Nd", "No"], exclude_characters="0123456789"),
    min_size=1,
    max_size=6,
).flatmap(lambda odd: st.sampled_from([odd, f"1{odd}", f"{odd}0", f" {odd} "]))
NUMBER_TEXT = st.one_of(
    st.sampled_from(
        [
            "12345678901234567890123",
            "2147483648.0",
            "-2147483649",
            "9223372036854775808",
            "1e20",
            "1e400",
            "-1e400",
            "inf",
            "NaN",
            "1,000,000,000,000,000,000,000",
            "²",
            "٣٣",
            "３３",
            "0x10",
            "4_2",
        ]
    ),
    HUGE_INTEGERS.map(str),
    ODD_DIGITS,
)
HOSTILE_NUMBERS: st.SearchStrategy[Any] = st.one_of(
    HUGE_INTEGERS,
    st.sampled_from([1e20, -1e20, 1e308, 1.5, -0.5, 9.3e18, float("inf"), float("nan")]),
    NUMBER_TEXT,
)
"""Values for numeric fields: integers past int32 and int64, floats, 23-digit strings, digits
that ``isdigit()`` accepts and ``int()`` refuses (``²``), Arabic-Indic and full-width digits."""
RAW_NUMBERS = st.sampled_from(
    [b"1" + b"0" * 30, b"-" + b"9" * 25, b"1e400", b"18446744073709551615"]
)
"""Numbers as JSON literals no encoder writes (orjson reads some as floats, refuses others)."""

GATEWAY_NUMBERS = (
    "responseCode backendResponseCode backendTime clientTime requestSize responseSize totalTime"
).split()
LLM_NUMBERS = "sequenceNumber promptTokens completionTokens totalTokens cachedTokens".split()
POLICY_NUMBERS = (
    "promptTokens responseTokens totalTokens statusCode responseCode durationMs backendTime "
    "cachedTokens reasoningTokens backendResponseCode"
).split()
USAGE_PATHS = (
    ("prompt_tokens",),
    ("completion_tokens",),
    ("total_tokens",),
    ("prompt_tokens_details", "cached_tokens"),
    ("completion_tokens_details", "reasoning_tokens"),
    ("input_tokens",),
    ("output_tokens",),
)


def usage_body(path: tuple[str, ...], value: Any, shape: str) -> str:
    usage: dict[str, Any] = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    if path[0].startswith(("input", "output")):
        usage = {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}
    target = usage
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    if shape == "sse":  # a stream whose last chunk carries usage
        chunk = {
            "object": "chat.completion.chunk",
            "model": "gpt-4o",
            "choices": [],
            "usage": usage,
        }
        return f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    document = {"model": "gpt-4o", "object": "chat.completion", "usage": usage}
    text = json.dumps(document)
    if shape == "cut":  # usage survives, the body is cut after it (APIM's 8192-byte limit)
        return text[:-1] + ', "choices": [{"message": {"content": "abc'
    return text


@st.composite
def number_parts(draw: st.DrawFn) -> Part:
    """A record with one hostile number in one numeric field of one input family."""
    value = draw(HOSTILE_NUMBERS)
    family = draw(st.sampled_from(["gateway", "duration", "llm", "policy", "body", "sum", "raw"]))
    if family == "gateway":
        record = good_record("poison")
        record["properties"][draw(st.sampled_from(GATEWAY_NUMBERS))] = value
    elif family == "duration":
        record = good_record("poison")
        record["durationMs"] = value
    elif family == "llm":
        record = llm_record(**{draw(st.sampled_from(LLM_NUMBERS)): value})
    elif family == "policy":
        record = policy_record(**{draw(st.sampled_from(POLICY_NUMBERS)): value})
    elif family == "body":
        record = good_record("poison")
        shape = draw(st.sampled_from(["json", "sse", "cut"]))
        body = usage_body(draw(st.sampled_from(USAGE_PATHS)), value, shape)
        record["properties"]["backendResponseBody"] = body
    elif family == "sum":  # every count fits a long, their sum (the total a row gets) does not
        counts = draw(st.lists(st.integers(2**62, 2**63 - 1), min_size=2, max_size=3))
        where = draw(st.sampled_from(["llm", "policy", "body"]))
        if where == "llm":
            names = ["promptTokens", "completionTokens", "cachedTokens"]
            record = llm_record(**dict(zip(names, counts, strict=False)))
        elif where == "policy":
            names = ["promptTokens", "responseTokens", "reasoningTokens"]
            return Part(dumps(policy_record(**dict(zip(names, counts, strict=False)))))
        else:
            usage = {"prompt_tokens": counts[0], "completion_tokens": counts[1]}
            document = {"model": "gpt-4o", "object": "chat.completion", "usage": usage}
            record = good_record("poison")
            record["properties"]["backendResponseBody"] = json.dumps(document)
    else:
        literal = draw(RAW_NUMBERS)
        name = draw(st.sampled_from(["responseCode", "durationMs", "backendTime"]))
        raw = orjson.dumps(good_record("poison"))  # the last of two equal keys wins
        return Part(raw[:-2] + b',"' + name.encode() + b'":' + literal + b"}}")
    return Part(dumps(record))


# ---------------------------------------------------------------------------------------------
# Times


def _odd_digits(text: str, index: int, digit: str) -> str:
    positions = [i for i, c in enumerate(text) if c.isdigit()]
    at = positions[index % len(positions)]
    return text[:at] + digit + text[at + 1 :]


@st.composite
def hostile_times(draw: st.DrawFn) -> Any:
    """Times at the calendar's ends with offsets, with odd digits, trailing junk, odd numbers."""
    year = draw(st.sampled_from([1, 1, 9999, 9999, 1970, 2025]))
    month, day = draw(st.sampled_from([(1, 1), (12, 31), (2, 29), (2, 28), (13, 1), (6, 31)]))
    clock = draw(st.sampled_from(["00:00:00", "23:59:59", "24:00:00", "12:60:00", "05:00:00"]))
    fraction = draw(st.sampled_from(["", ".5", ".4465902", ".123456789", ".0000000"]))
    zone = draw(
        st.sampled_from(["Z", "z", "", "+05:00", "-05:00", "+14:00", "-12:00", "+0530", "+99:99"])
    )
    text = f"{year:04d}-{month:02d}-{day:02d}T{clock}{fraction}{zone}"
    mutation = draw(st.sampled_from(["none", "digit", "junk", "space", "number", "format"]))
    if mutation == "digit":
        digit = draw(st.sampled_from(["²", "٣", "３", "𝟘", "৭", "߁"]))
        text = _odd_digits(text, draw(st.integers(0, 30)), digit)
    elif mutation == "junk":
        text += draw(st.sampled_from(["junk", "٣", "\x00", " Z", "Z+01:00", "0", "..."]))
    elif mutation == "space":
        text = text.replace("T", " ")
    elif mutation == "number":
        return draw(st.sampled_from([1e20, -1e20, 2**64, -(2**63), 1e11, -6e10, 253402300800]))
    elif mutation == "format":
        return draw(
            st.sampled_from(
                ["1/1/0001 12:00:00 AM", "12/31/9999 11:59:59 PM", "2/30/2024 12:00:00 PM"]
            )
        )
    return text


@st.composite
def time_parts(draw: st.DrawFn) -> Part:
    """A record whose time is hostile, in each family's time field."""
    value = draw(hostile_times())
    family = draw(st.sampled_from(["gateway", "export", "llm", "policy"]))
    if family == "gateway":
        record = good_record("poison")
        record["time"] = value
    elif family == "export":  # a Log Analytics export: PascalCase, TimeGenerated
        record = good_record("poison")
        del record["time"]
        record["TimeGenerated"] = value
        record["Type"] = "ApiManagementGatewayLogs"
    elif family == "llm":
        record = llm_record()
        record["time"] = value
    else:
        record = policy_record(timestamp=value)
    return Part(dumps(record))


# ---------------------------------------------------------------------------------------------
# Deep nesting


def nested(depth: int, kind: str) -> bytes:
    """A JSON value ``depth`` levels deep: arrays, or objects of one member."""
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def deep_parts(draw: st.DrawFn) -> Part:
    """A record nested deeper than the parsers (orjson's 1,024, Python's 1,000) go, anywhere."""
    depth = draw(
        st.one_of(
            st.sampled_from([254, 255, 256, 999, 1000, 1023, 1024, 1025]), st.integers(2, 3000)
        )
    )
    value = nested(depth, draw(st.sampled_from(["array", "object"])))
    where = draw(
        st.sampled_from(
            ["record", "field", "url", "category", "body", "llm", "policy", "policy-body"]
        )
    )
    if where == "record":
        return Part(value)
    if where == "body":  # a body string that parses to a deep document
        record = good_record("poison")
        record["properties"]["backendResponseBody"] = value.decode()
        record["properties"]["requestBody"] = value.decode()
        return Part(orjson.dumps(record))
    if where in ("field", "url", "category"):
        raw = orjson.dumps(good_record("poison"))
        name = {"field": b"lastError", "url": b"url", "category": b"category"}[where]
        return Part(raw[:-2] + b',"' + name + b'":' + value + b"}}")
    if where == "llm":
        raw = orjson.dumps(llm_record())
        return Part(raw[:-2] + b',"deploymentName":' + value + b"}}")
    key = b"subscription" if where == "policy" else b"requestBody"
    return Part(orjson.dumps(policy_record())[:-1] + b',"' + key + b'":' + value + b"}")


# ---------------------------------------------------------------------------------------------
# Values no JSON parser takes, inside large envelopes

POISON_VALUES = [b"NaN", b"Infinity", b"-Infinity", b'"\\ud800"', b'"a\\udfffb"', b'"\\ud83d"']
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80"]


@st.composite
def malformed_parts(draw: st.DrawFn) -> Part:
    """A record holding one value no parser takes: ``NaN``, a lone surrogate, invalid UTF-8."""
    record = orjson.dumps(draw(st.sampled_from([good_record("poison"), llm_record()])))
    if draw(st.booleans()):
        value = draw(st.sampled_from(POISON_VALUES))
    else:  # invalid bytes inside a string
        value = b'"note ' + draw(st.sampled_from(BAD_BYTES)) + b' end"'
    where = draw(st.sampled_from(["top", "properties"]))
    if where == "top":
        return Part(b'{"x": ' + value + b"," + record[1:])
    return Part(record[:-2] + b',"x":' + value + b"}}")


@st.composite
def large_envelopes(draw: st.DrawFn) -> Case:
    """An envelope of hundreds of records with a few poison values among them."""
    tag = draw(st.uuids()).hex[:12]
    poison = draw(st.lists(malformed_parts(), min_size=1, max_size=4))
    count = draw(st.integers(50, 400))
    case = envelope(poison, count, tag, draw)
    case.add(orjson.dumps(good_record(f"{tag}-after")), good=[f"{tag}-after"])
    return case


@st.composite
def json_lines_bodies(draw: st.DrawFn) -> Case:
    """One event body of JSON lines (a policy writes one document per line), some lines poison."""
    tag = draw(st.uuids()).hex[:12]
    goods = [f"{tag}-{i}" for i in range(draw(st.integers(1, 6)))]
    lines = [orjson.dumps(good_record(g)) for g in goods]
    for part in draw(st.lists(malformed_parts(), min_size=1, max_size=3)):
        lines.insert(draw(st.integers(0, len(lines))), part.raw)
    case = Case()
    case.add(b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"])), good=goods)
    return case


# ---------------------------------------------------------------------------------------------
# Secrets


ALNUM = string.ascii_letters + string.digits
cores = st.text(alphabet=ALNUM, min_size=24, max_size=40).filter(lambda s: len(set(s)) >= 8)
"""The secret part of a credential: what must never be found in any output."""


@dataclass(frozen=True)
class Secret:
    """A credential as it appears in text or a URL, and its secret part."""

    text: str
    core: str


@st.composite
def secrets(draw: st.DrawFn) -> Secret:
    """A credential in one of the shapes the masking promises to find, anywhere in text."""
    core = draw(cores)
    shape = draw(
        st.sampled_from(
            [
                "jwt",
                "bearer",
                "basic",
                "authorization",
                "sk",
                "azure84",
                "hex32",
                "api_key",
                "x-api-key",
                "client_secret",
                "password",
                "subscription-key",
                "account-key",
                "sas",
                "json-field",
            ]
        )
    )
    if shape == "azure84":
        core = draw(
            st.text(alphabet=ALNUM, min_size=84, max_size=84).filter(lambda s: len(set(s)) >= 8)
        )
        return Secret(core, core)
    if shape in ("hex32", "subscription-key"):
        core = draw(
            st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).filter(
                lambda s: len(set(s)) >= 8
            )
        )
        return Secret(core if shape == "hex32" else f"Ocp-Apim-Subscription-Key: {core}", core)
    text = {
        "jwt": f"eyJhbGciOiJIUzI1NiJ9.eyJ{core}.{core[::-1]}",
        "bearer": f"Bearer {core}",
        "basic": f"basic {core}==",
        "authorization": f"Authorization: Bearer {core}",
        "sk": f"sk-proj-{core}",
        "api_key": f"api_key={core}",
        "x-api-key": f"x-api-key = {core}",
        "client_secret": f"client_secret: {core}",
        "password": f"password={core}",
        "account-key": f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={core}==;",
        "sas": f"https://a.blob.core.windows.net/c/b?sv=2024-01-01&sig={core}%3D&se=2030",
        "json-field": f'{{"apiKey": "{core}", "user": "me"}}',
    }[shape]
    return Secret(text, core)


URL_SHAPES = [
    GOOD_URL + "&x-api-key={s}",
    "https://gw.example/openai?api_key={s}&api-version=1",
    "https://gw.example/token?client_secret={s}",
    "https://gw.example/x?access-token={s}",
    "https://gw.example/x?access_token={s}",
    "https://gw.example/x?id_token={s}",
    "https://gw.example/x?refresh_token={s}",
    "https://gw.example/x?jwt={s}",
    "https://gw.example/x?token={s}",
    "https://gw.example/x?code={s}",
    "https://gw.example/x?key={s}",
    "https://gw.example/x?password={s}",
    "https://blob.example/c/b;sig={s}",
    "https://acct.blob.core.windows.net/c/b?sv=2024-01-01&sig={s}&se=2030-01-01",
    "https://app.example/cb#access_token={s}",
    "https://user:{s}@gw.example/openai",
    "https://gw.example/x?Ocp-Apim-Subscription-Key={s}",
    "https://gw.example/openai/deployments/gpt-4o/embeddings?subscription-key={s}&api-version=1",
    "https://gw.example/x?AccountKey={s}",
    "https://gw.example/x?SharedAccessSignature={s}",
    "https://gw.example/x?authorization=Bearer%20{s}",
    GOOD_URL + ";sig={s}",
    "https://gw.example/v1/{jwt}/chat",
    "https://gw.example/openai/deployments/{jwt}/chat/completions?api-version=2024-10-21",
]
"""Where a credential sits in a URL: query and fragment parameters, user information, the path."""


@st.composite
def url_secrets(draw: st.DrawFn) -> Secret:
    """A URL carrying a credential in one of the shapes above."""
    core = draw(cores)
    jwt = f"eyJhbGciOiJIUzI1NiJ9.eyJ{core}.{core[::-1]}"
    shape = draw(st.sampled_from(URL_SHAPES))
    return Secret(shape.format(s=core, jwt=jwt), core)


def _text_around(secret: Secret, before: int) -> str:
    """Text with the credential, a word of its own, after about ``before`` characters (so that
    the cuts at 80, 1,024 and 8,192 characters fall across it)."""
    return ("lorem ipsum " * (before // 12 + 1))[:before] + " " + secret.text + " and the rest."


@st.composite
def secret_parts(draw: st.DrawFn) -> Part:
    """A record with a credential in a field that reaches a row (or in a dead-lettered record)."""
    secret = draw(secrets())
    # Cuts happen at 80 (a dead letter's detail), 1,024 (error messages) and 8,192 characters.
    before = draw(st.one_of(st.integers(0, 100), st.integers(980, 1030), st.integers(8150, 8200)))
    text = _text_around(secret, before)
    where = draw(
        st.sampled_from(
            [
                "url",
                "backendUrl",
                "userId",
                "lastError",
                "error",
                "prompt",
                "completion",
                "stream",
                "llm",
                "policy-url",
                "policy-text",
                "policy-object",
                "policy-secret-field",
                "dead-number",
                "dead-time",
                "dead-category",
                "dead-anywhere",
            ]
        )
    )
    if where in ("url", "backendUrl", "policy-url"):
        secret = draw(url_secrets())
        if where == "policy-url":
            name = draw(st.sampled_from(["requestUrl", "url", "backendUrl"]))
            return Part(dumps(policy_record(**{name: secret.text})), [secret.core])
        record = good_record("poison")
        record["properties"][where] = secret.text
        return Part(dumps(record), [secret.core])
    record = good_record("poison")
    properties = record["properties"]
    if where == "userId":
        properties["userId"] = secret.text
    elif where == "lastError":
        properties["lastError"] = {"source": "policy", "reason": "x", "message": text}
    elif where == "error":
        properties["responseCode"] = properties["backendResponseCode"] = 401
        properties["backendResponseBody"] = json.dumps({"error": {"code": "401", "message": text}})
    elif where == "prompt":
        properties["requestBody"] = json.dumps({"messages": [{"role": "user", "content": text}]})
    elif where == "completion":
        properties["backendResponseBody"] = GOOD_RESPONSE.replace("Fine.", text)
    elif where == "stream":
        chunk = {"choices": [{"index": 0, "delta": {"content": text}}], "model": "gpt-4o"}
        properties["backendResponseBody"] = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    elif where == "llm":
        messages = [{"role": "user", "content": text}]
        record = llm_record(requestMessages=messages, responseMessages=messages)
    elif where == "policy-text":
        name = draw(st.sampled_from(["prompt", "completion", "requestBody", "responseBody"]))
        record = policy_record(**{name: text})
    elif where == "policy-object":  # an object copied whole into a text column
        record = policy_record(subscription={"name": "team-a", "key": secret.core})
    elif where == "policy-secret-field":  # fields the mapping never reads
        name = draw(st.sampled_from(["apiKey", "AppSubscriptionKey", "JWTToken", "password"]))
        record = policy_record(**{name: secret.core})
    elif where == "dead-number":  # the value itself is reported in the dead letter's detail
        properties["responseCode"] = text[before + 1 :]
    elif where == "dead-time":
        record["time"] = text[before + 1 :]
    elif where == "dead-category":
        record["category"] = text[before + 1 :]
    else:  # a record dead-lettered for another reason, the credential in any string field
        record["time"] = "not a time"
        name = draw(st.sampled_from(["correlationId", "note", "resourceId", "operationId"]))
        properties[name] = text
    return Part(dumps(record), [secret.core])


@st.composite
def secret_events(draw: st.DrawFn) -> Case:
    """Whole events that are dead letters with a credential inside: kept bytes must not hold it."""
    secret = draw(secrets())
    text = _text_around(secret, draw(st.integers(0, 200))).encode()
    kind = draw(st.sampled_from(["not-utf8", "not-json", "gzip-not-json", "cut-gzip", "bomb"]))
    case = Case()
    if kind == "not-utf8":
        body = b"\xff\xfe" + text + b"\xc3\x28"
    elif kind == "not-json":
        body = text
    elif kind == "gzip-not-json":
        body = gzip.compress(text)
    elif kind == "cut-gzip":
        body = gzip.compress(b'{"records": [{"note": "' + text + b'"}]}')
        body = body[: draw(st.integers(12, len(body) - 1))]
    else:
        body = bomb(MAX_RECORDS_PER_EVENT + 1, b'{"note": ' + dumps(text.decode()) + b"}")
    case.add(body, secrets=[secret.core])
    return case


# ---------------------------------------------------------------------------------------------
# Bombs


def bomb(count: int, first: bytes = b"{}") -> bytes:
    """A small gzip body of ``count`` tiny records (``first`` leads them)."""
    records = b",".join([first] + [b"{}"] * (count - 1))
    return gzip.compress(b'{"records": [' + records + b"]}", compresslevel=9)


@cache
def gzip_bomb() -> bytes:
    """A gzip body inflating past the 64 MB limit (about 65 KB; built once)."""
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\x00" * (1 << 20)
    return b"".join([*(inflater.compress(chunk) for _ in range(65)), inflater.flush()])


@st.composite
def bomb_batches(draw: st.DrawFn) -> Case:
    """Record bombs (more records than an event may hold) and a gzip bomb beside good events."""
    tag = draw(st.uuids()).hex[:12]
    case = Case()
    case.add(orjson.dumps({"records": [good_record(f"{tag}-before")]}), good=[f"{tag}-before"])
    kind = draw(st.sampled_from(["records", "array", "lines", "plain", "gzip"]))
    count = draw(st.integers(MAX_RECORDS_PER_EVENT + 1, 2 * MAX_RECORDS_PER_EVENT))
    if kind == "records":
        case.add(bomb(count))
    elif kind == "array":
        case.add(gzip.compress(b"[" + b",".join([b"{}"] * count) + b"]"))
    elif kind == "lines":
        case.add(gzip.compress(b"\n".join([b"{}"] * count)))
    elif kind == "plain":
        case.add(b'{"records": [' + b",".join([b"{}"] * count) + b"]}")
    else:
        case.add(gzip_bomb())
    case.add(orjson.dumps({"records": [good_record(f"{tag}-after")]}), good=[f"{tag}-after"])
    return case


# ---------------------------------------------------------------------------------------------
# What a sink delivered, and the checks


@dataclass
class Delivered:
    """What a sink holds after a batch: landing rows and dead letters, as it stores them."""

    landing: list[Mapping[str, Any]]
    dead_letters: list[Mapping[str, Any]]
    landed: int | None = None
    """Landing rows taken, when ``landing`` is not all of them: a store keeps no landing table
    (retention 0) and shows its rows through the tables its update policies fill."""
    texts: list[str] = field(default_factory=list)
    """Every other stored text to search for secrets (e.g. the curated tables of a store)."""


def payload_text(letter: Mapping[str, Any]) -> str:
    """A dead letter's kept payload as text: base64 decoded, gzip inflated (as far as it goes)."""
    payload = str(letter.get("RawPayload") or "")
    if letter.get("RawEncoding") != "base64":
        return payload
    data = base64.b64decode(payload)
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(zlib.error):  # as far as it goes
            data = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(data, 1 << 22)
    return data.decode("utf-8", errors="replace")


def leaked(secrets: Iterable[str], texts: Iterable[str]) -> list[str]:
    """The secrets of which a 12-character piece appears in any text."""
    pieces = {
        secret: [secret[i : i + CHUNK] for i in range(0, len(secret) - CHUNK + 1, CHUNK)]
        for secret in secrets
    }
    found = []
    for text in texts:
        found += [s for s, chunks in pieces.items() if any(c in text for c in chunks)]
    return sorted(set(found))


def strings_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every text value of some rows (a dead letter's payload decoded)."""
    texts: list[str] = []
    for row in rows:
        texts += [v for v in row.values() if isinstance(v, str)]
        if "RawPayload" in row:
            texts.append(payload_text(row))
    return texts


def check(case: Case, result: BatchResult, delivered: Delivered) -> None:
    """What must hold for every hostile batch, whatever the sink."""
    counts = result.counts()
    assert counts.events == len(case.events)
    assert counts.reconciles, counts
    internal = [d["Detail"] for d in result.dead_letters if d["Reason"] == "internal_error"]
    assert not internal, internal  # every hostile value has a reason of its own
    fits = row_checker(LANDING_TABLE)
    refused = [r for r in result.rows if not fits(r)]
    assert not refused, refused[:1]  # the core wrote no value its column cannot hold
    landed_rows = len(delivered.landing) if delivered.landed is None else delivered.landed
    assert landed_rows == len(result.rows)  # nothing refused at the sink, nothing lost
    assert len(delivered.dead_letters) == len(result.dead_letters)
    landed = [r["CorrelationId"] for r in delivered.landing if r["CorrelationId"] in case.good]
    assert sorted(landed) == sorted(case.good)  # every good neighbour, once
    texts = strings_of(delivered.landing) + strings_of(delivered.dead_letters) + delivered.texts
    assert not leaked(case.secrets, texts)


# ---------------------------------------------------------------------------------------------
# The sinks of the unit run


modes = st.sampled_from(list(CaptureMode))
"""Every capture mode: what is masked must not depend on it."""


@cache
def pipeline(mode: CaptureMode) -> Pipeline:
    return Pipeline(golden_settings(capture_text=mode))


class RecordingClient:
    """An azure-kusto-ingest client that keeps each payload it is handed, by table."""

    def __init__(self) -> None:
        self.payloads: list[tuple[str, bytes]] = []

    def ingest_from_stream(self, stream: Any, properties: Any) -> None:
        self.payloads.append((properties.table, stream.stream.read()))

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [
            orjson.loads(line)
            for name, data in self.payloads
            if name == table
            for line in gzip.decompress(data).splitlines()
        ]


def through_every_sink(case: Case, mode: CaptureMode) -> None:
    """Run the case into the memory sink and the ADX sink's encoding, and check both."""
    memory = MemorySink()
    result = run_batch(pipeline(mode), memory, case.events, final_attempt=True, keep_rows=True)
    tables = memory.tables
    for row in tables.get(LANDING_TABLE, []) + tables.get(DEAD_LETTER_TABLE, []):
        orjson.dumps(row)  # encodable as every sink encodes rows
    check(case, result, Delivered(tables.get(LANDING_TABLE, []), tables.get(DEAD_LETTER_TABLE, [])))
    assert all(row_checker(DEAD_LETTER_TABLE)(d) for d in tables.get(DEAD_LETTER_TABLE, []))

    client = RecordingClient()
    adx = AdxSink(client, "apimlogs", DeadLetterStore(None), retries=0, track_status=False)
    result = run_batch(pipeline(mode), adx, case.events, final_attempt=True, keep_rows=True)
    assert adx.kept == []  # nothing refused, nothing left for redrive
    check(case, result, Delivered(client.rows(LANDING_TABLE), client.rows(DEAD_LETTER_TABLE)))
