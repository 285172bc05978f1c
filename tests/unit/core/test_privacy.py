"""Text capture modes, redaction, and credentials that never reach a row."""

from __future__ import annotations

import orjson
import pytest

from ingest.config import CaptureMode
from ingest.core.privacy import capture, mask_secrets, redact, scrub_url
from tests.conftest import golden_settings, load_fixture, run_case

FAKE_KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"Ocp-Apim-Subscription-Key: {FAKE_KEY}", "Ocp-Apim-Subscription-Key: ***"),
        ("Authorization: Bearer abcdefghijklmnop.qrstuv", "Authorization: ***"),
        ("use bearer abcdefghijklmnopqrstuv please", "use bearer *** please"),
        (f"my key is {FAKE_KEY}.", "my key is ***."),
        ("token eyJhbGciOiJub25lIn0.eyJzdWIiOiJub2JvZHkifQ.ZmFrZQ here", "token *** here"),
        ('{"apikey": "abc", "x": 1}', '{"apikey": "***", "x": 1}'),
        ("AccountKey=c2VjcmV0;EndpointSuffix=core", "AccountKey=***;EndpointSuffix=core"),
    ],
)
def test_secrets_are_masked_in_every_mode(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked
    for mode in (CaptureMode.FULL, CaptureMode.REDACTED):
        assert FAKE_KEY not in capture(text, mode, 10_000)


def test_redaction_masks_personal_data_and_token_formats() -> None:
    text = (
        "Mail a.b@contoso.com, call (425) 555-0100 or +44 20 7946 0958; "
        "key sk-abcdefghijklmnopqrstuvwx."
    )
    assert redact(text) == "Mail [EMAIL], call [PHONE] or [PHONE]; key [SECRET]."


@pytest.mark.parametrize(
    "text",
    ["design: a new key: value map", "the basic idea", "api keys are secret", "x=1, y=2"],
)
def test_ordinary_text_is_not_masked(text: str) -> None:
    assert mask_secrets(text) == text


def test_signature_parameters_and_headers_are_masked() -> None:
    assert mask_secrets("url?sv=2024&sig=abc%2Fdef&se=1") == "url?sv=2024&sig=***&se=1"
    assert mask_secrets("x-api-key = abc123, next") == "x-api-key = ***, next"


def test_redaction_leaves_ordinary_numbers_alone() -> None:
    text = "Invoice 4711 of 2024-09-30 totals 1234.50 for 3 seats."
    assert redact(text) == text


def test_capture_modes_and_limit() -> None:
    assert capture("hello a.b@contoso.com", CaptureMode.NONE, 100) == ""
    assert capture("hello a.b@contoso.com", CaptureMode.FULL, 100) == "hello a.b@contoso.com"
    assert capture("hello a.b@contoso.com", CaptureMode.REDACTED, 100) == "hello [EMAIL]"
    assert capture("x" * 50, CaptureMode.FULL, 10) == "x" * 10


def test_url_secret_parameters_are_masked() -> None:
    url = f"https://gw/openai/x?api-version=1&subscription-key={FAKE_KEY}&sig=abc#frag"
    assert scrub_url(url) == "https://gw/openai/x?api-version=1&subscription-key=***&sig=***#frag"
    assert scrub_url("https://gw/openai/x") == "https://gw/openai/x"


@pytest.mark.parametrize("mode", list(CaptureMode))
def test_no_credential_from_a_policy_payload_reaches_any_output(mode: CaptureMode) -> None:
    secrets = [b"00000000000000000000000000000000", b"ffffffffffffffffffffffffffffffff", b"ZmFrZQ"]
    assert all(s in load_fixture("policy_enterprise") for s in secrets)
    result = run_case("policy_enterprise", golden_settings(capture_text=mode))
    assert len(result.rows) == 1
    assert len(result.dead_letters) == 1
    out = orjson.dumps([result.rows, result.dead_letters])
    for secret in secrets:
        assert secret not in out
    raw = orjson.loads(result.dead_letters[0]["RawPayload"])
    assert raw["apikey"] == raw["AppSubscriptionKey"] == raw["JWTToken"] == "***"
    assert raw["PromptTokens"] == "thirty-three"  # the rest of the payload is intact


def test_text_is_empty_by_default() -> None:
    result = run_case("chat_nonstream", golden_settings(capture_text=CaptureMode.NONE))
    assert result.rows[0]["PromptText"] == result.rows[0]["CompletionText"] == ""
    assert result.rows[0]["PromptTokens"] == 33
