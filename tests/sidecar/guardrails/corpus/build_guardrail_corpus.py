"""Writes pii.jsonl: the labelled PII and SECRET corpus, from a fixed seed.

Run `python tests/sidecar/guardrails/corpus/build_guardrail_corpus.py` after
changing it; a test checks that the file matches. Values are made valid by
construction (Luhn, mod-97, SSA ranges) and put into sentences in several
languages and formats. Hard negatives carry no entity at all: order numbers,
versions, timestamps, ISBNs, UUIDs, git SHAs, Luhn-failing cards, invalid
SSN ranges, IBANs with bad checksums, dates without a birth keyword,
placeholder keys.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
Sample = dict[str, object]
B64URL = string.ascii_letters + string.digits + "-_"
ALNUM = string.ascii_letters + string.digits

# ------------------------------------------------------------------ values


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.digits, k=n))


def luhn_digit(body: str) -> str:
    """The check digit that makes `body` + digit pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (1 if i % 2 else 2)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def email(rng: random.Random) -> str:
    first = rng.choice(["jane", "john", "maria", "li", "olga", "ahmed", "yuki", "pierre", "ana"])
    last = rng.choice(["doe", "smith", "muller", "wang", "ivanova", "khan", "tanaka", "dubois"])
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first[0]}{last}",
            f"{first}_{last}",
            f"{first}+news",
            f"{first}.{last}{rng.randint(1, 99)}",
            f"{first.title()}.{last.title()}",
            f"{last}-{first}",
        ]
    )
    domain = rng.choice(
        ["example.com", "example.org", "mail.example.co.uk", "acme-corp.io", "uni-heidelberg.de",
         "company.fr", "gmail.com", "outlook.com", "proton.me", "sub.domain.example.net",
         "xn--mller-kva.de", "test.example.travel"]
    )  # fmt: skip
    return f"{local}@{domain}"


PHONE_FORMATS = [
    "(415) 555-{4}", "415-555-{4}", "415.555.{4}", "+1 415 555 {4}", "+1-212-555-{4}",
    "1-800-555-{4}", "+1 (646) 555-{4}", "+1415555{4}", "+44 20 7946 {4}", "+44 7700 900{3}",
    "+44 (0)20 7946 {4}", "+49 30 {6}", "+49 151 {8}", "+33 1 23 45 67 {2}", "+33 6 12 34 56 {2}",
    "+34 612 345 {3}", "+39 06 6982 {4}", "+31 20 123 {4}", "+41 44 668 {4}", "+46 8 123 456 {2}",
    "+353 1 234 {4}", "+48 22 123 45 {2}", "+91 98765 {5}", "+86 138 0013 {4}", "+81 3-1234-{4}",
    "+82 2-312-{4}", "+61 2 9374 {4}", "+55 11 91234-{4}", "+52 55 1234 {4}", "+7 495 123-45-{2}",
    "+27 21 123 {4}", "+971 4 123 {4}", "+65 6123 {4}", "0044 20 7946 {4}", "020 7946 {4}",
    "06 12 34 56 {2}", "0171 {7}",
]  # fmt: skip


def phone(rng: random.Random) -> str:
    fmt = rng.choice(PHONE_FORMATS)
    for n in range(8, 1, -1):
        fmt = fmt.replace("{" + str(n) + "}", _digits(rng, n))
    return fmt


CARD_BRANDS = {
    "visa": ("4", 16), "visa19": ("4", 19), "mastercard": ("5{1-5}", 16),
    "mastercard2": ("2{221-720}", 16), "amex": ("3{4,7}", 15), "discover": ("6011", 16),
    "discover65": ("65", 16), "jcb": ("35{28-89}", 16), "diners": ("36", 14),
    "unionpay": ("62", 16), "maestro": ("6759", 16), "mir": ("220{0-4}", 16),
}  # fmt: skip


