"""SECRET: provider API keys, cloud credentials, private keys, bearer tokens, JWTs.

Most keys are long runs of `[A-Za-z0-9_-]` with a known prefix. A byte table
turns the text into runs (`w`) and gaps in C; ordinary prose has no run of 16
or more, so it costs one `translate` and one `find`. Each long run is matched
whole against the provider formats. Keys that need their context (a bearer
token, an AWS secret access key) and PEM blocks are looked up from a literal
(`earer`, `ecret`, `-----BEGIN`) found with `str.find`. A key that looks like
a placeholder ("sk-proj-xxxx...", "Bearer YOUR_TOKEN_HERE") is not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sidelight_sidecar.guardrails.detectors.base import Finding

SECRET_ENTITIES = frozenset({"SECRET"})

_TOKEN_TABLE = bytes(
    ord("w") if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_-") else ord(" ")
    for c in range(256)
)
_LONG_RUN = b"w" * 16

_PREFIXED_KEY = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{32,}"  # Anthropic
    r"|sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}"  # OpenAI project/service keys
    r"|sk-[A-Za-z0-9]{20,}"  # OpenAI legacy
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
    r"|gh[pousr]_[A-Za-z0-9]{36,255}"  # GitHub
    r"|github_pat_[A-Za-z0-9_]{22,255}"
    r"|xox[baprs]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|AIza[A-Za-z0-9_\-]{35}"  # Google API key
    r"|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"  # AWS access key id
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)(?![A-Za-z0-9\-._~+/=])")
_AWS_SECRET = re.compile(
    r"(?:aws)?[_\-. ]?secret[_\-. ]?(?:access)?[_\-. ]?key[\"']?\s*[:=]\s*[\"']?"
    r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
    re.IGNORECASE,
)
_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
    r"(?:[\s\S]*?-----END \1PRIVATE KEY\2-----|[A-Za-z0-9+/=:\s-]*)"
)


def _random_enough(token: str) -> bool:
    """Not a placeholder: its second half has 8 distinct characters and 2 classes."""
    tail = token[-max(16, len(token) // 2) :]
    lower = any(c.islower() for c in tail)
    upper = any(c.isupper() for c in tail)
    digit = any(c.isdigit() for c in tail)
    return lower + upper + digit >= 2 and len(set(tail)) >= 8


class SecretDetector:
    """Credentials of the common providers, private keys and tokens."""

    name = "secret"

    def __init__(self, entities: frozenset[str] = SECRET_ENTITIES) -> None:
        if entities - SECRET_ENTITIES:
            raise ValueError(f"not secret entities: {sorted(entities - SECRET_ENTITIES)}")
        self.entities = SECRET_ENTITIES

    def find(self, text: str) -> list[Finding]:
        """Spans of credentials in `text` (a bearer token without the word "Bearer")."""
        runs = text.encode("ascii", "replace").translate(_TOKEN_TABLE)
        pos = runs.find(_LONG_RUN)
        spans = set(self._runs(text, runs, pos)) if pos != -1 else set()
        if "earer" in text or "EARER" in text:
            spans.update(self._bearer_tokens(text))
        if "ecret" in text or "ECRET" in text:
            spans.update(self._aws_secret_keys(text))
        if "-----BEGIN " in text:
            spans.update(m.span() for m in _PEM.finditer(text))
        if not spans:
            return []
        return [Finding(start, end, "SECRET", self.name) for start, end in spans]

    @staticmethod
    def _runs(text: str, runs: bytes, pos: int) -> Iterator[tuple[int, int]]:
        while pos != -1:
            end = runs.find(b" ", pos)
            end = len(runs) if end == -1 else end
            jwt = _JWT.match(text, pos) if text.startswith("eyJ", pos) else None
            if jwt:
                end = jwt.end()
                yield jwt.span()
            elif _PREFIXED_KEY.fullmatch(text, pos, end) and _random_enough(text[pos:end]):
                yield pos, end
            pos = runs.find(_LONG_RUN, end)

    @staticmethod
    def _bearer_tokens(text: str) -> Iterator[tuple[int, int]]:
        for needle in ("earer", "EARER"):
            at = text.find(needle)
            while at != -1:
                m = _BEARER.match(text, at + 5) if at and text[at - 1] in "Bb" else None
                if m and _random_enough(m.group(1)):
                    yield m.span(1)
                at = text.find(needle, at + 5)

    @staticmethod
    def _aws_secret_keys(text: str) -> Iterator[tuple[int, int]]:
        for needle in ("ecret", "ECRET"):
            at = text.find(needle)
            while at != -1:
                # "aws_secret_access_key = '<40 characters>'" fits in this window.
                hi = min(len(text), at + 100)
                m = _AWS_SECRET.search(text, max(0, at - 8), hi)
                if m and not m.end() == hi < len(text) and _random_enough(m.group(1)):
                    yield m.span(1)
                at = text.find(needle, at + 5)
