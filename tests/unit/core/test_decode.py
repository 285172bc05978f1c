"""Event bodies as they arrive: gzip, BOM, envelopes, bare records, JSON lines, garbage."""

from __future__ import annotations

import gc
import gzip
import json

import pytest

from ingest.core.decode import MAX_DECOMPRESSED_BYTES, decode_body, split_records
from ingest.core.pipeline import Pipeline
from ingest.model import EventInput, EventMeta, Rejected
from tests.conftest import load_fixture

META = EventMeta(
    partition_id="3",
    sequence_number=1042,
    offset="88064",
    enqueued_time="2024-09-30T12:31:35.0000000Z",
)


def _rows_without_lineage(pipeline: Pipeline, body: bytes) -> list[dict[str, object]]:
    result = pipeline.process([EventInput(body)])
    assert not result.dead_letters
    return [dict(r) for r in result.rows]


def test_gzip_body_flattens_like_the_plain_one(pipeline: Pipeline) -> None:
    plain = load_fixture("throttled_429")
    assert _rows_without_lineage(pipeline, gzip.compress(plain)) == _rows_without_lineage(
        pipeline, plain
    )


def test_concatenated_gzip_members_are_one_body(pipeline: Pipeline) -> None:
    text = b'[{"time": "2024-09-30T12:00:00Z", "category": "GatewayLogs", "correlationId": "a"},'
    rest = b'{"time": "2024-09-30T12:00:01Z", "category": "GatewayLogs", "correlationId": "b"}]'
    result = pipeline.process([EventInput(gzip.compress(text) + gzip.compress(rest))])
    assert [r["CorrelationId"] for r in result.rows] == ["a", "b"]


def test_bom_is_stripped(pipeline: Pipeline) -> None:
    plain = load_fixture("chat_nonstream")
    assert _rows_without_lineage(pipeline, b"\xef\xbb\xbf" + plain) == _rows_without_lineage(
        pipeline, plain
    )


def test_gzip_with_bom_inside(pipeline: Pipeline) -> None:
    plain = load_fixture("responses_api")
    body = gzip.compress(b"\xef\xbb\xbf" + plain)
    assert _rows_without_lineage(pipeline, body) == _rows_without_lineage(pipeline, plain)


def test_garbage_bytes_become_one_base64_dead_letter(pipeline: Pipeline) -> None:
    garbage = bytes(range(256)) * 4
    result = pipeline.process([EventInput(garbage, META)])
    assert result.counts().as_dict() == {
        "events": 1,
        "records": 1,
        "rows": 0,
        "dead_letters": 1,
        "bytes": 1024,
    }
    dead = result.dead_letters[0]
    assert dead["Reason"] == "not_json"
    assert dead["RawEncoding"] == "base64"
    assert dead["RawSize"] == 1024
    assert dead["RecordIndex"] == -1
    assert (dead["EventPartitionId"], dead["EventSequenceNumber"]) == ("3", 1042)
    assert dead["Timestamp"] == META.enqueued_time
    import base64

    assert base64.b64decode(dead["RawPayload"]) == garbage


def test_text_that_is_not_json_keeps_its_text(pipeline: Pipeline) -> None:
    result = pipeline.process([EventInput(b"<html>502 Bad Gateway</html>")])
    dead = result.dead_letters[0]
    assert (dead["Reason"], dead["RawEncoding"], dead["RawPayload"]) == (
        "not_json",
        "utf8",
        "<html>502 Bad Gateway</html>",
    )
    assert "not JSON" in dead["Detail"]


def test_corrupt_gzip_is_a_dead_letter(pipeline: Pipeline) -> None:
    body = gzip.compress(load_fixture("chat_nonstream"))
    result = pipeline.process([EventInput(body[:40])])
    assert [d["Reason"] for d in result.dead_letters] == ["bad_gzip"]
    result = pipeline.process([EventInput(b"\x1f\x8b" + b"\x00" * 30)])
    assert [d["Reason"] for d in result.dead_letters] == ["bad_gzip"]


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b" " * (MAX_DECOMPRESSED_BYTES + 10))
    outcome = decode_body(bomb)
    assert getattr(outcome, "reason", None) == "too_large"


def test_empty_body(pipeline: Pipeline) -> None:
    result = pipeline.process([EventInput(b""), EventInput(b"  \n")])
    assert [d["Reason"] for d in result.dead_letters] == ["empty_body", "empty_body"]
    assert result.counts().reconciles


