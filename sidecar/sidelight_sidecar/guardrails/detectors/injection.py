"""PROMPT_INJECTION: heuristics for instructions aimed at the model, with a score.

Each heuristic is a regex over the folded text (lower case, homoglyphs and
accents folded, invisible characters removed; see `normalize.py`) with a
weight, the probability that a match is an attack. A text's score is the
noisy-OR of the weights of the distinct heuristics that match it:
1 - prod(1 - w). It is reported when the score reaches the threshold
(0.5), so weak signals ("developer mode", "jailbreak", "you are now a...")
count only together.

Speed: each heuristic names trigger words, one of which its regex needs, at
most `back` characters after the start of a match. The text's words are
split in C and intersected with all triggers at once; a heuristic's regex
runs only in a window around its triggers' occurrences. Common words make
poor triggers (they open windows everywhere), so where a phrase starts with
one ("stop following", "overrides") the object noun is the trigger.

Quality, on tests/sidecar/guardrails/corpus (asserted by
test_guardrail_corpus.py): no false positive on 261 benign prompts, recall
88/91 on attacks. Those corpora were used to write the heuristics. On
attacks written afterwards and not yet tuned on, recall was 4/20 and 7/20
on two sets of rephrasings and 0/12 on paraphrases that avoid the usual
keywords (false positives 0/30, 1/30, 0/20 on new benign prompts): this is
a keyword filter, and a classifier model behind the `Detector` protocol is
the way to catch paraphrases.
"""

from __future__ import annotations

from sidelight_sidecar.guardrails.detectors.base import Finding
from sidelight_sidecar.guardrails.detectors.injection_rules import HEURISTICS, Heuristic
from sidelight_sidecar.guardrails.detectors.normalize import fold

INJECTION_ENTITY = "PROMPT_INJECTION"
DEFAULT_THRESHOLD = 0.5

_SPLIT_TABLE = bytes(c if chr(c).isalnum() else ord(" ") for c in range(256))
# The same after lower-casing: for ASCII text, whose fold is its lower case, one
# `translate` gives the words without folding first.
_LOWER_SPLIT_TABLE = bytes(_SPLIT_TABLE[ord(chr(c).lower())] for c in range(128)) + bytes(128)
_AHEAD = 200  # characters after a trigger: longer than any heuristic's match
_ALL_TRIGGERS = frozenset().union(*(h.triggers for h in HEURISTICS))


class InjectionDetector:
    """Prompt-injection heuristics; reports the matches once the score reaches the threshold."""

    name = "prompt_injection"
    entities = frozenset({INJECTION_ENTITY})

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold

    def find(self, text: str) -> list[Finding]:
        """The heuristic matches in `text`, each with the text's score; none below the threshold."""
        if text.isascii():
            words = text.encode().translate(_LOWER_SPLIT_TABLE).split()
        else:
            words = fold(text).text.encode("ascii", "ignore").translate(_SPLIT_TABLE).split()
        present = _ALL_TRIGGERS.intersection(words)
        if not present:
            return []
        folded = fold(text)
        matches: dict[str, list[tuple[int, int]]] = {}
        for heuristic in HEURISTICS:
            spans = _search(heuristic, heuristic.triggers & present, folded.text)
            if spans:
                matches[heuristic.name] = spans
        miss = 1.0
        for heuristic in HEURISTICS:
            if heuristic.name in matches:
                miss *= 1.0 - heuristic.weight
        score = round(1.0 - miss, 4)
        if score < self.threshold:
            return []
        return [
            Finding(*folded.original_span(start, end), INJECTION_ENTITY, self.name, score)
            for spans in matches.values()
            for start, end in spans
        ]


def _search(heuristic: Heuristic, triggers: frozenset[bytes], text: str) -> list[tuple[int, int]]:
    """Matches of the heuristic that start shortly before an occurrence of a trigger."""
    spans: set[tuple[int, int]] = set()
    for trigger in triggers:
        word = trigger.decode()
        at = text.find(word)
        while at != -1:
            lo, hi = max(0, at - heuristic.back), min(len(text), at + _AHEAD)
            spans.update(m.span() for m in heuristic.regex.finditer(text, lo, hi))
            at = text.find(word, at + len(word))
    return sorted(spans)
