"""Masking of secrets and personal data before anything reaches a row.

Two layers:
* ``mask_secrets`` always runs, whatever the capture mode: subscription keys, API keys,
  authorization headers, bearer tokens, JWTs, SAS signatures and storage keys never reach a row or
  a dead letter.
* ``redact`` adds e-mail addresses, phone numbers and well-known secret token formats, for the
  ``redacted`` capture mode.
"""

from __future__ import annotations

import re

from ingest.config import CaptureMode

MASK = "***"
"""What a masked secret value becomes."""

SECRET_KEY_NAMES = re.compile(
    r"(?:api[-_]?key|subscription[-_]?key|authorization|jwt|bearer|password|passwd|secret|"
    r"accountkey|sharedaccesskey|access[-_]?token|client[-_]?secret|^sig$|^code$|^key$)",
    re.IGNORECASE,
)
"""Field, header and query-parameter names whose values are secrets (never read, always masked)."""

_KV_NAMES = (
    "ocp-apim-subscription-key",
    "subscription-key",
    "x-api-key",
    "api-key",
    "api_key",
    "apikey",
    "authorization",
    "accountkey",
    "sharedaccesskey",
    "sharedaccesssignature",
    "client_secret",
    "client-secret",
    "password",
    "passwd",
    "access_token",
    "access-token",
    "id_token",
    "refresh_token",
    "jwt",
    "sig",
)
"""Header and parameter names whose value follows a ``:`` or ``=``."""

_KV_VALUE = re.compile(r"\s*(?:(?i:bearer|basic)\s+)?\"?[^\s\",;&]+")
_BEARER = re.compile(r"(?P<scheme>(?i:bearer|basic)\s+)[A-Za-z0-9\-._~+/]{8,}=*")
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]*+")
"""A JWT: it starts a token (the look-behind), and the possessive runs never give characters back,
so a megabyte of ``eyJeyJ...`` is scanned once (linear), not once per ``eyJ`` (quadratic)."""
_ALWAYS_MASKED_TOKENS = re.compile(
    r"(?<![A-Za-z0-9_-])(?:sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}+|[A-Za-z0-9]{84}+)"
    r"(?![A-Za-z0-9_-])"
)
"""OpenAI API keys (``sk-...``, ``sk-proj-...``) and 84-character Azure AI keys: secrets in every
capture mode, ``full`` included."""
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
"""``user:password@`` in a URL."""
_HEX_KEY = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])")
"""APIM subscription keys and classic Azure OpenAI keys: 32 hex digits standing alone."""


_KV_NAME_ENDS = frozenset(name[-1] for name in _KV_NAMES)
"""The last letters of the names: a separator after any other character needs no closer look."""


def _mask_key_values(text: str) -> str:
    """Mask the value after ``name:`` or ``name=`` for credential names (found by the separator).

    Separators are found with ``str.find``; one that follows neither a space nor the last letter
    of a name (``user:``, ``x=1``) is passed over at once.
    """
    out: list[str] = []
    last = 0
    find = text.find
    colon, equals = find(":"), find("=")
    while colon >= 0 or equals >= 0:
        if equals < 0 or 0 <= colon < equals:
            at, colon = colon, find(":", colon + 1)
        else:
            at, equals = equals, find("=", equals + 1)
        if at < last:
            continue
        # The name check below lower-cases the text before the separator, blanks stripped; it
        # can only match if that text ends with one of these letters (str.lower() maps one
        # character to one, except the dotted capital I, whose two end in a combining dot).
        before_sep = text[at - 1 : at]
        if before_sep.lower() not in _KV_NAME_ENDS and not before_sep.isspace():
            continue
        head = text[max(0, at - 40) : at].rstrip().lower()
        if not head.endswith(_KV_NAMES):
            continue
        name = next(n for n in _KV_NAMES if head.endswith(n))
        before = len(head) - len(name) - 1
        if before >= 0 and (head[before].isalnum() or head[before] == "_"):
            continue  # "design:" is not "sig:"
        value = _KV_VALUE.match(text, at + 1)
        if value is None:
            continue
        lead = len(value.group()) - len(value.group().lstrip())
        out.append(text[last : at + 1 + lead])
        out.append(MASK)
        last = value.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


