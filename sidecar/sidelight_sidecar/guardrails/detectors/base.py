"""The detector contract: what a detector finds, and the registry that builds them.

A detector is anything with a `name`, the `entities` it can report and a
`find(text)` that returns `Finding`s: offsets into the text it was given,
never the matched values. The built-in detectors are regexes with validators;
a stronger one (an NER model, say) registers its entities in a
`DetectorRegistry` and the guardrail engine uses it without change.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol


class Finding(NamedTuple):
    """One match: `text[start:end]` is an `entity` found by `detector`.

    `score` is the detector's confidence in [0, 1]; rule-based detectors that
    validate their candidates report 1.0.
    """

    start: int
    end: int
    entity: str
    detector: str
    score: float = 1.0


class Detector(Protocol):
    """Finds entities in a text. Built once per configuration, called per request."""

    @property
    def name(self) -> str:
        """A short name for spans and findings."""
        ...

    @property
    def entities(self) -> frozenset[str]:
        """The entity types this detector can report."""
        ...

    def find(self, text: str) -> list[Finding]:
        """The findings in `text`, in any order; they may overlap."""
        ...


DetectorFactory = Callable[[frozenset[str]], Detector]
"""Builds a detector for a subset of the entities that it was registered for."""


class UnknownEntityError(ValueError):
    """A rule names an entity that no registered detector reports."""


class DetectorRegistry:
    """Entity name -> the factory of the detector that reports it.

    Registering an entity again replaces its detector, so a team can put a
    model-based EMAIL detector in place of the regex one.
    """

    def __init__(self) -> None:
        self._factories: dict[str, DetectorFactory] = {}

    def register(self, entities: Iterable[str], factory: DetectorFactory) -> None:
        """Make `factory` the detector for each of `entities`."""
        for entity in entities:
            self._factories[entity] = factory

    @property
    def entities(self) -> frozenset[str]:
        """Every entity that some registered detector reports."""
        return frozenset(self._factories)

    def build(self, entities: Iterable[str]) -> tuple[Detector, ...]:
        """One detector per factory, each asked only for the requested entities."""
        wanted: dict[DetectorFactory, set[str]] = {}
        for entity in entities:
            factory = self._factories.get(entity)
            if factory is None:
                known = ", ".join(sorted(self._factories))
                raise UnknownEntityError(f"unknown entity {entity!r} (known: {known})")
            wanted.setdefault(factory, set()).add(entity)
        return tuple(factory(frozenset(names)) for factory, names in wanted.items())


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings sorted by start: the longest wins, then the earliest."""
    given = findings if isinstance(findings, list) else list(findings)
    if len(given) < 2:
        return list(given)
    # The common case, findings that do not touch each other, needs no ranking.
    by_start = sorted(given)
    prev_end = by_start[0].start
    for finding in by_start:
        if finding.start < prev_end or finding.end <= finding.start:
            return _longest_first(given)
        prev_end = finding.end
    return by_start


def _longest_first(findings: list[Finding]) -> list[Finding]:
    ranked = sorted(findings, key=lambda f: (f.start - f.end, f.start))
    starts: list[int] = []
    kept: list[Finding] = []
    for finding in ranked:
        i = bisect_left(starts, finding.start)
        if i < len(kept) and kept[i].start < finding.end:
            continue
        if i > 0 and kept[i - 1].end > finding.start:
            continue
        starts.insert(i, finding.start)
        kept.insert(i, finding)
    return kept
