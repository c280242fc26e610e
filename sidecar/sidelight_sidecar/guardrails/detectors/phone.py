"""PHONE: international (+CC, 00CC), North American and national numbers.

Candidates are runs of digits and separators on the shape with at least
seven digits; a run is split at whitespace and the longest contiguous pieces
that form a phone number are kept. A number must have the structure of one:
a real country calling code and a national number of a real length after
`+` or `00`; 3-3-4 with a valid area code in North America; a trunk `0` and
a common grouping (or a word like "phone" just before it) for national
formats. Plain digit strings, dates, versions, ISBNs and order numbers fail
these rules.
"""

from __future__ import annotations

import re
from itertools import accumulate

from sidelight_sidecar.guardrails.detectors import checks
from sidelight_sidecar.guardrails.detectors.shape import matches_from

# One regex per first byte, each with a literal first byte that `re` finds
# with a fast scan; a character class there costs 3x as much (9 vs 3 µs per KB
# on bench/guardrails_bench.py). After it: six more digits ahead (a run of
# separators never gives back a character that could be a digit, so it is
# possessive: no backtracking state), then up to the last digit of the run.
_REST = rb"(?=(?:[ ().\-]*+0){6})[0 ().\-]*0\)?"
_DIGIT_LED = re.compile(rb"0(?<![0aA_.+\-/(]0)(?<!:0)" + _REST)
_PLUS_LED = re.compile(rb"\+(?<![0aA_.+\-/(]\+)" + _REST)
_PAREN_LED = re.compile(rb"\((?<![0aA_.+\-/(]\()\+?" + _REST)
_NANP_SHAPE = re.compile(rb"(?:\(000\) ?|000[ .\-])000[ .\-]0000")
# Digit groups with one separator between them; one group may be in parentheses.
_STRUCTURE = re.compile(r"\+?(?:\([0-9]{1,5}\)|[0-9]+)(?:[ .\-]?(?:\([0-9]{1,5}\)|[0-9]+))*")
_DIGIT_GROUPS = re.compile(r"[0-9]+")
_MAX_CHUNKS = 6

_NATIONAL_GROUPINGS = frozenset(
    {(2, 2, 2, 2, 2), (3, 4, 4), (4, 3, 4), (3, 3, 4), (2, 4, 4), (5, 6), (4, 7), (5, 3, 3)}
)
_PHONE_WORDS = (
    "tel", "phone", "call", "mobile", "cell", "fax", "whatsapp", "sms", "dial", "reach",
    "contact", "kontakt", "handy", "ruf", "número", "numero", "nummer", "電話", "电话", "手机",
)  # fmt: skip


def find_phones(text: str, shape: bytes) -> list[tuple[int, int]]:
    """Spans of phone numbers in `text`."""
    spans = [m.span() for m in _DIGIT_LED.finditer(shape)]
    digit_led = len(spans)
    spans += [m.span() for m in matches_from(b"+", _PLUS_LED, shape)]
    spans += [m.span() for m in matches_from(b"(", _PAREN_LED, shape)]
    if len(spans) > digit_led:
        spans.sort()  # each regex has its own first byte: no two spans share a start
    found: list[tuple[int, int]] = []
    seen = 0
    for start, end in spans:
        if start < seen:  # "20 7946 0958" inside "+44 20 7946 0958"
            continue
        seen = end
        if text[start] not in "+(0" and not _NANP_SHAPE.search(shape, start, end):
            continue  # cheap exit for dates, IDs, card and account numbers
        _phones_in_run(text, shape, start, end, found)
    return found


def _phones_in_run(
    text: str, shape: bytes, start: int, end: int, found: list[tuple[int, int]]
) -> None:
    """Add the longest runs of whole chunks (split at spaces) that are phone numbers."""
    run = shape[start:end]
    parts = run.split(b" ")
    # With few chunks the whole run is the first piece tried, and the usual phone.
    whole = len(parts) <= _MAX_CHUNKS
    if whole:
        if _worth_checking(text[start], run.count(b"0"), True) and _is_phone(
            text, start, end, starts_run=True
        ):
            found.append((start, end))
            return
        if len(parts) == 1:
            return
    chunks: list[tuple[int, int]] = []
    counts: list[int] = []
    pos = start
    for part in parts:
        if part:
            chunks.append((pos, pos + len(part)))
            counts.append(part.count(b"0"))
        pos += len(part) + 1
    before = list(accumulate(counts, initial=0))  # digits before each chunk
    i = 0
    while i < len(chunks):
        a = chunks[i][0]
        top = min(len(chunks), i + _MAX_CHUNKS)
        if whole and i == 0:
            top -= 1  # the whole run, tried above
        for j in range(top, i, -1):
            b = chunks[j - 1][1]
            if _worth_checking(text[a], before[j] - before[i], i == 0) and _is_phone(
                text, a, b, starts_run=i == 0
            ):
                found.append((a, b))
                i = j
                break
        else:
            i += 1


def _worth_checking(first: str, digits: int, starts_run: bool) -> bool:
    """The digit counts that some accepted format has, from the first character."""
    if first in "+(" or (first == "0" and starts_run):
        return 7 <= digits <= 17
    if first == "0":
        return 9 <= digits <= 11
    return digits in (10, 11)


def _is_phone(text: str, a: int, b: int, *, starts_run: bool) -> bool:
    s = text[a:b]
    if s.startswith("(+"):  # "(+44) 20 ..."
        s = "+" + s[2:].replace(")", "", 1)
    if _STRUCTURE.fullmatch(s) is None or s.count("(") > 1 or ("." in s and ("-" in s or " " in s)):
        return False
    groups = _DIGIT_GROUPS.findall(s)
    if "(0)" in s:  # "+44 (0)20 ...": the trunk prefix is not dialled from abroad
        groups.remove("0")
    digits = "".join(groups)
    if not 7 <= len(digits) <= 15:
        return False
    if s[0] == "+":
        return _international(groups, digits)
    if digits.startswith("00"):  # "0044 20 ...", not the middle of a longer number
        rest = [g for g in (groups[0][2:], *groups[1:]) if g]
        return starts_run and _international(rest, digits[2:])
    return _north_american(groups, s) or _national(groups, digits, s, text, a)


def _international(groups: list[str], digits: str) -> bool:
    cc = checks.country_code(digits)
    first = groups[0]
    if cc is None or len(first) < len(cc) or (len(first) <= 3 and first != cc):
        return False
    national = digits[len(cc) :]
    if cc == "1":
        return len(national) == 10 and national[0] not in "01"
    return 6 <= len(national) <= 13 and len(digits) <= 15


def _north_american(groups: list[str], s: str) -> bool:
    if groups[0] == "1" and len(groups) > 1:
        groups = groups[1:]
    sizes = [len(g) for g in groups]
    in_parens = s.find("(") != -1 and s.find("(") < s.find(groups[0])
    if sizes == [3, 3, 4] or (in_parens and sizes == [3, 7]):
        return groups[0][0] not in "01"
    return False


def _national(groups: list[str], digits: str, s: str, text: str, a: int) -> bool:
    if digits[0] != "0" or digits[1] == "0" or not 9 <= len(digits) <= 11 or len(groups) < 2:
        return False
    sizes = tuple(len(g) for g in groups)
    if not 2 <= sizes[0] <= 5 or any(not 2 <= n <= 8 for n in sizes):
        return False
    if sizes in _NATIONAL_GROUPINGS and ("." not in s or sizes == (2, 2, 2, 2, 2)):
        return True
    before = text[max(0, a - 30) : a].lower()
    return any(word in before for word in _PHONE_WORDS)
