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
from collections.abc import Callable, Iterable

import stringzilla as sz

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
_KV_BEFORE_SEP = frozenset(
    {
        *_KV_NAME_ENDS,
        *(end.upper() for end in _KV_NAME_ENDS),
        *(char for char in map(chr, range(128)) if char.isspace()),
    }
)
"""What may stand right before a separator that follows a name: its last letter in either case,
or an ASCII blank (a blank outside ASCII is asked ``isspace``)."""


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
        # can only match if the character before the separator is a blank or lower-cases to
        # the last letter of a name: only that letter in either case does (outside ASCII only
        # the dotted capital I and the Kelvin sign lower-case to ASCII letters, "i" and "k").
        before_sep = text[at - 1 : at]
        if before_sep not in _KV_BEFORE_SEP and (before_sep.isascii() or not before_sep.isspace()):
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
_JSON_FIELD_SHAPE = re.compile(r'"[\w-]*\\?"\s*:\s*\\?"')
"""What both JSON field patterns hold: a quoted name of word characters and ``-`` (every name
they take is spelled with those), a colon, and the opening quote of the value, each quote maybe
escaped. Led by a literal ``"``, it is searched by a tight loop over the text."""
_JSON_NAME_PARTS = (b"key", b"token", b"secret", b"password", b"authorization", b"jwt")
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
letter (dotted and dotless i, long s, Kelvin sign): a pre-screen on lower-cased text misses them."""


def _has_case_trap(text: str) -> bool:
    """Whether ``text`` holds a character that ``(?i:...)`` takes for an ASCII letter."""
    return not text.isascii() and any(trap in text for trap in _CASE_TRAPS)


_HAS_DIGIT_RUN = re.compile(r"\d[\s().-]?\d[\s().-]?\d")
"""A phone number has runs of digits: texts without any skip the (slower) phone pattern."""
_TOKEN_FORMATS = re.compile(
    r"\b(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
)

_ASCII_LOWER = bytes(byte + 32 if 0x41 <= byte <= 0x5A else byte for byte in range(256))
"""Each ASCII capital to its small letter, any other byte to itself: ``str.lower`` for ASCII text,
as a byte map (a StringZilla ``translate``, one SIMD pass)."""
_SCHEMES = (re.compile(r"b[eEaA](?i:[as][ri][ec])"), re.compile(r"B[eEaA](?i:[as][ri][ec])"))
"""Where ``(?i:bearer|basic)`` may start: ``b`` or ``B``, then the next four letters of either
word, by position.

