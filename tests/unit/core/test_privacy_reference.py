"""Masking equals a plain reference: every pattern over the whole text, with no pre-screen.

The module's pre-screens (cheap checks that skip a pattern which cannot match, or try it only
where a match can start) must never change a result: on generated text full of secrets, personal
data and near misses, ``mask_secrets`` and ``redact`` give exactly what running every pattern in
turn gives.
"""

from __future__ import annotations

import re
import string
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.core import privacy
from ingest.core.privacy import MASK, mask_secrets, redact

EXAMPLES = settings(
    max_examples=int(__import__("os").environ.get("HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def reference_key_values(text: str) -> str:
    """The value after ``name:`` or ``name=``, for every separator found by a pattern."""
    out: list[str] = []
    last = 0
    for sep in re.finditer(r"[:=]", text):
        at = sep.start()
        if at < last:
            continue
        head = text[max(0, at - 40) : at].rstrip().lower()
        name = next((n for n in privacy._KV_NAMES if head.endswith(n)), None)
        if name is None:
            continue
        before = len(head) - len(name) - 1
        if before >= 0 and (head[before].isalnum() or head[before] == "_"):
            continue
        value = privacy._KV_VALUE.match(text, at + 1)
        if value is None:
            continue
        lead = len(value.group()) - len(value.group().lstrip())
        out.append(text[last : at + 1 + lead])
        out.append(MASK)
        last = value.end()
    out.append(text[last:])
    return "".join(out)


def reference_mask_secrets(text: str) -> str:
    """Every credential pattern, in order, over the whole text."""
    text = privacy._JSON_SECRET_FIELD.sub(lambda m: m.group("name") + f'"{MASK}"', text)
    text = privacy._ESCAPED_JSON_SECRET_FIELD.sub(lambda m: m.group("name") + f'\\"{MASK}\\"', text)
    text = reference_key_values(text)
    text = privacy._BEARER.sub(lambda m: m.group("scheme") + MASK, text)
    text = privacy._JWT.sub(MASK, text)
    text = privacy._ALWAYS_MASKED_TOKENS.sub(MASK, text)
    return privacy._HEX_KEY.sub(MASK, text)


def reference_redact(text: str) -> str:
    """Credentials, then token formats, e-mail addresses and phone numbers, over the whole text."""
    text = reference_mask_secrets(text)
    text = privacy._TOKEN_FORMATS.sub("[SECRET]", text)
    text = privacy._EMAIL.sub("[EMAIL]", text)
    return privacy._PHONE.sub("[PHONE]", text)


ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdefABCDEF"
TOKEN = ALNUM + "_-"
ODD = "ſıİKΣς٣０é\u00a0\u2003\u3000\udcff"
"""Letters a case-insensitive pattern takes for ASCII, a final sigma, non-ASCII digits and spaces,
an accented letter, and a lone surrogate (what undecodable bytes become)."""
GLUE = " \t\n.,;:=&\"'()[]{}<>@+-_/*#?%!" + ODD


def runs(alphabet: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=low, max_size=high)


def joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


spaces = st.sampled_from(["", " ", "  ", "\t", "\n", "\x1c", "\u00a0", "\u2003"])
separators = st.sampled_from([":", "=", " : ", "= ", ":\t"])
names = st.sampled_from(
    [*privacy._KV_NAMES, "API_KEY", "Client-Secret", "PassWord", "design", "xsig", "my_key", "key"]
)
JSON_NAMES = [
    *("apiKey", "x-api-key", "AppSubscriptionKey", "JWTToken", "password", "secret", "name", "kéy"),
    *("paſſword", "Authorızation", "APİ_KEY", "Authorization", "clientSecret", "jwt", "tokens"),
    *("AccountKey", "SharedAccessKey", "access_token", "Access-Token", "subscription_key"),
]
json_names = st.sampled_from(JSON_NAMES)
schemes = st.sampled_from(
    [
        *("Bearer", "bearer", "BASIC", "basic", "baſic", "Basıc", "BASİC", "BeArEr", "bASIC"),
        *("bear", "xbearer", "basis", "bearing", "Bbasic", "bbearer"),
    ]
)


def digits(low: int, high: int) -> st.SearchStrategy[str]:
    """A run of ASCII digits, or of Arabic-Indic or fullwidth ones (``\\d`` takes all three)."""
    return st.sampled_from([string.digits, string.digits, "٣٤٥", "０１２"]).flatmap(
        lambda d: runs(d, low, high)
    )


digit_runs = digits(1, 4)
phone_seps = st.sampled_from([" ", ".", "-", "", "  ", "\t", "\x1c", "\u00a0"])
phones = joined(
    st.sampled_from(["+", "(", "", "(+", "x", "_", "+("]),
    digit_runs,
    st.sampled_from(["", ")", ") "]),
    st.lists(joined(phone_seps, digit_runs), min_size=1, max_size=5).map("".join),
)
"""Phone-like digit groups: runs of 1 to 4 digits (ASCII or not) between optional separators."""

secrets = st.one_of(
    joined(names, spaces, separators, spaces, runs(ALNUM + "\"'/+=.", 0, 20)),
    joined(
        st.just('"'),
        json_names,
        st.just('"'),
        spaces,
        st.just(":"),
        spaces,
        st.just('"'),
        runs(ALNUM + ' \\"', 0, 20),
        st.just('"'),
    ),
    joined(  # the same field in JSON that is itself a JSON string (a logged body)
        st.just('\\"'),
        json_names,
        st.just('\\"'),
        spaces,
        st.just(":"),
        spaces,
        st.just('\\"'),
        runs(ALNUM + " \\", 0, 20),
        st.just('\\"'),
    ),
    joined(schemes, spaces, runs(ALNUM + "-._~+/=", 0, 24)),
    joined(
        st.just("eyJ"),
        runs(TOKEN, 0, 12),
        st.just("."),
        runs(TOKEN, 0, 12),
        st.just("."),
        runs(TOKEN, 0, 12),
    ),
    joined(st.sampled_from(["sk-", "sk-proj-", "sk-svcacct-", "sk-admin-"]), runs(TOKEN, 15, 25)),
    runs(ALNUM, 80, 88),
    runs(HEX, 30, 34),
    joined(st.sampled_from(["AKIA", "ghp_", "gho_", "xoxb-", "AIza"]), runs(TOKEN, 8, 40)),
    joined(
        runs(ALNUM + "._%+-", 1, 8),
        st.just("@"),
        runs(ALNUM + ".-", 1, 8),
        st.just("."),
        runs(string.ascii_letters, 1, 4),
    ),
    joined(st.sampled_from(["+", "(", ""]), runs(string.digits + " .-()", 3, 16)),
    phones,
    runs(string.digits + "٣", 1, 6),
)
mixed = st.one_of(
    secrets,
    st.lists(
        st.one_of(secrets, runs(GLUE, 1, 3), st.text(max_size=8), runs(ALNUM, 1, 12)), max_size=16
    ).map("".join),
)


def ascii_only(text: str) -> str:
    return text.encode("ascii", "ignore").decode()


texts = st.one_of(mixed, mixed.map(ascii_only))
"""Each text also without its non-ASCII characters: ASCII text takes other paths (no Unicode
digit or blank, one byte per character)."""
phone_shaped = joined(
    st.sampled_from(["", "(", "+", "+1 ", "x", "_", "(+"]),
    digits(1, 4),
    st.sampled_from(["", ")", ") "]),
    st.lists(joined(phone_seps, digits(2, 4)), min_size=2, max_size=4).map("".join),
    st.sampled_from(["", "0", "-1", "\u00a0", "x", ")", "+"]),
)
"""Groups of digits (ASCII or not) spaced like a phone number or nearly: where the phone pattern
is tried, and what it takes there."""
numbers = st.lists(
    st.one_of(phone_shaped, phones, runs(string.digits + " .-()+", 1, 16), runs(GLUE, 1, 3)),
    max_size=8,
).map("".join)
"""Text full of numbers, most near the shape of a phone number, for the positions where the phone
pattern is tried."""
ascii_numbers = numbers.map(ascii_only)
numbers = st.one_of(
    numbers,
    ascii_numbers,
    joined(
        ascii_numbers, st.sampled_from(["é", "ſ", "日本", "\udcff", "\U0001f600"]), ascii_numbers
    ),
)
"""Also in ASCII, and with only letters outside ASCII (no Unicode digit or blank)."""
numbers = st.one_of(numbers, numbers.map("please call the service desk on {} today".format))
"""And in a text long enough to be mapped for runs of letters and digits (32 characters), where
whether it holds an ASCII digit is read from the map."""


@EXAMPLES
@given(texts)
@example("user: travel the quarterly invoice policy token quota model")
@example("design: x, api_key = abc; see the basic idea")
@example('{"apiKey": "abc", "note": "mail a.b@contoso.com or call (425) 555-0100"}')
@example("A1" * 42)
@example("xbasic abcdefghij, Bearer\u2003abcdefghij, BeArEr abcdefghij and bbearer abcdefghij")
@example('{"apiKey" :\t"v", "x": {\\"jwt\\":\\"abc\\"}}')
def test_mask_secrets_equals_the_reference(text: str) -> None:
    assert mask_secrets(text) == reference_mask_secrets(text)


@EXAMPLES
@given(texts)
@example("key sk-abcdefghijklmnopqrstuvwx, ghp_" + "a" * 36 + " AKIA" + "B" * 16)
@example("+44 20 7946 0958 and ٣٣٣-٣٣٣-٣٣٣٣")
@example("call +1 2 34 56")
@example("a@b.cc9@d.ee, x.y@z.com@q.de and .a@b.cc")
@example("call (425) 555-0100, +1 (425) 555-0100, 1(425) 555 0100, x+1 2 34 56 or (+1 23 45 67")
@example("call\u00a0(425)\u00a0555-0100 or (425) 555-0100 é")
@example("please call the service desk on ٣٣٣-٣٣٣-٣٣٣٣ or ０１２ ３４５ ６７８９ today")
def test_redact_equals_the_reference(text: str) -> None:
    assert redact(text) == reference_redact(text)


@EXAMPLES
@given(numbers)
def test_redacting_numbers_equals_the_reference(text: str) -> None:
    assert redact(text) == reference_redact(text)


def test_the_case_traps_are_every_letter_that_folds_to_ascii() -> None:
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    folding = set(re.findall(r"(?i:[a-z])", every)) - set(string.ascii_letters)
    assert folding == set(privacy._CASE_TRAPS)


SHORTEST = [
    "xoxb-" + "a1" * 5,  # a token format: 15 token characters
    "AKIA" + "B" * 16,
    "ghp_" + "a1" * 15,
    "AIza" + "B" * 35,
    "eyJ" + "a" * 8 + "." + "b" * 8 + ".",  # a JWT: 21
    "sk-" + "k" * 20,  # an API key: 23
    "sk-proj-" + "k" * 20,
    "0123456789abcdef" * 2,  # a hex key: 32
    "A1b2" * 21,  # an Azure AI key: 84
    "a@b.cc",
    "(425) 555-0100",
    "+1 2 34 56",
    "x:",
    ":",
    "sig:",
]


@pytest.mark.parametrize("shortest", SHORTEST)
@pytest.mark.parametrize("context", ["{}", "x {} y", "{}.", "({})", "é{}\n"])
def test_the_shortest_matches_and_one_less_equal_the_reference(shortest: str, context: str) -> None:
    for text in (context.format(shortest), context.format(shortest[1:] + shortest[:-1])):
        for cut in (text, text[:-1], text[1:]):
            assert mask_secrets(cut) == reference_mask_secrets(cut)
            assert redact(cut) == reference_redact(cut)
    if ":" not in shortest:  # each is masked, standing alone
        assert redact(f"x {shortest} y") != f"x {shortest} y"


@pytest.mark.parametrize(
    "shape", ['{{"{}": "v a l"}}', "{} = v", "{}:v", '"{}" :\t"v"', '{{\\"{}\\": \\"v\\"}}']
)
def test_each_name_alone_equals_the_reference(shape: str) -> None:
    for name in [*JSON_NAMES, *privacy._KV_NAMES, "API-KEY", "PASSWD"]:
        text = shape.format(name)
        assert mask_secrets(text) == reference_mask_secrets(text), text