def test_json_scalar_body_is_not_a_record(pipeline: Pipeline) -> None:
    result = pipeline.process([EventInput(b"42")])
    assert [d["Reason"] for d in result.dead_letters] == ["not_a_record"]


def test_json_lines_in_one_event(pipeline: Pipeline) -> None:
    lines = load_fixture("policy_aihub").replace(b"\n", b"")
    result = pipeline.process([EventInput(lines + b"\n" + lines)])
    assert len(result.rows) == 2
    assert result.rows[0]["RecordId"] != result.rows[1]["RecordId"]


def test_envelope_bare_array_and_bare_record_agree() -> None:
    records = json.loads(load_fixture("throttled_429"))["records"]
    assert split_records({"records": records}) == records
    assert split_records(records) == records
    assert split_records(records[0]) == [records[0]]
    assert split_records({"records": []}) == []


NAN_RECORD = b'{"time": "2024-09-30T12:00:00Z", "category": "GatewayLogs", "durationMs": NaN}'


def test_json_lines_with_a_bad_line_keep_every_line(pipeline: Pipeline) -> None:
    line = load_fixture("policy_aihub").replace(b"\n", b"")
    result = pipeline.process([EventInput(line + b"\n" + NAN_RECORD + b"\n" + line)])
    assert result.counts().reconciles
    assert [r["RecordIndex"] for r in result.rows] == [0, 2]
    assert [(d["Reason"], d["RecordIndex"]) for d in result.dead_letters] == [("not_json", 1)]


def test_an_envelope_followed_by_more_lines_is_not_salvaged_alone(pipeline: Pipeline) -> None:
    # Salvaging the first envelope of several lines dropped the other lines' records unseen.
    good = json.dumps(json.loads(load_fixture("throttled_429"))["records"][0]).encode()
    first = b'{"records": [' + good + b"," + NAN_RECORD + b"]}"
    second = b'{"records": [' + good + b"," + good + b"]}"
    for body in (first + b"\n" + second, second + b"\n" + first):
        result = pipeline.process([EventInput(body)])
        assert result.records == 2  # one per line: nothing is dropped unaccounted
        assert result.counts().reconciles
        assert sorted(d["Reason"] for d in result.dead_letters) == ["not_json", "unknown_shape"]
    result = pipeline.process([EventInput(first + b" trailing")])
    assert [(d["Reason"], d["RecordIndex"]) for d in result.dead_letters] == [("not_json", -1)]


def test_a_large_body_of_too_many_records_is_refused_before_it_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Parsing costs up to 30 times a body's size: a bomb's records are counted instead.
    monkeypatch.setattr("ingest.core.decode.COUNT_ABOVE", 3000)
    count = 1001  # `{},` a record: past the size at which records are counted
    bodies = {
        "envelope": b'{"records": [' + b",".join([b"{}"] * count) + b"]}",
        "array": b"[" + b",".join([b"{}"] * count) + b"]",
        "lines": b"\n".join([b"{}"] * count),
    }
    for shape, body in bodies.items():
        outcome = decode_body(gzip.compress(body), max_records=count - 1)
        assert getattr(outcome, "reason", None) == "too_large", shape
        assert "counted before parsing" in getattr(outcome, "detail", ""), shape
        decoded = decode_body(gzip.compress(body), max_records=count)  # at the limit: parsed
        assert not hasattr(decoded, "reason"), shape
    one_large_record = b'{"note": "' + b"x" * 3000 + b'"}'
    assert not hasattr(decode_body(one_large_record, max_records=1), "reason")


def test_a_salvaged_envelope_leaves_no_cycle_to_collect() -> None:
    """The records salvaged from a bad envelope are freed when dropped, not at the next collection.

    Keeping the parse error itself (with its traceback, which holds the decoding frame and so the
    body and every record) would make a cycle that only the garbage collector breaks: megabytes
    per bad event held until it runs.
    """
    body = b'{"records": [{"a": 1}, {"b": NaN}, {"c": 3}]}'
    gc.collect()
    gc.disable()
    try:
        decoded = decode_body(body)
        assert not isinstance(decoded, Rejected)
        assert split_records(decoded[0])[0] == {"a": 1}
        del decoded
        assert gc.collect() == 0
    finally:
        gc.enable()
