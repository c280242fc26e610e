"""The shape of a text: one byte per character, classes instead of characters.

Digits become `0`, ASCII capitals `A`, ASCII small letters `a`, any other
ASCII character stays itself and every non-ASCII character becomes `?`. The
shape is one `encode` plus one `translate`, both in C (about 2 µs per KB),
and has the text's offsets. Candidate regexes run on it with a literal first
byte (`0`, `A`, `@`), which `re` finds with a fast scan instead of testing a
character class at every position (about 1 µs instead of 3-10 µs per KB
per regex on bench/guardrails_bench.py, which is what keeps the whole PII
detector near 10-25 µs per KB on prose without PII). A literal that is rare
in prose ("+", "AA00") is better found with `find`: see `matches_from`.
"""

from __future__ import annotations

import re
from typing import AnyStr


def _table() -> bytes:
    table = bytearray(range(256))
    for c in range(256):
        if 48 <= c <= 57:
            table[c] = ord("0")
        elif 65 <= c <= 90:
            table[c] = ord("A")
        elif 97 <= c <= 122:
            table[c] = ord("a")
    return bytes(table)


_SHAPE = _table()


def shape_of(text: str) -> bytes:
    """The shape of `text`, with the same offsets."""
    return text.encode("ascii", "replace").translate(_SHAPE)


def matches_from(
    literal: AnyStr, pattern: re.Pattern[AnyStr], subject: AnyStr
) -> list[re.Match[AnyStr]]:
    """What `pattern.finditer(subject)` finds, for a pattern that starts with `literal`.

    `find` skips to each occurrence of the literal with memchr or CPython's fast
    search, where `re` steps through the subject one character at a time: for a
    literal that is rare in prose ("+", "AA00", "19") this is much cheaper.
    """
    found = []
    at = subject.find(literal)
    while at != -1:
        m = pattern.match(subject, at)
        if m is None:
            at = subject.find(literal, at + 1)
        else:
            found.append(m)
            at = subject.find(literal, max(m.end(), at + 1))
    return found
