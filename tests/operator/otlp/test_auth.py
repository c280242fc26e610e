"""The relay's token cache: one review per token lifetime, refusals remembered briefly."""

from __future__ import annotations

import pytest

from sidelight_operator.controlplane.auth import Unauthenticated
from sidelight_operator.otlp.auth import CachedAuthenticator
from tests.operator.otlp.peers import POD, TokenAuthenticator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cached(
    ttl_s: float = 300, refusal_ttl_s: float = 30, max_entries: int = 100
) -> tuple[CachedAuthenticator, TokenAuthenticator, Clock]:
    reviews, clock = TokenAuthenticator(), Clock()
    auth = CachedAuthenticator(
        reviews, ttl_s=ttl_s, refusal_ttl_s=refusal_ttl_s, max_entries=max_entries, clock=clock
    )
    return auth, reviews, clock


async def test_a_token_is_reviewed_once_per_ttl() -> None:
    auth, reviews, clock = cached(ttl_s=60)
    assert await auth.authenticate("token-chat", "ipv4:10.0.0.7:5000") == POD
    clock.now += 59
    assert await auth.authenticate("token-chat", "ipv4:10.0.0.7:5000") == POD
    assert reviews.reviews == 1
    clock.now += 2
    assert await auth.authenticate("token-chat", "ipv4:10.0.0.7:5000") == POD
    assert reviews.reviews == 2


async def test_a_refusal_is_remembered_for_the_refusal_ttl() -> None:
    auth, reviews, clock = cached(refusal_ttl_s=30)
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="token rejected"):
            await auth.authenticate("forged", "ipv4:10.0.0.7:5000")
    assert reviews.reviews == 1
    clock.now += 31
    with pytest.raises(Unauthenticated):
        await auth.authenticate("forged", "ipv4:10.0.0.7:5000")
    assert reviews.reviews == 2


async def test_no_token_is_refused_without_a_review() -> None:
    auth, reviews, _ = cached()
    with pytest.raises(Unauthenticated, match="no bearer token"):
        await auth.authenticate(None, "ipv4:10.0.0.7:5000")
    assert reviews.reviews == 0


async def test_failures_of_the_review_are_not_remembered() -> None:
    auth, reviews, _ = cached()
    reviews.failure = OSError("API server down")
    with pytest.raises(OSError, match="down"):
        await auth.authenticate("token-chat", "ipv4:10.0.0.7:5000")
    reviews.failure = None
    assert await auth.authenticate("token-chat", "ipv4:10.0.0.7:5000") == POD


async def test_the_cache_keeps_at_most_max_entries() -> None:
    auth, reviews, _ = cached(max_entries=1)
    await auth.authenticate("token-chat", "ipv4:10.0.0.7:5000")
    await auth.authenticate("token-other", "ipv4:10.0.0.8:5000")
    await auth.authenticate("token-chat", "ipv4:10.0.0.7:5000")
    assert reviews.reviews == 3
