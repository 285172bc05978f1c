"""Event Hubs Capture files with generated faults, read and driven through the batch path.

A Capture file (deflate or no codec, bytes or plain-string schema) holds good envelopes and
hostile bodies; then it is cut at any byte, has bytes flipped, holds a string ``Body`` that is not
UTF-8, or odd ``EnqueuedTimeUtc`` and ``SequenceNumber`` values. Reading it yields the events
before the fault and then, at worst, one ``SourceError``, never another exception; the events
read go through ``run_batch`` into the memory sink and the ADX sink's encoding, and must meet
``tests.hostile.check`` (every good envelope read intact lands its record).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import orjson
from hypothesis import given
from hypothesis import strategies as st

from ingest.config import CaptureMode
from ingest.sources import SourceError, iter_events
from tests.capture import CAPTURE_SCHEMA
from tests.hostile import (
    Case,
    examples,
    good_record,
    hostile_times,
    policy_record,
    through_every_sink,
)

ENQUEUED = st.one_of(
    st.sampled_from(
        [
            "9/30/2024 12:31:00 PM",
            "1/1/0001 12:00:00 AM",
            "12/31/9999 11:59:59 PM",
            "13/45/2024 99:00:00 PM",
            "",
            "not a time",
            "９/30/2024 12:31:00 PM",
        ]
    ),
    hostile_times().map(str),
)
SEQUENCES = st.sampled_from(["12", "-1", "99999999999999999999999", "x", "²", "", "9.5"])


def _schema(plain: bool) -> dict[str, Any]:
    """Capture's schema, or one with plain strings where Capture writes bytes and longs."""
    schema: dict[str, Any] = json.loads(json.dumps(CAPTURE_SCHEMA))
    if plain:
        for field in schema["fields"]:
            if field["name"] == "Body":
                field["type"] = ["null", "string"]
            if field["name"] == "SequenceNumber":
                field["type"] = "string"
    return schema


@st.composite
def capture_files(draw: st.DrawFn) -> tuple[bytes, dict[bytes, str]]:
    """A Capture file with a fault, and the good bodies in it (body -> correlation id)."""
    plain = draw(st.booleans())
    tag = draw(st.uuids()).hex[:12]
    good: dict[bytes, str] = {}
    bodies: list[bytes] = []
    for index in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["good", "good", "policy", "nan", "junk", "empty"]))
        if kind == "good":
            body = orjson.dumps({"records": [good_record(f"{tag}-{index}")]})
            good[body] = f"{tag}-{index}"
        elif kind == "policy":  # no time of its own: it takes the enqueued time
            fields = policy_record()
            del fields["timestamp"]
            body = orjson.dumps(fields)
        elif kind == "nan":
            body = b'{"records": [{"time": "2024-09-30T12:00:00Z", "x": NaN}]}'
        elif kind == "junk":
            body = b"MARKER not json"
        else:
            body = b""
        bodies.append(body)
    records = [
        {
            "SequenceNumber": draw(SEQUENCES) if plain else 5000 + i,
            "Offset": str(4096 * i),
            "EnqueuedTimeUtc": draw(ENQUEUED),
            "SystemProperties": {},
            "Properties": {},
            "Body": body.decode() if plain else body,
        }
        for i, body in enumerate(bodies)
    ]
    out = __import__("io").BytesIO()
    codec = draw(st.sampled_from(["null", "deflate"]))
    fastavro.writer(out, fastavro.parse_schema(_schema(plain)), records, codec=codec)
    data = out.getvalue()
    fault = draw(st.sampled_from(["none", "cut", "flip", "not-utf8"]))
    if fault == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif fault == "flip":
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif fault == "not-utf8" and plain and codec == "null":
        data = data.replace(b"MARKER", b"\xff\xfe\xfd\xfc\xfb\xfa")
    return data, good


@examples(60)
@given(capture_files(), st.sampled_from(list(CaptureMode)))
def test_a_capture_file_with_a_fault_is_read_up_to_it_and_its_events_land(
    tmp_path_factory: Any, file: tuple[bytes, dict[bytes, str]], mode: CaptureMode
) -> None:
    data, good = file
    path = Path(tmp_path_factory.mktemp("capture")) / "7" / "2024" / "09" / "30" / "12" / "30"
    path.mkdir(parents=True)
    path = path / "00.avro"
    path.write_bytes(data)
    case = Case()
    reported = ""
    try:
        for event in iter_events(str(path)):
            case.events.append(event)
    except SourceError as exc:  # reported by replay and flatten, which go on with other inputs
        reported = str(exc)
    assert not reported or str(path) in reported
    case.good = [good[e.body] for e in case.events if e.body in good]
    through_every_sink(case, mode)
