"""When to retry, when to fall back, and how long to wait in between."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER_S = 60.0


class Outcome(Enum):
    """What the proxy does after one provider attempt."""

    SUCCESS = "success"
    RETRY = "retry"  # the same backend may succeed on another attempt
    FALLBACK = "fallback"  # skip to the next backend (context length)
    FAIL = "fail"  # the caller's own error: return it as it is


def classify_status(status: int, body: bytes) -> Outcome:
    """Classify an upstream HTTP answer."""
    if status < 300:
        return Outcome.SUCCESS
    if status in RETRYABLE_STATUSES:
        return Outcome.RETRY
    if status in (400, 413) and is_context_length_error(body):
        return Outcome.FALLBACK
    return Outcome.FAIL


def is_context_length_error(body: bytes) -> bool:
    """True for the providers' "prompt too long" errors (OpenAI and Anthropic)."""
    lowered = body[:4096].lower()
    return (
        b"context_length_exceeded" in lowered
        or b"prompt is too long" in lowered
        or b"maximum context length" in lowered
    )


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter."""

    base_s: float = 0.1
    max_s: float = 2.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        cap = min(self.max_s, self.base_s * (2 ** (retry - 1)))
        return rng.uniform(cap / 2, cap)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or a date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, min(float(millis) / 1000, MAX_RETRY_AFTER_S))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_S))