``(?i)`` takes only ``b`` and ``B`` for ``b``, and only ``e``, ``E``, ``a``, ``A`` for ``e`` and
``a``; the last three letters keep ``(?i)``, which also takes the long s and the dotless and
dotted i. Led by a literal, each pattern is searched by a tight loop over the text. For text
outside ASCII only: ASCII text is searched lower-cased (``_ASCII_LOWER``), where the case-folding
letters cannot be."""

_ALNUM_RUN_MAP = bytes(
    0x30
    if chr(byte) in "0123456789"
    else 0x61
    if chr(byte).isascii() and chr(byte).isalpha()
    else 0x20
    for byte in range(256)
)
"""Each byte of an ASCII digit to ``0``, of an ASCII letter to ``a``, any other byte to a space.
UTF-8 keeps ASCII bytes out of the encoding of any other character, so once ``0`` is made ``a``
too (``_alnum_runs``), a run of ``a`` is a run of ASCII letters and digits in the text, and the
bytes either side of it are spaces: another character, or the spaces ``_runs`` adds at both
ends."""
_HEX_RUN_MAP = bytes(
    0x68
    if byte in b"0123456789abcdefABCDEF"
    else 0x67
    if chr(byte).isascii() and chr(byte).isalnum()
    else 0x20
    for byte in range(256)
)
"""Each byte of a hex digit to ``h``, of any other ASCII letter to ``g``, any other byte to a
space."""
_LONG_RUN = b" " + b"a" * 32
"""A space, then at least 32 letters and digits: where a hex key (32) or an Azure AI key (84) may
be. Every run starts after a space, so this finds one exactly when a run is that long."""
_RUN_OF_32 = "a" * 32
"""A run of 32 at the start of a map without the spaces ``_runs`` adds."""
_AZURE_RUN = b" " + b"a" * 84 + b" "
"""A run of exactly 84, as ``_ALWAYS_MASKED_TOKENS`` takes it (neither side a letter or digit)."""
_HEX_RUN = b" " + b"h" * 32 + b" "
"""32 hex digits with neither side a letter or digit: exactly what ``_HEX_KEY`` matches."""


def _runs(text: str, table: bytes) -> str | bytes:
    """``text`` with a space at each end, mapped by ``table`` one UTF-8 byte at a time.

    StringZilla's ``translate`` and ``find`` (SIMD table lookups and searches) do the work. ASCII
    text, one byte per character, is mapped as the ``str`` it is (no copy to bytes; the result is
    a ``str`` of the same length). Other text is mapped as its UTF-8 bytes (lone surrogates
    included): StringZilla raises on a lone surrogate in a ``str``, decodes a mapped ``str`` as
    UTF-8 again, and counts offsets in bytes. The ``isascii`` tests before every StringZilla call
    on a ``str`` are what keep its answers equal to ``str``'s.
    """
    mapped: str | bytes
    if text.isascii():
        mapped = sz.translate(f" {text} ", table)
    else:
        mapped = sz.translate(f" {text} ".encode("utf-8", "surrogatepass"), table)
    return mapped


def _alnum_runs(text: str) -> tuple[str | bytes, bool]:
    """``text`` as runs of ``a`` and spaces, and whether it holds an ASCII digit.

    The runs of ``a`` are its runs of ASCII letters and digits. Whether there is a digit takes one
    search of the map, not one search of the text per digit.
    """
    runs = _runs(text, _ALNUM_RUN_MAP)
    if sz.find(runs, "0") < 0:
        return runs, False
    if isinstance(runs, bytes):
        return runs.replace(b"0", b"a"), True
    return runs.replace("0", "a"), True


def _may_name_a_secret_field(text: str) -> bool:
    """Whether a name the JSON field patterns take may be in ``text``: one of its parts is.

    The parts are looked for in the UTF-8 bytes with ASCII letters lower-cased (``bytes.lower``,
    one cheap pass even over non-ASCII text). No character outside ASCII lower-cases to an ASCII
    letter but two case traps, so without those a part is there exactly when it is in
    ``text.lower()``.
    """
    if _has_case_trap(text):
        return True
    find = text.encode("utf-8", "surrogatepass").lower().find
    return any(find(part) >= 0 for part in _JSON_NAME_PARTS)


def _sub_at(
    pattern: re.Pattern[str], text: str, starts: Iterable[int], repl: Callable[[re.Match[str]], str]
) -> str:
    """``pattern.sub(repl, text)`` for a pattern that can match only at ``starts`` (ascending).

    The substitution tries every position from the end of its last match on; trying only the
    positions where a match can start, in the same order and from the same ends, finds the same
    matches. ``match(text, start)`` sees the text before ``start``, so look-behinds read what
    they read in the full scan.
    """
    out: list[str] = []
    last = 0
    for start in starts:
        found = pattern.match(text, start) if start >= last else None
        if found is not None:
            out.append(text[last:start])
            out.append(repl(found))
            last = found.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _mask_schemes(text: str) -> str:
    """``_BEARER.sub`` over the text, the pattern tried only where ``_SCHEMES`` find a start.

    Their matches are five letters with no ``b`` or ``B`` after the first, so no scheme starts
    inside one: iterating over them finds every start.
    """
    starts = sorted(found.start() for scheme in _SCHEMES for found in scheme.finditer(text))
    return _sub_at(_BEARER, text, starts, lambda m: m.group("scheme") + MASK)


def mask_secrets(text: str) -> str:
    """Mask credentials in free text (always applied, in every capture mode).

    Each pattern runs only if a cheap check on the text it would scan says it may match: a
    character or literal it needs (``"``, ``:``, ``=``, ``eyJ``, ``sk-``), part of a name, a
    pattern led by a literal, or a run of letters and digits as long as its match, all found by C
    string methods (``in``, ``str.find``), StringZilla's SIMD ``translate`` and ``find``, or ``re``
    patterns that skip along a literal. A case-insensitive pre-screen also passes when the text
    holds a letter that only the pattern takes for ASCII.
    """
    return _mask_secrets(text)[0]


def _mask_secrets(text: str) -> tuple[str, bool]:
    """``mask_secrets``, and whether the text may hold an ASCII digit (False: it holds none)."""
    if not text:
        return text, False
    if (
        '"' in text
        and ":" in text
        and _JSON_FIELD_SHAPE.search(text) is not None
        and _may_name_a_secret_field(text)
    ):
        text = _JSON_SECRET_FIELD.sub(lambda m: m.group("name") + f'"{MASK}"', text)
        if '\\"' in text:
            text = _ESCAPED_JSON_SECRET_FIELD.sub(lambda m: m.group("name") + f'\\"{MASK}\\"', text)
    if ":" in text or "=" in text:
        text = _mask_key_values(text)
    if text.isascii():  # (?i:bearer|basic) is in ASCII text exactly when it is in it lower-cased
        if "b" in text or "B" in text:
            lowered = sz.translate(text, _ASCII_LOWER)
            if sz.find(lowered, "bearer") >= 0 or sz.find(lowered, "basic") >= 0:
                text = _mask_schemes(text)
    elif ("b" in text and _SCHEMES[0].search(text)) or ("B" in text and _SCHEMES[1].search(text)):
        text = _mask_schemes(text)
    if "J" in text and "eyJ" in text:  # a one-character test runs at memchr pace
        text = _JWT.sub(MASK, text)
    # The masks below put in no digit: whether the text holds one is known from here on.
    # Without a run of 32 letters and digits, no hex key and no Azure AI key.
    if len(text) < 32:  # too short for one; a digit is not looked for
        digits, long_run = True, False
    elif text.isascii():  # the common case, inline: no copy to bytes, no spaces added
        runs = sz.translate(text, _ALNUM_RUN_MAP)
        digits = "0" in runs
        if digits:
            runs = runs.replace("0", "a")
        long_run = runs.startswith(_RUN_OF_32) or sz.find(runs, _LONG_RUN) >= 0
    else:
        runs, digits = _alnum_runs(text)
        long_run = sz.find(runs, _LONG_RUN) >= 0
    if ("-" in text and "sk-" in text) or (
        long_run and sz.find(_alnum_runs(text)[0], _AZURE_RUN) >= 0
    ):
        masked = _ALWAYS_MASKED_TOKENS.sub(MASK, text)
        if masked != text:
            text = masked
            long_run = sz.find(_alnum_runs(text)[0], _LONG_RUN) >= 0
    if long_run and sz.find(_runs(text, _HEX_RUN_MAP), _HEX_RUN) >= 0:
        text = _HEX_KEY.sub(MASK, text)
    return text, digits


def mask_bytes(raw: bytes) -> bytes:
    """Mask credentials in bytes that are not all UTF-8 (kept byte for byte everywhere else)."""
    text = raw.decode("utf-8", errors="surrogateescape")
    masked = mask_secrets(text)
    return raw if masked == text else masked.encode("utf-8", errors="surrogateescape")


def redact(text: str) -> str:
    """Mask secrets, e-mail addresses, phone numbers and well-known token formats."""
    if not text:
        return text
    text, digits = _mask_secrets(text)
    # _TOKEN_FORMATS runs only if the text holds one of its literals, each looked for only if one
    # of its rarer characters is there (a memchr).
    if (
        ("-" in text and ("sk-" in text or "xox" in text))
        or ("K" in text and "AKIA" in text)
        or ("_" in text and "gh" in text)
        or ("z" in text and "AIza" in text)
    ):
        text = _TOKEN_FORMATS.sub("[SECRET]", text)
    if "@" in text:
        text = _mask_emails(text)
    if not digits and text.isascii():  # a phone number needs digits: in ASCII text, ASCII ones
        return text
    return _mask_phones(text)


_EMAIL_LOCAL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
"""The characters of the part of an address before the ``@`` (``_EMAIL``'s first class)."""


def _mask_emails(text: str) -> str:
    """``_EMAIL.sub("[EMAIL]", text)``, with the pattern tried once per ``@``.

    A match is a run of ``_EMAIL_LOCAL`` characters right before an ``@``, then a domain. From
    any point of that run the pattern takes the rest of the run, the same ``@`` (not in the run's
    class) and the same domain, so it matches from every point or from none. The substitution,
    scanning on from where its last match ended, matches first at the run's start, or at that end
    if it falls inside the run; nowhere else can a match start. So that point is found for the
    next ``@`` (``str.rstrip`` walks back over the run) and the pattern tried there alone.
    """
    out: list[str] = []
    last = scan = 0
    find = text.find
    at = find("@")
    while at >= 0:
        head = text[scan:at]
        start = at - (len(head) - len(head.rstrip(_EMAIL_LOCAL)))
        address = _EMAIL.match(text, start) if start < at else None
        if address is None:
            scan = at + 1
        else:
            out.append(text[last:start])
            out.append("[EMAIL]")
            last = scan = address.end()
        at = find("@", scan)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _phone_class(char: str) -> str:
    """What ``char`` is to ``_PHONE``, as ``re`` reads it.

    ``d`` a digit, ``s`` a separator (a blank, ``.`` or ``-``), ``(``, ``)`` and ``+`` themselves,
    ``x`` anything else.
    """
    if re.fullmatch(r"\d", char):
        return "d"
    if re.fullmatch(r"[\s.-]", char):
        return "s"
    return char if char in "()+" else "x"


_PHONE_CLASS_MAP = "".join(_phone_class(chr(byte)) for byte in range(128)).encode() + b"x" * 128
"""Each ASCII character to its class (``_phone_class``): a table for ``bytes.translate``."""
_PHONE_SHAPES = (b"+d", b"dddsdddsdddd", b"ddd)sdddsdddd")
"""What every ``_PHONE`` match starts with, in classes: ``+`` then a digit (the international
form), or, at the match's start or right after its ``(``, three digits, an optional ``)``, a
separator, three digits, a separator and four digits."""
_NON_ASCII_DIGIT_OR_BLANK = re.compile(r"[^\x00-\x7f](?<=[\d\s])")
"""A character outside ASCII that ``_PHONE`` takes for a digit or a separator."""


def _mask_phones(text: str) -> str:
    r"""``_PHONE.sub("[PHONE]", text)``, with the pattern tried only where a match can start.

    The text is mapped to classes, one byte per character, and searched for ``_PHONE_SHAPES``;
    the pattern is tried only where one starts, or at the ``(`` before one. In ASCII text ``\d``
    is ``0``-``9``, and ten ``memchr`` calls rule most texts out first. Other text is encoded
    with ``?`` for each character outside ASCII, which is right unless one of them is a Unicode
    digit or blank: then the whole pattern runs.
    """
    if text.isascii():
        if not (
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
        ):
            return text
    elif _HAS_DIGIT_RUN.search(text) is None:
        return text
    elif _NON_ASCII_DIGIT_OR_BLANK.search(text) is not None:
        return _PHONE.sub("[PHONE]", text)
    classes = bytearray(text, "ascii", "replace").translate(_PHONE_CLASS_MAP)
    find = classes.find
    starts = set()
    for shape in _PHONE_SHAPES:
        at = find(shape)
        while at >= 0:
            starts.add(at)
            if at and classes[at - 1] == 0x28:  # (
                starts.add(at - 1)
            at = find(shape, at + 1)
    return _sub_at(_PHONE, text, sorted(starts), lambda m: "[PHONE]")


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
    return capturer(mode, max_chars)(text)


def capturer(mode: CaptureMode, max_chars: int) -> Callable[[str], str]:
    """``capture`` for one mode and limit, chosen once (each row's texts call it)."""
    if mode is CaptureMode.NONE:
        return lambda text: ""
    mask = redact if mode is CaptureMode.REDACTED else mask_secrets

    def capture_text(text: str) -> str:
        return mask(text)[:max_chars] if text else ""

    return capture_text