def card(rng: random.Random, brand: str | None = None) -> str:
    prefix, length = CARD_BRANDS[brand or rng.choice(list(CARD_BRANDS))]
    if "{" in prefix:
        head, spec = prefix[: prefix.index("{")], prefix[prefix.index("{") + 1 : -1]
        if "-" in spec:
            lo, hi = spec.split("-")
            prefix = head + str(rng.randint(int(lo), int(hi)))
        else:
            prefix = head + rng.choice(spec.split(","))
    body = prefix + _digits(rng, length - len(prefix) - 1)
    number = body + luhn_digit(body)
    style = rng.choice(["compact", "space", "dash"])
    if style == "compact":
        return number
    sizes = {15: [4, 6, 5], 14: [4, 6, 4]}.get(length, [4] * (length // 4) + [length % 4])
    parts, pos = [], 0
    for size in filter(None, sizes):
        parts.append(number[pos : pos + size])
        pos += size
    return (" " if style == "space" else "-").join(parts)


def ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    sep = rng.choice(["-", "-", "-", " "])
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


IBAN_FORMATS = {
    "DE": "18n", "GB": "4a14n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n",
    "BE": "12n", "CH": "5n12c", "AT": "16n", "PL": "24n", "SE": "20n", "NO": "11n", "DK": "14n",
    "FI": "14n", "IE": "4a14n", "PT": "21n", "LU": "3n13c", "CZ": "20n", "SA": "2n18c",
    "AE": "19n", "TR": "5n1n16c",
}  # fmt: skip


def _iban_check(country: str, bban: str) -> str:
    number = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(number) % 97:02d}"


def iban(rng: random.Random, *, spaced: bool) -> str:
    country = rng.choice(list(IBAN_FORMATS))
    bban = ""
    spec = IBAN_FORMATS[country]
    for count, kind in zip(*[iter(_split_spec(spec))] * 2, strict=True):
        alphabet = {
            "n": string.digits,
            "a": string.ascii_uppercase,
            "c": string.ascii_uppercase + string.digits,
        }[kind]
        bban += "".join(rng.choices(alphabet, k=int(count)))
    compact = country + _iban_check(country, bban) + bban
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if spaced else compact


def _split_spec(spec: str) -> list[str]:
    out, num = [], ""
    for ch in spec:
        if ch.isdigit():
            num += ch
        else:
            out += [num, ch]
            num = ""
    return out


def mutate_iban(rng: random.Random, value: str) -> str:
    """The same IBAN with its check digits changed, so that mod-97 fails."""
    check = int(value[2:4])
    return value[:2] + f"{(check + rng.randint(1, 50)) % 97 + 2:02d}"[-2:] + value[4:]


def ip(rng: random.Random) -> str:
    octets = [
        rng.choice([10, 172, 192, 51, 203, 8]),
        rng.randint(0, 255),
        rng.randint(0, 255),
        rng.randint(1, 254),
    ]
    h = [f"{rng.randint(1, 0xFFFF):x}" for _ in range(8)]
    return rng.choice(
        [".".join(map(str, octets)), ".".join(map(str, octets)), ":".join(h),
         f"2001:db8::{h[0]}", f"fe80::{h[1]}:{h[2]}", "::1", f"::ffff:{'.'.join(map(str, octets))}",
         f"{h[0]}:{h[1]}::{h[2]}", f"2001:0db8:85a3:0000:0000:8a2e:{h[3]}:{h[4]}"]
    )  # fmt: skip


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip


def birth_date(rng: random.Random) -> str:
    y, m, d = rng.randint(1940, 2010), rng.randint(1, 12), rng.randint(1, 28)
    month = MONTHS[m - 1]
    return rng.choice(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{m:02d}/{d:02d}/{y}",
            f"{d:02d}/{m:02d}/{y}",
            f"{d:02d}.{m:02d}.{y}",
            f"{month} {d}, {y}",
            f"{d} {month} {y}",
            f"{month[:3]} {d}, {y}",
            f"{d}. März {y}",
            f"{d} de marzo de {y}",
            f"{y}年{m}月{d}日",
            f"{d}/{m}/{str(y)[2:]}",
        ]
    )


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def secret(rng: random.Random) -> str:
    kind = rng.randrange(13)
    if kind == 12:
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        payload = _b64url(json.dumps({"sub": _digits(rng, 10), "iat": 1700000000}).encode())
        return f"{header}.{payload}.{_b64url(rng.randbytes(32))}"
    return [
        lambda: "sk-" + _rand(rng, ALNUM, 20) + "T3BlbkFJ" + _rand(rng, ALNUM, 20),
        lambda: "sk-proj-" + _rand(rng, B64URL, rng.randint(48, 156)),
        lambda: "sk-svcacct-" + _rand(rng, B64URL, 64),
        lambda: "sk-ant-api03-" + _rand(rng, B64URL, 93) + "AA",
        lambda: rng.choice(["ghp_", "gho_", "ghs_"]) + _rand(rng, ALNUM, 36),
        lambda: "github_pat_" + _rand(rng, ALNUM, 22) + "_" + _rand(rng, ALNUM, 59),
        lambda: (
            rng.choice(["xoxb-", "xoxp-"])
            + _digits(rng, 11)
            + "-"
            + _digits(rng, 13)
            + "-"
            + _rand(rng, ALNUM, 24)
        ),
        lambda: (
            rng.choice(["sk_live_", "rk_live_", "sk_test_"])
            + _rand(rng, ALNUM, rng.randint(24, 99))
        ),
        lambda: "AIza" + _rand(rng, B64URL, 35),
        lambda: rng.choice(["AKIA", "ASIA"]) + _rand(rng, string.ascii_uppercase + "234567", 16),
        lambda: "sk-" + _rand(rng, ALNUM, 48),
        lambda: "ghr_" + _rand(rng, ALNUM, 36),
    ][kind]()


