"""The quota step through a real sidecar: clamping, refusal, window rollover, downgrade, meter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from sidelight_sidecar.quota import DEFAULT_MAX_OUTPUT_TOKENS
from sidelight_sidecar.quota.meter import OutputLimitReached, QuotaMeter
from sidelight_sidecar.sse import SSEEvent
from sidelight_sidecar.streams import AnthropicPassthrough, OpenAIPassthrough
from sidelight_sidecar.tokens import TokenCounter
from tests.sidecar.harness import OPENAI_KEY
from tests.sidecar.quota.rig import ROUTES, QuotaRig

PROMPT = "please echo these few words back"


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[QuotaRig]:
    rig = QuotaRig(tmp_path, limit=3_000, sidecar_count=1)
    await rig.start()
    try:
        yield rig
    finally:
        await rig.stop()


async def ask(client: openai.AsyncOpenAI, max_tokens: int | None = None) -> str:
    reply = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens or openai.omit,
    )
    return reply.choices[0].message.content or ""


async def test_a_call_without_max_tokens_carries_the_default_cap(tmp_path: Path) -> None:
    rig = QuotaRig(tmp_path, limit=20_000, sidecar_count=1)
    await rig.start()
    try:
        url = rig.sidecars[0].url
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0
        ) as client:
            await until_served(client)
        [body] = [r.body for r in rig.openai_fake.requests]
        assert body["max_completion_tokens"] == DEFAULT_MAX_OUTPUT_TOKENS
    finally:
        await rig.stop()


async def test_a_limit_the_lease_cannot_cover_is_lowered(small: QuotaRig) -> None:
    url = small.sidecars[0].url
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0) as c:
        await until_served(c, max_tokens=5_000)
    [body] = [r.body for r in small.openai_fake.requests]
    counted = TokenCounter().count_chat(body, "gpt-4o")
    assert body["max_tokens"] == 3_000 - counted  # the whole budget, less the input


async def until_served(client: openai.AsyncOpenAI, max_tokens: int | None = None) -> None:
    """Call until the sidecar holds a lease (the first call may come before it)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            await ask(client, max_tokens)
            return
        except openai.RateLimitError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_a_spent_quota_refuses_until_its_window_ends(small: QuotaRig) -> None:
    url = small.sidecars[0].url
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0) as c:
        await until_served(c)
        refusal: openai.RateLimitError | None = None
        for _ in range(200):
            try:
                await ask(c, max_tokens=40)
            except openai.RateLimitError as error:
                if "exceeded" in error.message:
                    refusal = error
                    break
        assert refusal is not None
        assert refusal.code == "quota_exceeded"
        assert "Quota 'shop/payments' exceeded:" in refusal.message
        assert "of 3,000 tokens used in this window; it resets at " in refusal.message
        retry_after = int(refusal.response.headers["retry-after"])
        window_end = (int(small.clock()) // 3600 + 1) * 3600
        assert abs(retry_after - (window_end - time.time())) <= 2
        assert refusal.response.headers["x-should-retry"] == "false"
        assert refusal.response.headers["x-sidelight-error-source"] == "quota"
        billed = sum(tokens for _, tokens in await small.billed_tokens())
        assert billed <= 3_000
        small.offset += 3600  # the operator's clock reaches the next window
        deadline = time.monotonic() + 10
        while True:
            try:
                assert await ask(c, max_tokens=40)
                break
            except openai.RateLimitError:
                assert time.monotonic() < deadline, "no fresh budget after the window ended"
                await asyncio.sleep(0.1)


async def test_a_downgrade_quota_sends_calls_to_the_cheaper_backend(tmp_path: Path) -> None:
    routes = ROUTES.replace(
        "notify: {webhookSecretRef: {name: hook, key: url}}", "hardAction: {downgradeTo: claude}"
    )
    rig = QuotaRig(tmp_path, limit=300, sidecar_count=1, routes=routes)
    await rig.start()
    try:
        url = rig.sidecars[0].url
        async with aiohttp.ClientSession() as http:
            backends = []
            for _ in range(40):
                body = {
                    "model": "gpt-4o",
                    "max_tokens": 100,
                    "messages": [{"role": "user", "content": PROMPT}],
                }
                async with http.post(f"{url}/v1/chat/completions", json=body) as response:
                    if response.status == 200:
                        backends.append(response.headers["x-sidelight-backend"])
                    await response.read()
        assert "gpt-4o" in backends
        assert backends[-1] == "claude"  # served, outside the spent quota
        assert len(rig.anthropic_fake.requests) == backends.count("claude")
    finally:
        await rig.stop()


def test_the_meter_ends_a_stream_that_ignores_its_limit() -> None:
    meter = QuotaMeter(OpenAIPassthrough(False), 2, "openai")
    role = SSEEvent(None, '{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}')
    word = SSEEvent(None, '{"choices":[{"index":0,"delta":{"content":"hi"}}]}')
    assert meter.feed(role)
    assert meter.feed(word)
    assert meter.feed(word)
    assert meter.counted == 2
    with pytest.raises(OutputLimitReached, match="reservation of 2 output tokens"):
        meter.feed(word)
    anthropic_meter = QuotaMeter(AnthropicPassthrough(), 1, "anthropic")
    anthropic_meter.feed(SSEEvent("ping", "{}"))
    anthropic_meter.feed(SSEEvent("content_block_delta", '{"delta":{"text":"a"}}'))
    with pytest.raises(OutputLimitReached):
        anthropic_meter.feed(SSEEvent("content_block_delta", '{"delta":{"text":"b"}}'))
