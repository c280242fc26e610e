"""Credentials checks and error bodies, parsed by the official SDKs into their exception classes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import anthropic
import openai
import pytest

from sidelight_fake_provider.server import FakeProvider

OPENAI_KEY = "sk-right-0123456789"
ANTHROPIC_KEY = "sk-ant-right-0123456789"
AZURE_KEY = "azure-right"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def guarded() -> AsyncIterator[FakeProvider]:
    keys = {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY, "azure": AZURE_KEY}
    async with FakeProvider("guarded", api_keys=keys) as provider:
        yield provider


async def test_openai_wrong_key(guarded: FakeProvider) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{guarded.url}/v1", api_key="sk-wrong-0123456789", max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_api_key"
    assert caught.value.type == "invalid_request_error"
    assert "sk-wrong-0123456789" not in caught.value.message
    assert caught.value.response.headers["x-request-id"].startswith("req_")
    assert guarded.requests[0].credentials == {"authorization": "Bearer sk-wrong-0123456789"}


async def test_openai_missing_key(guarded: FakeProvider, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{guarded.url}/v1/models") as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)


async def test_right_keys_pass(guarded: FakeProvider) -> None:
    async with (
        openai.AsyncOpenAI(base_url=f"{guarded.url}/v1", api_key=OPENAI_KEY, max_retries=0) as oai,
        anthropic.AsyncAnthropic(base_url=guarded.url, api_key=ANTHROPIC_KEY, max_retries=0) as ant,
        openai.AsyncAzureOpenAI(
            azure_endpoint=guarded.url, api_key=AZURE_KEY, api_version="2024-10-21", max_retries=0
        ) as azure,
    ):
        await oai.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
        await ant.messages.create(model="c", max_tokens=5, messages=HI)  # type: ignore[arg-type]
        await azure.chat.completions.create(model="d", messages=HI)  # type: ignore[arg-type]
    assert [r.credentials for r in guarded.requests] == [
        {"authorization": f"Bearer {OPENAI_KEY}"},
        {"authorization": f"Bearer {ANTHROPIC_KEY}"},
        {"api-key": AZURE_KEY},
    ]


async def test_anthropic_wrong_and_missing_key(
    guarded: FakeProvider, http: aiohttp.ClientSession
) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=guarded.url, api_key="nope", max_retries=0
    ) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model="c", max_tokens=5, messages=HI)  # type: ignore[arg-type]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")
    body = {"model": "c", "max_tokens": 5, "messages": HI}
    async with http.post(f"{guarded.url}/v1/messages", json=body) as response:
        assert response.status == 401
        assert (await response.json())["error"]["message"] == "x-api-key header is required"
    headers = {"x-api-key": ANTHROPIC_KEY}
    async with http.post(f"{guarded.url}/v1/messages", json=body, headers=headers) as response:
        assert response.status == 200


async def test_azure_wrong_key(guarded: FakeProvider) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=guarded.url, api_key="bad", api_version="2024-10-21", max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="d", messages=HI)  # type: ignore[arg-type]
    assert caught.value.code == "401"
    assert "Access denied" in caught.value.message


async def test_unknown_paths_answer_in_the_family_format(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{fake.url}/v1/nothing", json={}) as response:
        assert response.status == 404
        assert await response.json() == {
            "error": {
                "message": "Invalid URL (POST /v1/nothing)",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
    async with http.get(f"{fake.url}/v1/chat/completions") as response:
        assert response.status == 404
    async with http.post(f"{fake.url}/v1/messages/batches", json={}) as response:
        assert response.status == 404
        assert (await response.json())["error"]["type"] == "not_found_error"
        assert "request-id" in response.headers


async def test_invalid_json_is_a_400_and_recorded(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{fake.url}/v1/messages", data=b"{not json") as response:
        assert response.status == 400
        assert (await response.json())["type"] == "error"
    async with http.post(f"{fake.url}/v1/chat/completions", data=b"[1, 2]") as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "invalid_request_error"
    first, second = fake.requests
    assert (first.body, second.body) == (None, [1, 2])


async def test_missing_messages_is_a_bad_request(aoai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await aoai.chat.completions.create(model="m", messages=[])
    assert (caught.value.param, caught.value.code) == ("messages", "missing_required_parameter")


async def test_anthropic_empty_messages_is_a_bad_request(aant: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await aant.messages.create(model="c", max_tokens=5, messages=[])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
