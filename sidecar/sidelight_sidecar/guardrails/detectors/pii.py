"""Built-in PII detector: regex candidates on the text's shape, validated after.

Each entity has a scanner `(text, shape) -> spans`. Candidates are found on
the shape (see `shape.py`) with a literal first byte; checksums, ranges and
registries (`checks.py`) decide. Boundaries are ASCII-only on purpose, so a
number or an address glued to Chinese or Japanese text is still found.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import cache
from itertools import accumulate

from sidelight_sidecar.guardrails.detectors import checks
from sidelight_sidecar.guardrails.detectors.base import Finding
from sidelight_sidecar.guardrails.detectors.dob import find_birth_dates
from sidelight_sidecar.guardrails.detectors.phone import find_phones
from sidelight_sidecar.guardrails.detectors.shape import matches_from, shape_of

Span = tuple[int, int]
Scanner = Callable[[str, bytes], list[Span]]

# ---------------------------------------------------------------- email

_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![A-Za-z0-9-])"
)
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "pdf"})


def _emails(text: str, shape: bytes) -> list[Span]:
    found: list[Span] = []
    at = text.find("@")
    while at != -1:
        # The local part: the run of its characters before "@" (at most 65 of
        # them looked at), without leading dots.
        lo = max(0, at - 65)
        start = lo + len(text[lo:at].rstrip(_LOCAL_CHARS))
        start = at - len(text[start:at].lstrip("."))
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
                found.append((start, domain.end()))
        at = text.find("@", at + 1)
    return found


# ----------------------------------------------------------- credit card

# A run of digits with single spaces or dashes, 13 or more digits long. Nothing
# follows the repeat, so it can be possessive (no backtracking state: faster).
_CARD_RUN = re.compile(rb"0(?<![0aA_]0)(?:0|[ \-]0){12,}+")


def _cards(text: str, shape: bytes) -> list[Span]:
    found: list[Span] = []
    for run in _CARD_RUN.finditer(shape):
        start, end = run.span()
        if end < len(shape) and shape[end] in b"aA_":
            continue
        digits = text[start:end]
        groups = digits.replace("-", " ").split(" ")
        if len(groups) == 1:  # no separator: the run is a card or nothing is
            if (
                digits[0] in "23456"
                and len(digits) in _issuer_lengths(digits[:4])
                and checks.luhn_ok(digits)
            ):
                found.append((start, end))
            continue
        sizes = [len(g) for g in groups]
        # Digits before each group; group k starts at start + before[k] + k.
        before = list(accumulate(sizes, initial=0))
        i = 0
        while i < len(groups):
            # Cards start with 2-6; the longest group-aligned piece that is a card wins.
            if groups[i][0] in "23456":
                lengths = _issuer_lengths(groups[i][:4])
                for j in range(len(groups), i, -1):
                    if before[j] - before[i] in lengths and _card_ok(groups[i:j], sizes[i:j]):
                        found.append((start + before[i] + i, start + before[j] + j - 1))
                        i = j
                        break
                else:
                    i += 1
            else:
                i += 1
    return found


# The issuers' lengths depend on the first four digits only.
_issuer_lengths = cache(checks.card_lengths)


def _card_ok(groups: list[str], sizes: list[int]) -> bool:
    return checks.card_groups_ok(sizes) and checks.luhn_ok("".join(groups))


# ------------------------------------------------------------------ SSN

# The literal "000" first, the boundary after it: fewer places to try than every digit.
_SSN = re.compile(rb"000(?<![0aA_.\-]000)(?:([ \-])00\1|00)0000(?![0aA_]|[.\-][0aA])")
_SSN_CONTEXT = ("ssn", "social security", "ss#", "soc sec", "soc. sec")


def _ssns(text: str, shape: bytes) -> list[Span]:
    found: list[Span] = []
    for m in _SSN.finditer(shape):
        start, end = m.span()
        ssn = text[start:end]
        if m.group(1) is None:
            if not checks.ssn_ok(ssn[:3], ssn[3:5], ssn[5:]):
                continue
            before = text[max(0, start - 40) : start].lower()
            if not any(word in before for word in _SSN_CONTEXT):
                continue
        elif not checks.ssn_ok(ssn[:3], ssn[4:6], ssn[7:]):
            continue
        found.append((start, end))
    return found


# ----------------------------------------------------------------- IBAN

# The literal "AA00" first, for `matches_from`; the boundary after it.
_IBAN = re.compile(rb"AA00(?<![0aA_]AA00)(?: ?[0A]){11,32}")


def _ibans(text: str, shape: bytes) -> list[Span]:
    found: list[Span] = []
    for m in matches_from(b"AA00", _IBAN, shape):
        start, stop = m.span()
        length = checks.IBAN_LENGTHS.get(text[start : start + 2])
        if length is None:
            continue
        # Take groups until `length` characters; an IBAN never ends inside a group.
        counts = list(accumulate(map(len, text[start:stop].split(" "))))
        if length not in counts:
            continue
        end = start + length + counts.index(length)  # one space after each group before
        if end < len(shape) and shape[end] in b"0aA_":
            continue
        if checks.iban_ok(text[start:end].replace(" ", "")):
            found.append((start, end))
    return found


# ------------------------------------------------------------------- IP

_IPV4 = re.compile(rb"0(?<![0aA_.]0)0{0,2}+\.0{1,3}+\.0{1,3}+\.0{1,3}+(?![0aA_]|\.0)")
# What `ipaddress.IPv4Address` accepts: 0-255 with no leading zero, four times.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_OCTETS = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
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


def _ips(text: str, shape: bytes) -> list[Span]:
    found: list[Span] = []
    # An IPv4 address has a digit, a dot and a digit; much prose has none.
    for m in _IPV4.finditer(shape) if b"0.0" in shape else ():
        start, end = m.span()
        if _IPV4_OCTETS.fullmatch(text, start, end) and not _NUMBERED.search(
            text, max(0, start - 12), start
        ):
            found.append((start, end))
    seen_until = 0
    for hint in matches_from(b":", _IPV6_HINT, shape):
        # An address is at most 45 characters, so this window holds any that
        # contains the hint; a match cut by the window's end is left to the next.
        lo, hi = max(seen_until, hint.start() - 40), min(len(text), hint.end() + 45)
        for address in _IPV6.finditer(text, lo, hi):
            if address.end() == hi < len(text):
                break
            value = address.group()
            hexdigits = sum(ch in _HEX for ch in value)
            if (hexdigits >= 3 or value == "::1") and _parses(ipaddress.IPv6Address, value):
                found.append(address.span())
            seen_until = max(seen_until, address.end())
    return found


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
# What cannot be in a text without an ASCII digit (an IPv6 address can: "fe::ab").
_NEED_DIGITS = frozenset({"PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "DATE_OF_BIRTH"})


class PiiDetector:
    """EMAIL, PHONE, CREDIT_CARD, US_SSN, IBAN, IP_ADDRESS and DATE_OF_BIRTH."""

    name = "pii"

    def __init__(self, entities: frozenset[str] = PII_ENTITIES) -> None:
        unknown = entities - PII_ENTITIES
        if unknown:
            raise ValueError(f"not PII entities: {sorted(unknown)}")
        self.entities = entities
        self._scanners = tuple((e, _SCANNERS[e]) for e in sorted(entities))
        self._digit_free = tuple((e, s) for e, s in self._scanners if e not in _NEED_DIGITS)

    def find(self, text: str) -> list[Finding]:
        """Validated PII spans in `text`."""
        shape = shape_of(text)
        scanners = self._scanners if b"0" in shape else self._digit_free
        name = self.name
        return [
            Finding(start, end, entity, name)
            for entity, scan in scanners
            for start, end in scan(text, shape)
        ]
