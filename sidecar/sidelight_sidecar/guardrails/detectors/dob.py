"""DATE_OF_BIRTH: a date, only when a birth keyword stands just before it.

Dates are found from the shape (numeric forms) or from a year 19xx or 20xx
(written forms: "14 March 1985", "March 14, 1985", "14. März 1985",
"1985年3月14日"); then a keyword ("DOB", "date of birth", "born on",
"birthday", "geboren am", "né le", "fecha de nacimiento"...) must end at most
a few filler words before the date. A date with no such keyword is not
personal data by itself and is not reported.
"""

from __future__ import annotations

import re

from sidelight_sidecar.guardrails.detectors import checks
from sidelight_sidecar.guardrails.detectors.shape import matches_from

_NUMERIC_DATE = re.compile(
    rb"0(?<![0aA_.\-/]0)(?:000([\-./])00?\1|0?([\-./])00?\2(?:00)?)00(?![0aA_]|[\-./]0)"
)
# A year of the 1900s or 2000s on the text itself, found from the literal "19"
# or "20" (`matches_from`), so the many other four-digit groups (account and
# card numbers) are never candidates. Boundaries are ASCII, as on the shape.
_YEARS = tuple(
    (
        c,
        re.compile(
            rf"{c}(?<![0-9A-Za-z_]{c})(?<![0-9][\-./]{c})[0-9]{{2}}(?![0-9A-Za-z_]|[\-./][0-9])"
        ),
    )
    for c in ("19", "20")
)
_NUMBERS = re.compile(r"\d+")

_MONTH = (
    r"(?:jan(?:uary|uar|vier)?|feb(?:ruary|ruar)?|f[ée]vrier|m(?:ar(?:ch|s)?|[äa]e?rz)"
    r"|apr(?:il)?|avril|may|mai|june?|juni|juin|july?|juli|juillet|aug(?:ust)?|ao[ûu]t"
    r"|sep(?:t|tember|tembre)?|oct(?:ober|obre)?|okt(?:ober)?|nov(?:ember|embre)?"
    r"|dec(?:ember)?|d[ée]cembre|dez(?:ember)?|enero|febrero|marzo|abril|mayo|junio|julio"
    r"|agosto|septiembre|octubre|noviembre|diciembre|gennaio|febbraio|aprile|maggio"
    r"|giugno|luglio|settembre|ottobre|dicembre)"
)
_DAY = r"([0-3]?\d)(?:st|nd|rd|th|er)?\.?"
_WRITTEN_BEFORE_YEAR = re.compile(
    rf"(?<![\w.])(?:{_DAY}[\s\-/]+(?:of\s+|de\s+)?{_MONTH}\.?(?:\s+de)?|{_MONTH}\.?\s+{_DAY})[\s,\-/]*\Z",
    re.IGNORECASE,
)
_CJK_DATE = re.compile(r"\d{4}年([01]?\d)月([0-3]?\d)日")
# Where a keyword can start (on the lower-cased text), and the exact test from there.
_KEYWORD_START = re.compile(
    r"(?<![a-z])(?:d\.?o\.?b|birth|born|geboren|geburt|naissance|n[ée]e? le|nacimiento|nacid"
    r"|nascita|nat[oa] il|nascimento)|生年月日|出生|生日"
)
_KEYWORD_TO_DATE = re.compile(
    r"(?:d\.?o\.?b\.?|birth(?:\s*date|day)?|born|geboren(?:\s+am)?|geburtsdatum|geburtstag"
    r"|naissance|n[ée]e?\s+le|nacimiento|nacid[oa]\s+el|nascita|nat[oa]\s+il|nascimento"
    r"|生年月日|出生日期|生日)"
    r"[\s:：=\-–,()\"'*]*(?:(?:is|was|on|the|am|le|el|il|of|at)[\s:,]+){0,3}\Z",
    re.IGNORECASE,
)
_WINDOW = 60


def find_birth_dates(text: str, shape: bytes) -> list[tuple[int, int]]:
    """Spans of dates that a birth keyword introduces."""
    found: list[tuple[int, int]] = []
    for m in _NUMERIC_DATE.finditer(shape):
        start, end = m.span()
        if _numeric_ok(text[start:end]) and _introduced(text, start):
            found.append((start, end))
    for start, end in [m.span() for c, year in _YEARS for m in matches_from(c, year, text)]:
        if not _keywords(text, start):
            continue
        cjk = _CJK_DATE.match(text, start)
        if cjk:
            month, day = int(cjk.group(1)), int(cjk.group(2))
            if checks.date_ok(day, month, 2000) and _introduced(text, start):
                found.append((start, cjk.end()))
            continue
        written = _WRITTEN_BEFORE_YEAR.search(text, max(0, start - 40), start)
        if written:
            day = int(written.group(1) or written.group(2))
            if 1 <= day <= 31 and _introduced(text, written.start()):
                found.append((written.start(), end))
    return found


def _keywords(text: str, start: int) -> list[int]:
    """Where birth keywords start in the window before `start`, last first."""
    lo = max(0, start - _WINDOW)
    window = text[lo:start].lower()
    if len(window) != start - lo:  # lower() changed the length: no offsets to trust
        return list(range(start - 1, lo - 1, -1))
    return [lo + m.start() for m in _KEYWORD_START.finditer(window)][::-1]


def _numeric_ok(date: str) -> bool:
    a, b, c = (int(n) for n in _NUMBERS.findall(date))
    if a > 31:  # year first: Y-M-D
        return checks.date_ok(c, b, a)
    return checks.date_ok(a, b, c) or checks.date_ok(b, a, c)


def _introduced(text: str, start: int) -> bool:
    """A keyword, then at most a few filler words, then the date at `start`."""
    return any(_KEYWORD_TO_DATE.match(text, at, start) for at in _keywords(text, start))