_SECRET_FIELD_NAMES = (
    r"(?i:api[-_]?key|subscription[-_]?key|authorization|jwt[-_]?token|jwt|"
    r"password|secret|accountkey|sharedaccesskey|access[-_]?token)"
)
_JSON_SECRET_FIELD = re.compile(
    r"(?P<name>\"[\w-]*" + _SECRET_FIELD_NAMES + r"[\w-]*\"\s*:\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\")"
)
_ESCAPED_JSON_SECRET_FIELD = re.compile(
    r"(?P<name>\\\"[\w-]*" + _SECRET_FIELD_NAMES + r"[\w-]*\\\"\s*:\s*)"
    r"\\\"(?:[^\"\\]|\\[^\"])*\\\""
)
"""The same field inside JSON that is itself a JSON string (a logged body in a record):
``{\\"apiKey\\": \\"...\\"}``."""
_JSON_NAME_PARTS = ("key", "token", "secret", "password", "authorization", "jwt")
"""Every name the JSON field pattern takes holds one of these, lower-cased."""

_URL_SECRET_PARAM = re.compile(
    r"(?P<name>[?&#;](?i:(?:ocp-apim-)?subscription-key|x-api-key|api[-_]?key|sig|code|key|"
    r"access[-_]token|id_token|refresh_token|token|client[-_]secret|jwt|password|passwd|"
    r"accountkey|sharedaccess(?:key|signature)|authorization)=)[^&#;]*"
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}"
    r"|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?![\w])"
)
_CASE_TRAPS = ("\u0130", "\u0131", "\u017f", "\u212a")
"""The only characters besides ASCII letters that a case-insensitive pattern matches to an ASCII
letter (dotted and dotless i, long s, Kelvin sign): a pre-screen on ``str.lower()`` misses them."""


def _has_case_trap(text: str) -> bool:
    """Whether ``text`` holds a character that ``(?i:...)`` takes for an ASCII letter."""
    return not text.isascii() and any(trap in text for trap in _CASE_TRAPS)


_HAS_DIGIT_RUN = re.compile(r"\d[\s().-]?\d[\s().-]?\d")
"""A phone number has runs of digits: texts without any skip the (slower) phone pattern."""
_TOKEN_FORMATS = re.compile(
    r"\b(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
)

_ALNUM_RUN_MAP = bytes(
    0x61 if chr(byte).isascii() and chr(byte).isalnum() else 0x20 for byte in range(256)
)
"""Each byte of an ASCII letter or digit to ``a``, any other byte to a space. An Azure AI key is a
run of 84 of them, a hex key a run of 32 (then of hex digits: ``_HEX_RUN_MAP``). UTF-8 keeps
ASCII bytes out of the encoding of any other character, so a run in the bytes is a run in the
text. Searched for a run of ``a`` that long, a text of short words is passed over in long
strides."""
_HEX_RUN_MAP = bytes(0x61 if byte in b"0123456789abcdefABCDEF" else 0x20 for byte in range(256))
"""Each byte of a hex digit to ``a``, any other byte to a space."""
_RUN_32, _RUN_84 = b"a" * 32, b"a" * 84


def _runs(text: str, table: bytes = _ALNUM_RUN_MAP) -> bytes:
    """``text`` mapped by ``table``, one byte per UTF-8 byte (lone surrogates included)."""
    return text.encode("utf-8", "surrogatepass").translate(table)


