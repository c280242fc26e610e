"""Retry classification, backoff bounds and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from sidelight_sidecar.retry import Backoff, Outcome, classify_status, parse_retry_after


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b"{}", Outcome.SUCCESS),
        (429, b"{}", Outcome.RETRY),
        (500, b"{}", Outcome.RETRY),
        (503, b"{}", Outcome.RETRY),
        (529, b"{}", Outcome.RETRY),
        (400, b'{"error": {"code": "context_length_exceeded"}}', Outcome.FALLBACK),
        (
            400,
            b'{"type":"error","error":{"message":"prompt is too long: 1 > 0"}}',
            Outcome.FALLBACK,
        ),
        (400, b'{"error": {"code": "invalid_value"}}', Outcome.FAIL),
        (401, b"{}", Outcome.FAIL),
        (404, b"{}", Outcome.FAIL),
    ],
)
def test_classify(status: int, body: bytes, outcome: Outcome) -> None:
    assert classify_status(status, body) is outcome


def test_backoff_is_capped_exponential_with_jitter() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0)
    rng = random.Random(7)
    for retry, cap in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        delays = [backoff.delay(retry, rng) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "3600"}) == 60.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = parse_retry_after({"retry-after": later})
    assert seconds is not None
    assert 25 <= seconds <= 30
