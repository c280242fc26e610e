"""Each fault type, rule matching and spending, and the `/_fake/faults` admin API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable
from typing import Any, TypeVar

import aiohttp
import anthropic
import httpx2
import openai
import pytest

from sidelight_fake_provider.delivery import DONE, MALFORMED_DATA, parse_events
from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.server import FakeProvider

HI: Any = [{"role": "user", "content": "one two three"}]
CHAT = {"model": "m", "messages": HI}
MESSAGES = {"model": "c", "max_tokens": 50, "messages": HI}
T = TypeVar("T")


async def test_status_with_retry_after_is_spent_after_times(
    fake: FakeProvider, aoai: openai.AsyncOpenAI
) -> None:
    fake.add_fault(FaultRule(path="/v1/chat/completions", status=429, retry_after="1", times=2))
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            await aoai.chat.completions.create(model="m", messages=HI)
        assert caught.value.response.headers["retry-after"] == "1"
        assert caught.value.code == "rate_limit_exceeded"
    assert fake.faults == []
    completion = await aoai.chat.completions.create(model="m", messages=HI)
    assert completion.choices[0].message.content == "Echo: one two three"
    assert len(fake.requests) == 3


async def test_anthropic_statuses(fake: FakeProvider, aant: anthropic.AsyncAnthropic) -> None:
    fake.add_fault(FaultRule(path="/v1/messages", status=429, times=1))
    fake.add_fault(FaultRule(path="/v1/messages", status=529, times=1))
    with pytest.raises(anthropic.RateLimitError) as limited:
        await aant.messages.create(model="c", max_tokens=5, messages=HI)
    assert limited.value.body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of requests has exceeded your rate limit.",
        },
    }
    with pytest.raises(anthropic.OverloadedError):
        await aant.messages.create(model="c", max_tokens=5, messages=HI)


async def test_custom_bodies(fake: FakeProvider, aoai: openai.AsyncOpenAI) -> None:
    custom = {
        "error": {
            "message": "quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    fake.add_fault(FaultRule(status=429, body=custom, times=1))
    fake.add_fault(FaultRule(status=502, body="<html>bad gateway</html>", times=1))
    with pytest.raises(openai.RateLimitError) as limited:
        await aoai.chat.completions.create(model="m", messages=HI)
    assert limited.value.code == "insufficient_quota"
    with pytest.raises(openai.InternalServerError) as gateway:
        await aoai.chat.completions.create(model="m", messages=HI)
    assert gateway.value.status_code == 502
    assert gateway.value.response.text == "<html>bad gateway</html>"


async def test_server_error_default_body(fake: FakeProvider, aoai: openai.AsyncOpenAI) -> None:
    fake.add_fault(FaultRule(status=500))
    with pytest.raises(openai.InternalServerError) as caught:
        await aoai.embeddings.create(model="e", input="x")
    assert caught.value.type == "server_error"
    assert len(fake.faults) == 1


async def test_latency_delays_the_headers(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    fake.add_fault(FaultRule(latency_ms=200))
    started = time.monotonic()
    async with http.post(f"{fake.url}/v1/chat/completions", json=CHAT) as response:
        headers_at = time.monotonic() - started
        assert response.status == 200
    assert headers_at >= 0.2


@pytest.mark.parametrize("stream", [False, True])
async def test_first_byte_latency_delays_the_body(
    fake: FakeProvider, http: aiohttp.ClientSession, stream: bool
) -> None:
    fake.add_fault(FaultRule(first_byte_latency_ms=400))
    started = time.monotonic()
    async with http.post(
        f"{fake.url}/v1/chat/completions", json={**CHAT, "stream": stream}
    ) as response:
        headers_at = time.monotonic() - started
        await response.read()
        body_at = time.monotonic() - started
    assert headers_at < 0.4 <= body_at


async def _collect(items: AsyncIterable[T], into: list[T]) -> None:
    async for item in items:
        into.append(item)


async def test_cut_stream_openai(
    fake: FakeProvider, aoai: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    fake.add_fault(FaultRule(cut_after_chunks=3))
    lines: list[bytes] = []
    body = {**CHAT, "stream": True}
    async with http.post(f"{fake.url}/v1/chat/completions", json=body) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await _collect(response.content, lines)
    events = parse_events(b"".join(lines).decode())
    assert len(events) == 3
    assert DONE not in [event.payload for event in events]
    stream = await aoai.chat.completions.create(model="m", messages=HI, stream=True)
    received: list[object] = []
    with pytest.raises(openai.APIConnectionError):
        await _collect(stream, received)
    assert len(received) == 3


async def test_cut_stream_anthropic(fake: FakeProvider, aant: anthropic.AsyncAnthropic) -> None:
    fake.add_fault(FaultRule(path="/v1/messages", cut_after_chunks=4, times=1))
    seen: list[str] = []

    async def consume() -> None:
        async with aant.messages.stream(model="c", max_tokens=50, messages=HI) as stream:
            async for event in stream:
                seen.append(event.type)

    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        await consume()
    assert "message_start" in seen
    assert "message_stop" not in seen


async def test_malformed_chunk(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    fake.add_fault(FaultRule(malformed_chunk_at=2))
    async with http.post(f"{fake.url}/v1/messages", json={**MESSAGES, "stream": True}) as response:
        events = parse_events(await response.text())
    assert events[1].name == "content_block_start"
    assert events[1].payload == MALFORMED_DATA.decode()
    assert events[-1].name == "message_stop"


async def test_malformed_chunk_breaks_the_sdk(fake: FakeProvider, aoai: openai.AsyncOpenAI) -> None:
    fake.add_fault(FaultRule(malformed_chunk_at=2))
    stream = await aoai.chat.completions.create(model="m", messages=HI, stream=True)
    received: list[object] = []
    with pytest.raises(ValueError, match="Expecting value"):
        await _collect(stream, received)
    assert len(received) == 1
    await stream.close()


async def test_context_length_exceeded(
    fake: FakeProvider, aoai: openai.AsyncOpenAI, aant: anthropic.AsyncAnthropic
) -> None:
    fake.add_fault(FaultRule(context_length_exceeded=True))
    with pytest.raises(openai.BadRequestError) as openai_error:
        await aoai.chat.completions.create(model="m", messages=HI)
    assert (openai_error.value.code, openai_error.value.param) == (
        "context_length_exceeded",
        "messages",
    )
    assert openai_error.value.type == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as anthropic_error:
        await aant.messages.create(model="c", max_tokens=5, messages=HI)
    error: Any = anthropic_error.value.body
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith("prompt is too long: ")
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=fake.url, api_key="k", api_version="2024-10-21", max_retries=0
    ) as azure:
        with pytest.raises(openai.BadRequestError) as azure_error:
            await azure.chat.completions.create(model="d", messages=HI)
    assert azure_error.value.code == "context_length_exceeded"


async def test_rules_match_in_order_by_path_and_model(
    fake: FakeProvider, aoai: openai.AsyncOpenAI
) -> None:
    fake.add_fault(FaultRule(model="other", status=500))
    fake.add_fault(FaultRule(path="/v1/embeddings", status=503))
    fake.add_fault(FaultRule(path="/v1/*", model="m", status=429, times=1))
    fake.add_fault(FaultRule(status=404))
    with pytest.raises(openai.RateLimitError):
        await aoai.chat.completions.create(model="m", messages=HI)
    with pytest.raises(openai.NotFoundError):
        await aoai.chat.completions.create(model="m", messages=HI)
    with pytest.raises(openai.InternalServerError) as caught:
        await aoai.embeddings.create(model="m", input="x")
    assert caught.value.status_code == 503


async def test_endpoint_name_picks_one_of_several_providers() -> None:
    rule = {"match": {"endpoint_name": "east"}, "status": 503}
    async with (
        FakeProvider("east") as east,
        FakeProvider("west") as west,
        aiohttp.ClientSession() as http,
    ):
        for provider in (east, west):
            async with http.post(f"{provider.url}/_fake/faults", json=rule) as response:
                assert response.status == 201
        async with http.post(f"{east.url}/v1/chat/completions", json=CHAT) as response:
            assert response.status == 503
        async with http.post(f"{west.url}/v1/chat/completions", json=CHAT) as response:
            assert response.status == 200
    assert [r.endpoint_name for r in east.requests + west.requests] == ["east", "west"]


async def test_admin_fault_api(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    rule = {"match": {"path": "/v1/messages"}, "status": 529, "times": 2, "latency_ms": 1}
    async with http.post(f"{fake.url}/_fake/faults", json=rule) as response:
        assert response.status == 201
        created = (await response.json())["fault"]
    assert created["match"] == {"path": "/v1/messages", "model": None, "endpoint_name": None}
    assert (created["status"], created["times"]) == (529, 2)
    async with http.post(f"{fake.url}/v1/messages", json=MESSAGES) as response:
        assert response.status == 529
    async with http.get(f"{fake.url}/_fake/faults") as response:
        assert [f["times"] for f in (await response.json())["faults"]] == [1]
    async with http.delete(f"{fake.url}/_fake/faults") as response:
        assert response.status == 204
    assert fake.faults == []
    async with http.post(f"{fake.url}/_fake/faults", json={"bogus": 1}) as response:
        assert response.status == 400
        assert "bogus" in (await response.json())["error"]
    async with http.post(f"{fake.url}/_fake/faults", data=b"{") as response:
        assert response.status == 400
    assert fake.faults == []
