"""Substring counts and searches over long texts (a logged stream is kilobytes of JSON).

``str``'s own search steps through JSON one character at a time when the needle ends in a
character the text is full of (a quote); StringZilla's SIMD search does not. Both give the same
answers for ASCII text, where a character is a byte. Other text, whose UTF-8 offsets are not its
character offsets, stays with ``str`` (StringZilla would answer in byte offsets), and so do empty
and one-character needles, which ``str`` counts and finds faster than StringZilla.
"""

from __future__ import annotations

import sys

import stringzilla as sz


def count(text: str, sub: str, start: int = 0, end: int = sys.maxsize) -> int:
    """``text.count(sub, start, end)``."""
    if len(sub) > 1 and text.isascii():
        return int(sz.count(text, sub, start, end))
    return text.count(sub, start, end)


def find(text: str, sub: str, start: int = 0, end: int = sys.maxsize) -> int:
    """``text.find(sub, start, end)``."""
    if len(sub) > 1 and text.isascii():
        return int(sz.find(text, sub, start, end))
    return text.find(sub, start, end)
