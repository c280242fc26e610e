"""Redaction with typed placeholders, and putting the values back.

`RedactionMap` numbers placeholders per request and type (`<EMAIL_1>`,
`<CARD_2>`), so the same value gets the same placeholder in every message
of the request. It is the only object that holds matched values, in memory;
its repr shows counts only. `StreamRestorer` puts values back into a
streamed answer, holding back only a tail that may be the start of a
placeholder split across chunks.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable

from sidelight_sidecar.guardrails.detectors.base import Finding, resolve_overlaps

_SHORT_TYPES = {
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP",
    "DATE_OF_BIRTH": "DOB",
}
_SEPARATORS = {"CARD", "SSN", "PHONE", "IBAN"}  # same value however it is spaced
_NOT_NAME = re.compile(r"[^A-Z0-9_]+")
_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*_[0-9]+)>")
_PARTIAL = re.compile(r"<[A-Z0-9_]*\Z")


def placeholder_type(entity: str) -> str:
    """The type in an entity's placeholders: CREDIT_CARD -> CARD, EMPLOYEE_ID as is."""
    short = _SHORT_TYPES.get(entity)
    if short is not None:
        return short
    return _NOT_NAME.sub("_", entity.upper()).strip("_") or "REDACTED"


class RedactionMap:
    """Placeholders and the values they stand for, for one request."""

    __slots__ = ("_counts", "_placeholders", "_values")

    def __init__(self) -> None:
        self._placeholders: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, entity: str, value: str, *, restorable: bool = True) -> str:
        """The placeholder for `value`; the same value gets the same one."""
        kind = placeholder_type(entity)
        key = (kind, _comparable(kind, value))
        name = self._placeholders.get(key)
        if name is None:
            n = self._counts.get(kind, 0) + 1
            self._counts[kind] = n
            name = f"{kind}_{n}"
            self._placeholders[key] = name
        if restorable:
            self._values.setdefault(name, value)
        return f"<{name}>"

    def restore(self, text: str) -> str:
        """`text` with every restorable placeholder replaced by its value."""
        if "<" not in text or not self._values:
            return text
        return _PLACEHOLDER.sub(lambda m: self._values.get(m.group(1), m.group(0)), text)

    @property
    def restorable(self) -> bool:
        """True when some placeholder can be put back."""
        return bool(self._values)

    def counts(self) -> dict[str, int]:
        """Distinct values per placeholder type."""
        return dict(self._counts)

    def __len__(self) -> int:
        return len(self._placeholders)

    def __repr__(self) -> str:
        return f"RedactionMap({len(self)} placeholders, {len(self._values)} restorable)"


def _comparable(kind: str, value: str) -> str:
    if kind in _SEPARATORS:
        return "".join(filter(str.isalnum, value)).upper()
    if kind == "EMAIL":
        return value.casefold()
    return value


def redact(
    text: str,
    findings: Iterable[Finding],
    mapping: RedactionMap,
    *,
    restorable: bool | Container[Finding] = True,
) -> str:
    """`text` with each finding replaced by its placeholder; overlaps: the longest wins.

    `restorable` says which values `mapping` may put back: all, none, or those findings.
    """
    kept = resolve_overlaps(findings)
    if not kept:
        return text
    out: list[str] = []
    pos = 0
    for f in kept:
        back = restorable if isinstance(restorable, bool) else f in restorable
        out.append(text[pos : f.start])
        out.append(mapping.placeholder(f.entity, text[f.start : f.end], restorable=back))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


class StreamRestorer:
    """Restores placeholders in a streamed text, whatever the chunk boundaries.

    `feed` returns what can be emitted now; only a trailing `<...` that could
    still become a placeholder is held back. `flush` returns the rest.
    """

    __slots__ = ("_held", "_limit", "_mapping")

    def __init__(self, mapping: RedactionMap, *, longest: int = 64) -> None:
        self._mapping = mapping
        self._held = ""
        self._limit = longest

    def feed(self, chunk: str) -> str:
        """The restored text that is safe to emit after `chunk`."""
        text = self._held + chunk
        self._held = ""
        tail = _PARTIAL.search(text, max(0, len(text) - self._limit))
        if tail is not None:
            self._held = text[tail.start() :]
            text = text[: tail.start()]
        return self._mapping.restore(text)

    def flush(self) -> str:
        """Whatever was held back, restored as far as it can be."""
        text, self._held = self._held, ""
        return self._mapping.restore(text)
