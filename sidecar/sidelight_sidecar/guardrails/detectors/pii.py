"""Built-in PII detector: regex candidates on the text's shape, validated after.

Each entity has a scanner `(text, shape) -> spans`. Candidates are found on
the shape (see `shape.py`) with a literal first byte; checksums, ranges and
registries (`checks.py`) decide. Boundaries are ASCII-only on purpose, so a
number or an address glued to Chinese or Japanese text is still found.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

from sidelight_sidecar.guardrails.detectors import checks
from sidelight_sidecar.guardrails.detectors.base import Finding
from sidelight_sidecar.guardrails.detectors.dob import find_birth_dates
from sidelight_sidecar.guardrails.detectors.phone import find_phones
from sidelight_sidecar.guardrails.detectors.shape import is_word_char, shape_of

Span = tuple[int, int]
Scanner = Callable[[str, bytes], Iterator[Span]]

# ---------------------------------------------------------------- email

_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![A-Za-z0-9-])"
)
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "pdf"})


def _emails(text: str, shape: bytes) -> Iterator[Span]:
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and at - start <= 64 and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        while start < at and text[start] == ".":
            start += 1
        domain = _DOMAIN.match(text, at + 1) if start < at else None
        if domain:
            name = text[start:at]
            ok = (
                at - start <= 64
                and not name.endswith(".")
                and ".." not in name
                and domain.group(1).lower() not in _FILE_SUFFIXES
                and domain.end() - start <= 254
            )
            if ok:
                yield start, domain.end()
        at = text.find("@", at + 1)


# ----------------------------------------------------------- credit card

# A run of digits with single spaces or dashes, 13 or more digits long.
_CARD_RUN = re.compile(rb"0(?<![0aA_]0)(?:[ \-]?0){12,}")
_CARD_SEPARATOR = re.compile(r"[ \-]")


def _cards(text: str, shape: bytes) -> Iterator[Span]:
    for run in _CARD_RUN.finditer(shape):
        start, end = run.span()
        if end < len(shape) and shape[end] in b"aA_":
            continue
        groups = _CARD_SEPARATOR.split(text[start:end])
        offsets = [start]  # where each group starts, and one past the last
        for g in groups:
            offsets.append(offsets[-1] + len(g) + 1)
        i = 0
        while i < len(groups):
            # Cards start with 2-6; the longest group-aligned piece that is a card wins.
            lengths = checks.card_lengths(groups[i]) if groups[i][0] in "23456" else frozenset()
            for j in range(len(groups), i, -1) if lengths else ():
                span = offsets[i], offsets[j] - 1
                if span[1] - span[0] - (j - i - 1) in lengths and _card_ok(groups[i:j]):
                    yield span
                    i = j
                    break
            else:
                i += 1


def _card_ok(groups: list[str]) -> bool:
    return checks.card_groups_ok([len(g) for g in groups]) and checks.luhn_ok("".join(groups))


# ------------------------------------------------------------------ SSN

_SSN = re.compile(rb"0(?<![0aA_.\-]0)00(?:([ \-])00\1|00)0000(?![0aA_]|[.\-][0aA])")
_SSN_CONTEXT = ("ssn", "social security", "ss#", "soc sec", "soc. sec")


def _ssns(text: str, shape: bytes) -> Iterator[Span]:
    for m in _SSN.finditer(shape):
        start, end = m.span()
        digits = "".join(ch for ch in text[start:end] if ch.isdigit())
        if not checks.ssn_ok(digits[:3], digits[3:5], digits[5:]):
            continue
        if m.group(1) is None:
            before = text[max(0, start - 40) : start].lower()
            if not any(word in before for word in _SSN_CONTEXT):
                continue
        yield start, end


# ----------------------------------------------------------------- IBAN

_IBAN = re.compile(rb"A(?<![0aA_]A)A00(?: ?[0A]){11,32}")


def _ibans(text: str, shape: bytes) -> Iterator[Span]:
    for m in _IBAN.finditer(shape):
        start = m.start()
        length = checks.IBAN_LENGTHS.get(text[start : start + 2])
        if length is None:
            continue
        # Take groups until `length` characters; an IBAN never ends inside a group.
        count, end = 0, start
        for part in text[start : m.end()].split(" "):
            count += len(part)
            end += len(part)
            if count >= length:
                break
            end += 1
        if count != length or (end < len(text) and is_word_char(text[end])):
            continue
        if checks.iban_ok(text[start:end].replace(" ", "")):
            yield start, end


# ------------------------------------------------------------------- IP

_IPV4 = re.compile(rb"0(?<![0aA_.]0)0{0,2}\.0{1,3}\.0{1,3}\.0{1,3}(?![0aA_]|\.0)")
_IPV6_HINT = re.compile(rb":[0aA]{0,4}:")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z_:]|\.[0-9])"
)
_HEX = frozenset("0123456789abcdefABCDEF")
# "section 4.2.1.3", "version 10.0.0.1": numbered things, not addresses.
_NUMBERED = re.compile(
    r"(?:version|ver|release|build|section|sec|chapter|clause|step|rule|figure|fig|table"
    r"|appendix|item|paragraph|§)\.?\s*\Z",
    re.IGNORECASE,
)


def _ips(text: str, shape: bytes) -> Iterator[Span]:
    for m in _IPV4.finditer(shape):
        start, end = m.span()
        if _parses(ipaddress.IPv4Address, text[start:end]) and not _NUMBERED.search(
            text, max(0, start - 12), start
        ):
            yield start, end
    seen_until = 0
    for hint in _IPV6_HINT.finditer(shape):
        # An address is at most 45 characters, so this window holds any that
        # contains the hint; a match cut by the window's end is left to the next.
        lo, hi = max(seen_until, hint.start() - 40), min(len(text), hint.end() + 45)
        for found in _IPV6.finditer(text, lo, hi):
            if found.end() == hi < len(text):
                break
            value = found.group()
            hexdigits = sum(ch in _HEX for ch in value)
            if (hexdigits >= 3 or value == "::1") and _parses(ipaddress.IPv6Address, value):
                yield found.span()
            seen_until = max(seen_until, found.end())


def _parses(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------- detector

_SCANNERS: dict[str, Scanner] = {
    "EMAIL": _emails,
    "PHONE": find_phones,
    "CREDIT_CARD": _cards,
    "US_SSN": _ssns,
    "IBAN": _ibans,
    "IP_ADDRESS": _ips,
    "DATE_OF_BIRTH": find_birth_dates,
}
PII_ENTITIES = frozenset(_SCANNERS)


class PiiDetector:
    """EMAIL, PHONE, CREDIT_CARD, US_SSN, IBAN, IP_ADDRESS and DATE_OF_BIRTH."""

    name = "pii"

    def __init__(self, entities: frozenset[str] = PII_ENTITIES) -> None:
        unknown = entities - PII_ENTITIES
        if unknown:
            raise ValueError(f"not PII entities: {sorted(unknown)}")
        self.entities = entities
        self._scanners = tuple((e, _SCANNERS[e]) for e in sorted(entities))

    def find(self, text: str) -> list[Finding]:
        """Validated PII spans in `text`."""
        shape = shape_of(text)
        return [
            Finding(start, end, entity, self.name)
            for entity, scan in self._scanners
            for start, end in scan(text, shape)
        ]