def private_key(rng: random.Random) -> str:
    label = rng.choice(["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "])
    lines = [base64.b64encode(rng.randbytes(48)).decode() for _ in range(rng.randint(3, 8))]
    return (
        f"-----BEGIN {label}PRIVATE KEY-----\n"
        + "\n".join(lines)
        + f"\n-----END {label}PRIVATE KEY-----"
    )


# ------------------------------------------------------------------ corpus

TEMPLATES = json.loads((HERE / "templates.json").read_text(encoding="utf-8"))


def _render(template: str, kind: str, make: Callable[[], str]) -> Sample:
    values = [make()]
    if "{w}" in template:
        values.append(make())
    text = template.replace("{v}", values[0]).replace("{w}", values[-1])
    return {"text": text, "entities": [{"type": kind, "value": v} for v in values]}


def _negatives(rng: random.Random) -> list[Sample]:
    def fill(text: str) -> str:
        digits = "".join(rng.choices(string.digits, k=12))
        bad = card(rng, "visa")
        bad_compact = bad.replace(" ", "").replace("-", "")
        bad_card = bad_compact[:-1] + str((int(bad_compact[-1]) + 1) % 10)
        ean12 = "40" + digits[:10]
        ean = ean12 + str(
            (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(ean12)) % 10) % 10
        )
        unknown = "9" + digits + "12"
        unknown += luhn_digit(unknown)
        area = rng.choice(["000", "666", "900", "987"])
        return text.format(
            n=rng.randint(1, 9),
            n4=f"{rng.randint(1, 9999):04d}",
            n6=digits[:6],
            a=rng.randint(1, 20),
            b=rng.randint(0, 30),
            c=rng.randint(0, 9),
            ean=ean,
            bad_card=bad_card,
            bad_card_spaced=" ".join(bad_card[i : i + 4] for i in range(0, 16, 4)),
            unknown_iin=unknown,
            bad_ssn=rng.choice(
                [
                    f"{area}-12-3456",
                    "123-00-4567",
                    "123-45-0000",
                    f"{area}-{digits[:2]}-{digits[2:6]}",
                ]
            ),
            plain9=digits[:9],
            bad_iban=mutate_iban(rng, iban(rng, spaced=True)),
            bad_iban_compact=mutate_iban(rng, iban(rng, spaced=False)),
        )

    out: list[Sample] = []
    for texts in TEMPLATES["negatives"].values():
        for text in texts:
            out.append({"text": fill(text), "entities": []})
    for text in TEMPLATES["negatives"]["NUMBERS"][
        24:33
    ]:  # the randomised ones, again with other values
        out.append({"text": fill(text), "entities": []})
    return out


