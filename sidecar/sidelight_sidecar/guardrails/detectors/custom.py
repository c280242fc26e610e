"""Detectors built from a rule's own data: custom regexes and deny-list phrases.

`PatternDetector` runs the configured regexes as written, on the original
text. `DenyListDetector` matches phrases on the folded text (`normalize.py`)
and lets up to three spaces or punctuation marks sit between the letters of
a word ("p r o j e c t", "proj.ect") and up to ten between words
("project-falcon", "project\\n  falcon"), as whole words only. Before any
phrase regex runs, the text's letters and digits alone (a "skeleton", made in
C) must contain the phrase's: most texts stop there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sidelight_sidecar.guardrails.detectors.base import Finding
from sidelight_sidecar.guardrails.detectors.normalize import fold

DENY_LIST_ENTITY = "DENY_LIST"

_WORD = re.compile(r"[^\W_]+")
_NOT_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum())
_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_IN_WORD = r"[\W_]{0,3}"
_BETWEEN_WORDS = r"[\W_]{0,10}"
_FEW_PHRASES = 12  # up to this many, `in` per phrase beats one alternation over the skeleton


class PatternDetector:
    """The regexes of a PatternRule, reported as its entity."""

    name = "pattern"

    def __init__(self, regexes: Sequence[str], entity: str) -> None:
        self.entities = frozenset({entity})
        self._entity = entity
        self._patterns = tuple(re.compile(r) for r in regexes)

    def find(self, text: str) -> list[Finding]:
        """Every non-empty match of every regex."""
        return [
            Finding(m.start(), m.end(), self._entity, self.name)
            for pattern in self._patterns
            for m in pattern.finditer(text)
            if m.end() > m.start()
        ]


class _Phrase:
    __slots__ = ("regex", "skeleton")

    def __init__(self, phrase: str) -> None:
        words = _WORD.findall(fold(phrase).text)
        if not words:
            raise ValueError(f"deny-list phrase without letters or digits: {phrase!r}")
        joined = "".join(words)
        first = re.escape(joined[0])
        body = _BETWEEN_WORDS.join(_IN_WORD.join(map(re.escape, word)) for word in words)
        # The first letter comes before the look-behind so that `re` scans for it as a literal.
        self.regex = re.compile(f"{first}(?<![^\\W_]{first}){body[len(first) :]}(?![^\\W_])")
        self.skeleton = joined if joined.isascii() else None


class DenyListDetector:
    """Phrases that may not appear, however they are spelled out."""

    name = "deny_list"
    entities = frozenset({DENY_LIST_ENTITY})

    def __init__(self, phrases: Sequence[str]) -> None:
        self._phrases = tuple(_Phrase(p) for p in phrases)
        gated = [p.skeleton for p in self._phrases if p.skeleton is not None]
        longest_first = sorted(gated, key=len, reverse=True)
        self._gate = re.compile("|".join(map(re.escape, longest_first))) if gated else None
        self._few = len(gated) <= _FEW_PHRASES
        self._skeletons = tuple(gated)
        self._ungated = any(p.skeleton is None for p in self._phrases)

    def find(self, text: str) -> list[Finding]:
        """Spans of the original text where a phrase appears."""
        # The fold of ASCII text is its lower case: one `translate` then. The
        # skeleton is a `str`: `in` on `bytes` parses its argument as `find`
        # does, and costs twice as much.
        if text.isascii():
            letters = text.encode().translate(_LOWER, _NOT_ALNUM)
        else:
            letters = fold(text).text.encode("ascii", "ignore").translate(None, _NOT_ALNUM)
        skeleton = letters.decode()
        if self._few:
            hit = any(map(skeleton.__contains__, self._skeletons))
        else:
            hit = self._gate is not None and self._gate.search(skeleton) is not None
        if not hit and not self._ungated:
            return []
        folded = fold(text)
        findings: list[Finding] = []
        for phrase in self._phrases:
            if phrase.skeleton is None or (hit and phrase.skeleton in skeleton):
                for m in phrase.regex.finditer(folded.text):
                    start, end = folded.original_span(m.start(), m.end())
                    findings.append(Finding(start, end, DENY_LIST_ENTITY, self.name))
        return findings
