"""A hard limit that holds: 50 SDK clients over three sidecars, the operator down midway.

The rig (rig.py) runs three real sidecars leasing from one real lease server.
50 clients (the official OpenAI and Anthropic SDKs, streaming and not, some
without max_tokens) call until their quota is exceeded. What the fake
providers billed, counted from their admin API, never passes the limit;
every refusal is a 429 that the SDK parses into its RateLimitError with type
`quota_exceeded`; the soft threshold's webhook arrives exactly once, within
5 seconds of the request that crossed it, with the ledger's numbers. While
the load runs the lease server is stopped and started again from its ledger
file (an operator restart): the bound still holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import openai
import pytest

from tests.sidecar.harness import ANTHROPIC_KEY, OPENAI_KEY
from tests.sidecar.quota.rig import QuotaRig

LIMIT = 100_000
CLIENTS = 50
WORDS = 150  # a prompt of this many words
DEADLINE_S = 90.0
PROMPT = " ".join(f"word{i}" for i in range(WORDS))


@dataclass
class Tally:
    """What the clients saw."""

    served: int = 0
    refused: int = 0
    exceeded: int = 0
    wrong: list[str] = field(default_factory=list)


def check_refusal(error: openai.RateLimitError | anthropic.RateLimitError, tally: Tally) -> bool:
    """Whether the 429 is well formed; True when it says the quota is exceeded for good."""
    body = error.body
    detail = body.get("error", body) if isinstance(body, dict) else {}
    if error.status_code != 429 or not isinstance(detail, dict):
        tally.wrong.append(f"malformed 429: {body!r}")
        return False
    if detail.get("type") != "quota_exceeded" or "shop/payments" not in str(detail.get("message")):
        tally.wrong.append(f"unexpected 429: {body!r}")
    if error.response.headers.get("retry-after") is None:
        tally.wrong.append("a 429 without Retry-After")
    tally.refused += 1
    return "exceeded" in str(detail.get("message"))


async def openai_client(url: str, index: int, tally: Tally, stop: asyncio.Event) -> None:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=OPENAI_KEY, max_retries=0)
    stream = index % 2 == 1
    max_tokens = None if index % 5 == 0 else 100
    async with client:
        while not stop.is_set():
            try:
                if stream:
                    chunks = await client.chat.completions.create(
                        model="gpt-4o",
                        messages=[{"role": "user", "content": PROMPT}],
                        stream=True,
                        max_tokens=max_tokens or openai.omit,
                    )
                    async for _ in chunks:
                        pass
                else:
                    await client.chat.completions.create(
                        model="gpt-4o",
                        messages=[{"role": "user", "content": PROMPT}],
                        max_tokens=max_tokens or openai.omit,
                    )
                tally.served += 1
            except openai.RateLimitError as error:
                if check_refusal(error, tally):
                    tally.exceeded += 1
                    return
                await asyncio.sleep(0.2)
            except openai.APIError as error:
                tally.wrong.append(f"openai {type(error).__name__}: {error}")
                return


async def anthropic_client(url: str, index: int, tally: Tally, stop: asyncio.Event) -> None:
    client = anthropic.AsyncAnthropic(base_url=url, api_key=ANTHROPIC_KEY, max_retries=0)
    stream = index % 2 == 1
    async with client:
        while not stop.is_set():
            try:
                if stream:
                    async with client.messages.stream(
                        model="claude",
                        max_tokens=100,
                        messages=[{"role": "user", "content": PROMPT}],
                    ) as events:
                        await events.get_final_message()
                else:
                    await client.messages.create(
                        model="claude",
                        max_tokens=100,
                        messages=[{"role": "user", "content": PROMPT}],
                    )
                tally.served += 1
            except anthropic.RateLimitError as error:
                if check_refusal(error, tally):
                    tally.exceeded += 1
                    return
                await asyncio.sleep(0.2)
            except anthropic.APIError as error:
                tally.wrong.append(f"anthropic {type(error).__name__}: {error}")
                return


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[QuotaRig]:
    rig = QuotaRig(tmp_path, limit=LIMIT)
    await rig.start()
    try:
        yield rig
    finally:
        await rig.stop()


async def until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_the_hard_limit_holds_over_three_sidecars_with_the_operator_down_midway(
    rig: QuotaRig,
) -> None:
    tally = Tally()
    stop = asyncio.Event()
    clients = []
    for index in range(CLIENTS):
        url = rig.sidecars[index % len(rig.sidecars)].url
        client = openai_client if index % 3 else anthropic_client
        clients.append(asyncio.create_task(client(url, index, tally, stop)))
    try:
        await until(lambda: rig.spent >= 30_000, DEADLINE_S)
        await rig.stop_operator()
        down_from = rig.spent
        await asyncio.sleep(3 * rig.ttl_s)  # leases run out; calls spend only what they held
        billed_down = sum(tokens for _, tokens in await rig.billed_tokens())
        await rig.start_operator()
        done, _ = await asyncio.wait(clients, timeout=DEADLINE_S)
        assert len(done) == CLIENTS, "clients still calling at the deadline"
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert tally.wrong == []
    billed = await rig.billed_tokens()
    total = sum(tokens for _, tokens in billed)
    assert total <= LIMIT
    assert total > 0.9 * LIMIT  # the budget was used, not starved
    assert tally.exceeded == CLIENTS
    assert billed_down > down_from  # the sidecars kept serving from their leases

    assert rig.quotas is not None
    await asyncio.wait_for(rig.quotas.notifier.drain(), 10)
    soft = [(at, body) for at, body in rig.hook.received if body["threshold"] == "soft"]
    assert len(soft) == 1
    at, body = soft[0]
    running, crossed_at = 0, None
    for arrived, tokens in billed:
        running += tokens
        if running >= 0.8 * LIMIT:
            crossed_at = arrived
            break
    assert crossed_at is not None
    assert at - crossed_at <= 5.0
    used = body["used"]
    assert isinstance(used, dict)
    assert 0.8 * LIMIT <= used["tokens"] <= total
    assert used["percent"] == pytest.approx(100 * used["tokens"] / LIMIT, abs=0.01)
    assert body["limits"] == {"tokens": LIMIT, "costUSD": None}
    assert body["quota"] == {"namespace": "shop", "name": "payments"}
    assert [b["threshold"] for _, b in rig.hook.received].count("hard") == 1
