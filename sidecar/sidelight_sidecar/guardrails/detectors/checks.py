"""Validators that turn regex candidates into findings: checksums, ranges, registries.

Pure functions over the candidate's characters. They are what keeps order
numbers, dates and versions out of the PII results, so each one says which
public rule it implements.
"""

from __future__ import annotations

# ISO 13616 IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

# Each ASCII digit to its value, and to the value of its double less 9 when over 9.
_DIGIT_VALUE = bytes.maketrans(b"0123456789", bytes(range(10)))
_LUHN_DOUBLE = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))
_LETTER_VALUES = {ord(c): str(10 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}

# Card issuer prefixes (IIN ranges) and the lengths each issues:
# (lowest prefix, highest prefix, lengths).
_IIN_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({16, 19})),  # Visa (13 digits: no longer issued; EAN-13 look-alikes)
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset(range(16, 20))),  # Discover
    (644, 649, frozenset(range(16, 20))),
    (65, 65, frozenset(range(16, 20))),
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (300, 305, frozenset(range(14, 20))),  # Diners Club
    (36, 36, frozenset(range(14, 20))),
    (38, 39, frozenset(range(14, 20))),
    (62, 62, frozenset(range(16, 20))),  # UnionPay
    (2200, 2204, frozenset({16})),  # Mir
    (5018, 5018, frozenset(range(16, 20))),  # Maestro (shorter ones collide with EAN-13)
    (5020, 5020, frozenset(range(16, 20))),
    (5038, 5038, frozenset(range(16, 20))),
    (6304, 6304, frozenset(range(16, 20))),
    (6759, 6759, frozenset(range(16, 20))),
    (6761, 6763, frozenset(range(16, 20))),
)

_ISSUER_LENGTHS: dict[str, frozenset[int]] = {
    str(prefix): lengths for lo, hi, lengths in _IIN_RANGES for prefix in range(lo, hi + 1)
}

# ITU-T E.164 country calling codes. One- and two-digit codes are listed;
# three-digit codes are the free prefixes of the zones that use them.
_CC_1 = frozenset({"1", "7"})
_CC_2 = frozenset(
    {
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
        "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
        "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94",
        "95", "98",
    }
)  # fmt: skip
_CC_3_PREFIXES = frozenset(
    {
        "21", "22", "23", "24", "25", "26", "29", "35", "37", "38", "42", "50", "59", "67",
        "68", "69", "80", "85", "87", "88", "96", "97", "99",
    }
)  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """ISO/IEC 7812 check digit (the Luhn mod-10 algorithm), on ASCII digits."""
    raw = digits.encode()
    kept = raw[-1::-2].translate(_DIGIT_VALUE)
    doubled = raw[-2::-2].translate(_LUHN_DOUBLE)
    return (sum(kept) + sum(doubled)) % 10 == 0


def card_lengths(digits: str) -> frozenset[int]:
    """The lengths that the issuers of this prefix use; empty for no known issuer."""
    found: frozenset[int] = frozenset()
    for width in (1, 2, 3, 4):
        found |= _ISSUER_LENGTHS.get(digits[:width], frozenset())
    return found


def card_groups_ok(groups: list[int]) -> bool:
    """Grouping as printed on cards: 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4, or none."""
    if len(groups) == 1 or groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return groups[:-1].count(4) == len(groups) - 1 and 1 <= groups[-1] <= 4


def iban_ok(compact: str) -> bool:
    """ISO 13616: a known country, its length, and the ISO 7064 mod-97 check."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    # The country code and the check digits go to the end, letters become 10-35.
    # `translate` with a dict costs a failed look-up per character that stays:
    # most account numbers are all digits, so only the country code is translated.
    bban = compact[4:]
    if not (bban.isascii() and bban.isdigit()):
        bban = bban.translate(_LETTER_VALUES)
    return int(bban + compact[:2].translate(_LETTER_VALUES) + compact[2:4]) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """SSA rules: no area 000, 666 or 900-999, no group 00, no serial 0000."""
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


def country_code(digits: str) -> str | None:
    """The E.164 country calling code that starts `digits`, if any."""
    if digits[:1] in _CC_1:
        return digits[:1]
    if digits[:2] in _CC_2:
        return digits[:2]
    if len(digits) >= 3 and digits[:2] in _CC_3_PREFIXES:
        return digits[:3]
    return None


def date_ok(day: int, month: int, year: int) -> bool:
    """A calendar date plausible as a birth date (1900-2099, or a two-digit year)."""
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return False
    if year >= 100 and not 1900 <= year <= 2099:
        return False
    if month == 2:
        return day <= 29
    return day <= 30 or month in (1, 3, 5, 7, 8, 10, 12)
