"""The SIMD counts and searches give exactly what ``str``'s own give."""

from __future__ import annotations

import random
import string
import sys

import stringzilla as sz
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.core import privacy, scan

STREAMISH = st.text(alphabet='"content:{}a\\é\x00', max_size=60)
"""Texts of the characters the stream readers look for, a few outside ASCII (one of them two
UTF-8 bytes, where an offset in bytes is not one in characters)."""
NEEDLES = st.sampled_from(
    ['"content"', '"content":"', '"content"content"', '":"', '"', "", "é", "a" * 5, '{"a']
)
BOUNDS = st.one_of(st.none(), st.integers(-70, 70), st.just(sys.maxsize))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMISH, NEEDLES, BOUNDS, BOUNDS)
@example('"content":"a"content":"', '"content":"', None, None)
@example('é"content":"', '"content":"', 1, None)
@example('"content""content"', '"content"', -9, 70)
def test_count_and_find_are_the_str_methods(
    text: str, needle: str, start: int | None, end: int | None
) -> None:
    low = 0 if start is None else start
    high = sys.maxsize if end is None else end
    assert scan.count(text, needle, low, high) == text.count(needle, low, high)
    assert scan.find(text, needle, low, high) == text.find(needle, low, high)
    if start is None and end is None:
        assert scan.count(text, needle) == text.count(needle)
        assert scan.find(text, needle) == text.find(needle)


def test_a_long_stream_is_counted_as_str_counts_it() -> None:
    chunk = 'data: {"choices":[{"delta":{"content":"%s"}}]}\n\n'
    text = "".join(chunk % ("word" * (i % 7)) for i in range(400))
    assert scan.count(text, '"content":"') == 400 == text.count('"content":"')
    middle = len(text) // 2
    assert scan.find(text, '"content":"', middle) == text.find('"content":"', middle) > middle
    assert scan.count(text, '"content":"', 10, middle) == text.count('"content":"', 10, middle)


WORDS = ["the", "Bearer", "basic", "a1", "DEAD", "é"]


def _backend_cases() -> list[str]:
    """Texts around the widths SIMD code works in: runs of letters and digits 1 to 100 long at the
    start, middle and end of texts up to 300 characters, beside other characters."""
    rng = random.Random(13)
    alphabet = string.ascii_letters + string.digits
    cases = []
    for length in (*range(1, 40), 63, 64, 65, 83, 84, 85, 100):
        for before, after in ((" ", " "), ("", "-"), ("x.", ""), ('"', ":")):
            run = "".join(rng.choice(alphabet) for _ in range(length))
            pad = " ".join(rng.choice(WORDS) for _ in range(20))
            cases += [before + run + after, pad + before + run + after, before + run + after + pad]
    return cases


def test_every_simd_backend_of_this_machine_gives_the_same_answers() -> None:
    # StringZilla picks its code by the CPU it runs on: serial, SSE, AVX2, AVX-512 or NEON. Every
    # backend this machine has must mask and count exactly as the scalar one does.
    cases = _backend_cases()
    stream = "".join(f'data: {{"delta":{{"content":"{case}"}}}}\n\n' for case in cases[:200])
    original = list(sz.__capabilities__)

    def answers() -> list[object]:
        out: list[object] = [privacy.mask_secrets(case) for case in cases]
        out += [privacy.redact(case) for case in cases]
        out += [privacy._runs(case, privacy._ALNUM_RUN_MAP) for case in cases]
        out += [scan.count(stream, '"content":"', start) for start in range(0, 400, 7)]
        out += [scan.find(stream, '"}}\n\ndata', start) for start in range(0, 400, 7)]
        return out

    try:
        sz.reset_capabilities(["serial"])
        scalar = answers()
        assert scalar[len(cases) * 3] == stream.count('"content":"')
        for backend in original:
            sz.reset_capabilities([backend])
            assert answers() == scalar, backend
    finally:
        sz.reset_capabilities(original)
