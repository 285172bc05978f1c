"""The SIMD counts and searches give exactly what ``str``'s own give."""

from __future__ import annotations

import sys

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.core import scan

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