def mask_secrets(text: str) -> str:
    """Mask credentials in free text (always applied, in every capture mode).

    Each pattern runs only if a cheap check on the text it would scan says it may match: a
    character or literal it needs (``"`` and part of a name, ``:`` or ``=``, ``eyJ``, ``sk-``),
    or a run of letters and digits as long as its match, all found by C string methods
    (``in``, ``str.find``, ``bytes.translate``) or a pattern led by a literal. A case-insensitive
    pattern also runs when the text holds a letter that only it takes for ASCII.
    """
    if not text:
        return text
    lowered = text.lower()
    if '"' in text and (any(part in lowered for part in _JSON_NAME_PARTS) or _has_case_trap(text)):
        masked = _JSON_SECRET_FIELD.sub(lambda m: m.group("name") + f'"{MASK}"', text)
        if '\\"' in masked:
            masked = _ESCAPED_JSON_SECRET_FIELD.sub(
                lambda m: m.group("name") + f'\\"{MASK}\\"', masked
            )
        if masked != text:
            text, lowered = masked, masked.lower()
    if ":" in text or "=" in text:
        masked = _mask_key_values(text)
        if masked is not text:
            text, lowered = masked, masked.lower()
    if "bearer" in lowered or "basic" in lowered or _has_case_trap(text):
        text = _BEARER.sub(lambda m: m.group("scheme") + MASK, text)
    if "J" in text and "eyJ" in text:  # a one-character test runs at memchr pace
        text = _JWT.sub(MASK, text)
    runs = _runs(text) if len(text) >= 32 else b""
    long_run = _RUN_32 in runs  # without one, neither a hex key nor an Azure AI key (84)
    if ("-" in text and "sk-" in text) or (long_run and _RUN_84 in runs):
        masked = _ALWAYS_MASKED_TOKENS.sub(MASK, text)
        if masked != text:
            text = masked
            long_run = _RUN_32 in _runs(text)
    if long_run and _RUN_32 in _runs(text, _HEX_RUN_MAP):
        text = _HEX_KEY.sub(MASK, text)
    return text


def mask_bytes(raw: bytes) -> bytes:
    """Mask credentials in bytes that are not all UTF-8 (kept byte for byte everywhere else)."""
    text = raw.decode("utf-8", errors="surrogateescape")
    masked = mask_secrets(text)
    return raw if masked == text else masked.encode("utf-8", errors="surrogateescape")


def redact(text: str) -> str:
    """Mask secrets, e-mail addresses, phone numbers and well-known token formats."""
    if not text:
        return text
    text = mask_secrets(text)
    if _may_hold_token_format(text):
        text = _TOKEN_FORMATS.sub("[SECRET]", text)
    if "@" in text:
        text = _EMAIL.sub("[EMAIL]", text)
    if _may_hold_digits(text) and _HAS_DIGIT_RUN.search(text):
        text = _PHONE.sub("[PHONE]", text)
    return text


def _may_hold_token_format(text: str) -> bool:
    """Whether ``_TOKEN_FORMATS`` may match: the text holds one of its literals.

    Each literal is looked for only if one of its rarer characters is there (a ``memchr``).
    """
    return (
        ("-" in text and ("sk-" in text or "xox" in text))
        or ("K" in text and "AKIA" in text)
        or ("_" in text and "gh" in text)
        or ("z" in text and "AIza" in text)
    )


def _may_hold_digits(text: str) -> bool:
    r"""Whether ``\d`` (any Unicode digit) may match: not in an ASCII text without ``0``-``9``.

    Ten ``in`` tests are ten ``memchr`` calls, cheaper than any pattern or loop over the text.
    """
    if not text.isascii():
        return True
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


def scrub_url(url: str) -> str:
    """Mask secrets in a URL.

    Query and fragment parameters (``subscription-key``, ``sig``, ``#access_token``, ...),
    ``user:password@``, and a JWT anywhere (a path segment included).
    """
    if "=" in url:
        url = _URL_SECRET_PARAM.sub(lambda m: m.group("name") + MASK, url)
    if "@" in url:
        url = _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", url)
    if "eyJ" in url:
        url = _JWT.sub(MASK, url)
    return url


def capture(text: str, mode: CaptureMode, max_chars: int) -> str:
    """Prompt or completion text as the capture mode allows, cut at ``max_chars``."""
    if mode is CaptureMode.NONE or not text:
        return ""
    text = redact(text) if mode is CaptureMode.REDACTED else mask_secrets(text)
    return text[:max_chars]