def _records(rng: random.Random) -> list[Sample]:
    out: list[Sample] = []
    for _ in range(20):
        values = {
            "EMAIL": email(rng),
            "PHONE": phone(rng),
            "CREDIT_CARD": card(rng),
            "DATE_OF_BIRTH": birth_date(rng),
            "US_SSN": ssn(rng),
            "IBAN": iban(rng, spaced=rng.random() < 0.5),
            "IP_ADDRESS": ip(rng),
            "SECRET": secret(rng),
        }
        text = (
            f"Customer record\nemail: {values['EMAIL']}\nphone: {values['PHONE']}\n"
            f"card: {values['CREDIT_CARD']}\nDOB: {values['DATE_OF_BIRTH']}\n"
            f"SSN: {values['US_SSN']}\nIBAN: {values['IBAN']}\n"
            f"last login from {values['IP_ADDRESS']} using key {values['SECRET']}\n"
        )
        out.append({"text": text, "entities": [{"type": k, "value": v} for k, v in values.items()]})
    return out


def build() -> list[Sample]:
    """The corpus, deterministic."""
    rng = random.Random(20240614)
    makers: dict[str, Callable[[], str]] = {
        "EMAIL": lambda: email(rng),
        "PHONE": lambda: phone(rng),
        "CREDIT_CARD": lambda: card(rng),
        "US_SSN": lambda: ssn(rng),
        "IBAN": lambda: iban(rng, spaced=rng.random() < 0.6),
        "IP_ADDRESS": lambda: ip(rng),
        "SECRET": lambda: secret(rng),
    }
    samples: list[Sample] = []
    for kind, templates in TEMPLATES["templates"].items():
        for i in range(48):
            samples.append(_render(templates[i % len(templates)], kind, makers[kind]))
    for i in range(48):
        samples.append(
            _render(
                TEMPLATES["birth_date_templates"][i % 14], "DATE_OF_BIRTH", lambda: birth_date(rng)
            )
        )
    for i in range(6):
        key = private_key(rng)
        samples.append(
            {"text": f"deploy key:\n{key}\nthanks", "entities": [{"type": "SECRET", "value": key}]}
        )
        token = base64.b64encode(rng.randbytes(30)).decode()
        samples.append(
            {
                "text": f"curl -H 'Authorization: Bearer {token}' https://api.internal/v{i}",
                "entities": [{"type": "SECRET", "value": token}],
            }
        )
    for template in (
        "aws_secret_access_key = {v}",
        'AWS_SECRET_ACCESS_KEY="{v}"',
        '{{"SecretAccessKey": "{v}"}}',
        "aws secret access key: {v}",
    ):
        key = _rand(rng, ALNUM + "/+", 40)
        samples.append(
            {"text": template.format(v=key), "entities": [{"type": "SECRET", "value": key}]}
        )
    samples.extend(TEMPLATES["hard_positives"])
    samples.extend(_records(rng))
    samples.extend(_negatives(rng))
    return samples


def main() -> None:
    """Write pii.jsonl next to this file."""
    lines = [json.dumps(s, ensure_ascii=False) for s in build()]
    (HERE / "pii.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
