"""log-to-eventhub payloads: a user-defined JSON shape, read through a declarative mapping file.

The mapping (``schemas/log_to_eventhub.toml`` by default) lists, for each landing column, the field
paths that may hold it. Loading checks it against the landing schema and refuses any path that names
a secret-looking field, so a mapping can never copy a subscription key or an authorization header.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.core.bodies import Usage, analyze_request, analyze_response
from ingest.core.coerce import (
    INT_MAX,
    INT_MIN,
    MISSING_TOKENS,
    to_bool,
    to_datetime,
    to_int,
    to_str,
)
from ingest.core.flatten.fields import POLICY
from ingest.core.flatten.finish import (
    Finisher,
    apply_url,
    input_excluding_cache,
    is_anthropic,
    normalize_kind,
)
from ingest.core.privacy import SECRET_KEY_NAMES, scrub_url
from ingest.errors import ConfigError
from ingest.model import (
    LandingRow,
    Rejected,
    RejectReason,
    SourceFormat,
    UsageSource,
)
from ingest.schema import LANDING_TABLE, load_table

Path_ = tuple[str, ...]

NOT_MAPPABLE = frozenset(
    {
        "Category",
        "SourceFormat",
        "RecordId",
        "UsageSource",
        "EventPartitionId",
        "EventSequenceNumber",
        "EventOffset",
        "EventEnqueuedTime",
        "RecordIndex",
    }
)
"""Columns the pipeline itself sets; a mapping may not name them."""

_TOKEN_COLUMNS = (
    "PromptTokens",
    "CompletionTokens",
    "TotalTokens",
    "CachedTokens",
    "ReasoningTokens",
    "CacheWriteTokens",
)


def _paths(value: Any, where: str, source: Path) -> tuple[Path_, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"`{where}` in `{source}` must be a list of field paths")
    paths = []
    for text in value:
        parts = tuple(p.lower() for p in text.split("."))
        secret = [p for p in parts if SECRET_KEY_NAMES.search(p)]
        if secret:
            raise ConfigError(
                f"`{where}` in `{source}` reads `{text}`, which looks like a secret; "
                "credentials are never copied into rows"
            )
        paths.append(parts)
    return tuple(paths)


def _public(value: Any) -> Any:
    """An object or array without its secret-named members (``{"name": ..., "key": ...}``)."""
    if isinstance(value, dict):
        return {
            k: _public(v)
            for k, v in value.items()
            if not (isinstance(k, str) and SECRET_KEY_NAMES.search(k))
        }
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def _lookup(fields: dict[str, Any], paths: tuple[Path_, ...]) -> Any:
    """The first candidate path holding a value (case-insensitive keys)."""
    for path in paths:
        value: Any = fields.get(path[0])
        for key in path[1:]:
            if not isinstance(value, dict):
                value = None
                break
            found = value.get(key)
            if found is None:
                found = next(
                    (v for k, v in value.items() if isinstance(k, str) and k.lower() == key), None
                )
            value = found
        if value is None:
            continue
        if isinstance(value, str) and value.strip().lower() in MISSING_TOKENS:
            continue
        return value
    return None


@dataclass(frozen=True, slots=True)
class PolicyMapping:
    """Candidate field paths per landing column, body fields and timestamp formats."""

    columns: dict[str, tuple[Path_, ...]]
    request_body: tuple[Path_, ...]
    response_body: tuple[Path_, ...]
    timestamp_formats: tuple[str, ...]
    types: dict[str, str]

    @classmethod
    def load(cls, source: Path) -> PolicyMapping:
        """Read and check a mapping file; raise ConfigError naming the problem."""
        try:
            doc = tomllib.loads(source.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the log-to-eventhub mapping `{source}`: {exc}") from exc
        schema = {c.name: c.type for c in load_table(LANDING_TABLE).columns}
        raw_columns = doc.get("columns", {})
        if not isinstance(raw_columns, dict):
            raise ConfigError(f"`columns` in `{source}` must be a table")
        columns: dict[str, tuple[Path_, ...]] = {}
        for name, value in raw_columns.items():
            if name not in schema:
                raise ConfigError(f"`{name}` in `{source}` is not a column of {LANDING_TABLE}")
            if name in NOT_MAPPABLE:
                raise ConfigError(
                    f"`{name}` in `{source}` is set by the pipeline and cannot be mapped"
                )
            columns[name] = _paths(value, f"columns.{name}", source)
        formats = doc.get("timestamp_formats", [])
        if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
            raise ConfigError(
                f"`timestamp_formats` in `{source}` must be a list of strptime formats"
            )
        return cls(
            columns=columns,
            request_body=_paths(doc.get("request_body", []), "request_body", source),
            response_body=_paths(doc.get("response_body", []), "response_body", source),
            timestamp_formats=tuple(formats),
            types={name: schema[name] for name in columns},
        )

    def flatten(
        self, fields: dict[str, Any], finisher: Finisher, fallback_time: str | None
    ) -> LandingRow | Rejected:
        """Map one payload (keys already lower-cased) to a landing row."""
        row = finisher.blank.copy()
        values: dict[str, Any] = {}
        for name, paths in self.columns.items():
            value = _lookup(fields, paths)
            if value is None:
                continue
            kind = self.types[name]
            if kind == "string":
                values[name] = to_str(_public(value) if isinstance(value, (dict, list)) else value)
            elif kind == "int":
                values[name] = to_int(value, name, INT_MIN, INT_MAX)
            elif kind == "long":
                values[name] = to_int(value, name)
            elif kind == "bool":
                values[name] = to_bool(value, name)
            elif kind == "datetime":
                values[name] = to_datetime(value, name, self.timestamp_formats)
        request_body = _lookup(fields, self.request_body)
        response_body = _lookup(fields, self.response_body)
        if (
            not [n for n in values if n != "Timestamp"]
            and request_body is None
            and response_body is None
        ):
            keys = ", ".join(sorted(str(k) for k in fields)[:20])
            return Rejected(
                RejectReason.UNKNOWN_SHAPE,
                f"no known field in payload with keys: {keys}",
                POLICY_FMT,
            )

        timestamp = values.pop("Timestamp", None) or fallback_time
        if timestamp is None:
            return Rejected(
                RejectReason.BAD_TIMESTAMP,
                "payload has no time field and no enqueued time (a file replayed locally: "
                "give one with --fallback-time)",
                POLICY_FMT,
            )
        text_prompt = to_str(values.pop("PromptText", None))
        text_completion = to_str(values.pop("CompletionText", None))
        tokens = {name: values.pop(name, None) for name in _TOKEN_COLUMNS}
        kind_hint = to_str(values.pop("OperationKind", None))
        row.update(values)  # type: ignore[typeddict-item]
        row["Timestamp"] = timestamp
        row["Category"] = POLICY
        row["SourceFormat"] = POLICY_FMT
        row["Url"] = scrub_url(row["Url"])
        row["BackendUrl"] = scrub_url(row["BackendUrl"])
        if row["ResponseCode"] == 429:
            row["ThrottledBy"] = "backend" if row["BackendResponseCode"] == 429 else "apim"

        request = analyze_request(request_body)
        response = analyze_response(response_body)
        row["OperationKind"] = normalize_kind(kind_hint or row["OperationId"])
        deployment = row["DeploymentName"]
        apply_url(row, row["Url"] or row["BackendUrl"], request)
        if deployment:
            row["DeploymentName"] = deployment
        if not row["OperationKind"]:
            row["OperationKind"] = "other"

        exact = None
        if any(
            tokens[name] is not None for name in ("PromptTokens", "CompletionTokens", "TotalTokens")
        ):
            exact = Usage(
                prompt=tokens["PromptTokens"],
                completion=tokens["CompletionTokens"],
                total=tokens["TotalTokens"],
                cached=tokens["CachedTokens"],
                reasoning=tokens["ReasoningTokens"],
                cache_write=tokens["CacheWriteTokens"],
            )
            if (exact.cached or exact.cache_write) and is_anthropic(
                row["ModelName"], row["DeploymentName"], row["Url"], response.model
            ):
                # Claude's input count excludes cache reads and writes, as APIM logs it too.
                exact = input_excluding_cache(exact)
        finisher.finish_call(row, request, response, exact, UsageSource.POLICY)
        if text_prompt and not row["PromptText"]:
            row["PromptText"] = finisher.capture(text_prompt)
        if text_completion and not row["CompletionText"]:
            row["CompletionText"] = finisher.capture(text_completion)
        return row


POLICY_FMT = SourceFormat.POLICY.value
