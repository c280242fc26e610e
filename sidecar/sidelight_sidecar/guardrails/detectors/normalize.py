"""Folding text for matching: the tricks that slip "project falcon" past a filter.

`fold` lower-cases the text, maps look-alike letters to Latin (Cyrillic and
Greek homoglyphs, fullwidth and mathematical letters through NFKD), strips
accents and removes zero-width and other invisible format characters. It
keeps a map from folded offsets back to the original text, so a finding on
the folded text points at the characters the user wrote.

ASCII text, the common case, is only lower-cased (offsets unchanged, about
0.5 µs per KB). Other text is folded character by character for its
non-ASCII characters only, with each character's fold computed once.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import cache
from typing import NamedTuple

# UTS #39 confusables that NFKD does not fold: Cyrillic and Greek letters that
# look like Latin ones, in both cases (the case matters: Greek Η looks like H,
# its small η like n).
_CONFUSABLE_PAIRS = (
    "аaАaвbВbеeЕeһhНhіiІiјjЈjкkКkмmМmоoОoрpРpсcСcтtТtуyУyхxХxѕsЅsԁdԛqԝwӏlӀlɑaɡgıiℓl"
    "αaΑaβbΒbεeΕeζzΖzηnΗhιiΙiκkΚkμuΜmνvΝnοoΟoρpΡpτtΤtυuΥyχxΧxγyωw"
)
_CONFUSABLES = dict(zip(_CONFUSABLE_PAIRS[::2], _CONFUSABLE_PAIRS[1::2], strict=True))
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@cache
def fold_char(ch: str) -> str:
    """The folded form of one character: "" for invisible ones, else lower-case Latin if any."""
    if ch in _CONFUSABLES:
        return _CONFUSABLES[ch]
    if unicodedata.category(ch) in ("Cf", "Mn", "Me"):
        return ""
    decomposed = unicodedata.normalize("NFKD", ch)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(_CONFUSABLES.get(c, c) for c in bare)


class Folded(NamedTuple):
    """A folded text and the way back to the original's offsets."""

    text: str
    folded_at: tuple[int, ...] = ()
    original_at: tuple[int, ...] = ()
    is_run: tuple[bool, ...] = ()  # an ASCII run (offsets shift) or one character

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that `text[start:end]` was folded from."""
        if not self.folded_at:
            return start, end
        return self._original(start), self._original(end - 1) + 1

    def _original(self, pos: int) -> int:
        i = bisect_right(self.folded_at, pos) - 1
        if self.is_run[i]:
            return self.original_at[i] + pos - self.folded_at[i]
        return self.original_at[i]


def fold(text: str) -> Folded:
    """Fold `text` for matching (see the module docstring)."""
    if text.isascii():
        return Folded(text.lower())
    parts: list[str] = []
    folded_at: list[int] = []
    original_at: list[int] = []
    run: list[bool] = []
    size = 0
    pos = 0
    for m in _NON_ASCII.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()].lower())
            folded_at.append(size)
            original_at.append(pos)
            run.append(True)
            size += m.start() - pos
        for i in range(m.start(), m.end()):
            piece = fold_char(text[i])
            parts.append(piece)
            folded_at.append(size)
            original_at.append(i)
            run.append(False)
            size += len(piece)
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:].lower())
        folded_at.append(size)
        original_at.append(pos)
        run.append(True)
    return Folded("".join(parts), tuple(folded_at), tuple(original_at), tuple(run))
