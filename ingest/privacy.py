"""Masking of secrets and personal data before anything reaches a row.

Two layers:
* ``mask_secrets`` always runs, whatever the capture mode: subscription keys, API keys,
authorization
  headers, bearer tokens, JWTs, SAS signatures and storage keys never reach a row or a dead letter.
* ``redact`` adds e-mail addresses, phone numbers and well-known secret token formats, for the
  ``redacted`` capture mode.
"""

from __future__ import annotations

import re
from enum import StrEnum


class CaptureMode(StrEnum):
    """How much prompt and completion text is stored."""

    NONE = "none"
    REDACTED = "redacted"
    FULL = "full"


MASK = "***"
"""What a masked secret value becomes."""

SECRET_KEY_NAMES = re.compile(
    r"(?:api[-_]?key|subscription[-_]?key|authorization|jwt|bearer|password|passwd|secret|"
    r"accountkey|sharedaccesskey|access[-_]?token|client[-_]?secret|^sig$|^code$|^key$)",
    re.IGNORECASE,
)
"""Field, header and query-parameter names whose values are secrets (never read, always masked)."""

_SECRET_TEXT = re.compile(
    # header-style "Name: value" / "name=value" pairs
    r"(?P<kv>(?i:ocp-apim-subscription-key|subscription-key|api-key|x-api-key|authorization|"
    r"accountkey|sharedaccesskey|sharedaccesssignature|sig)\s*[:=]\s*)(?P<kvval>(?i:bearer\s+|basic\s+)?\"?[^\s\",;&]+)"
    # bearer / basic credentials
    r"|(?P<bearer>(?i:bearer|basic)\s+)[A-Za-z0-9\-._~+/]{8,}=*"
    # JSON Web Tokens
    r"|(?P<jwt>eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
    # APIM subscription keys and classic Azure OpenAI keys: 32 hex digits standing alone
    r"|(?P<hex>(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z]))"
)

_JSON_SECRET_FIELD = re.compile(
    r"(?P<name>\"[\w-]*(?i:api[-_]?key|subscription[-_]?key|authorization|jwt[-_]?token|jwt|"
    r"password|secret|accountkey|sharedaccesskey|access[-_]?token)[\w-]*\"\s*:\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\")"
)

_URL_SECRET_PARAM = re.compile(
    r"(?P<name>[?&](?i:subscription-key|api-key|apikey|sig|code|key|access_token|token)=)[^&#]*"
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}"
    r"|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?![\w])"
)
_TOKEN_FORMATS = re.compile(
    r"\b(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
)


def _mask_secret_match(m: re.Match[str]) -> str:
    if m.group("kv") is not None:
        return m.group("kv") + MASK
    if m.group("bearer") is not None:
        return m.group("bearer") + MASK
    return MASK


def mask_secrets(text: str) -> str:
    """Mask credentials in free text (always applied, in every capture mode)."""
    if not text:
        return text
    text = _JSON_SECRET_FIELD.sub(lambda m: m.group("name") + f'"{MASK}"', text)
    return _SECRET_TEXT.sub(_mask_secret_match, text)


def redact(text: str) -> str:
    """Mask secrets, e-mail addresses, phone numbers and well-known token formats."""
    if not text:
        return text
    text = mask_secrets(text)
    text = _TOKEN_FORMATS.sub("[SECRET]", text)
    text = _EMAIL.sub("[EMAIL]", text)
    return _PHONE.sub("[PHONE]", text)


def scrub_url(url: str) -> str:
    """Mask secret query parameters (``subscription-key``, ``sig``, ...) in a URL."""
    if "=" not in url:
        return url
    return _URL_SECRET_PARAM.sub(lambda m: m.group("name") + MASK, url)


def capture(text: str, mode: CaptureMode, max_chars: int) -> str:
    """Prompt or completion text as the capture mode allows, cut at ``max_chars``."""
    if mode is CaptureMode.NONE or not text:
        return ""
    text = redact(text) if mode is CaptureMode.REDACTED else mask_secrets(text)
    return text[:max_chars]
