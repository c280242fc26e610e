"""Request records, the `/_fake/requests` admin API, and the three ways of running the provider."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import aiohttp
import openai
import pytest

from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.server import FakeProvider, FakeProviderThread

HI = [{"role": "user", "content": "hi"}]


async def test_records_keep_what_was_received(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    before = time.time()
    headers = {"Authorization": "Bearer sk-a", "X-Custom": "yes"}
    body = {"model": "m", "messages": HI}
    async with http.post(
        f"{fake.url}/v1/chat/completions?trace=1", json=body, headers=headers
    ) as response:
        assert response.status == 200
    async with http.get(f"{fake.url}/_fake/faults"):
        pass
    (record,) = fake.requests
    assert (record.method, record.path, record.query) == (
        "POST",
        "/v1/chat/completions",
        {"trace": "1"},
    )
    assert record.headers["x-custom"] == "yes"
    assert record.credentials == {"authorization": "Bearer sk-a"}
    assert record.body == body
    assert record.endpoint_name == "primary"
    assert before <= record.time <= time.time()


async def test_admin_request_api(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{fake.url}/v1/models", headers={"x-api-key": "k"}):
        pass
    async with http.get(f"{fake.url}/_fake/requests") as response:
        (record,) = (await response.json())["requests"]
    assert record == fake.requests[0].to_json()
    assert (record["method"], record["path"], record["body"]) == ("GET", "/v1/models", None)
    assert record["headers"]["x-api-key"] == "k"
    async with http.delete(f"{fake.url}/_fake/requests") as response:
        assert response.status == 204
    assert fake.requests == []


def test_thread_variant_serves_sync_clients(
    fake_thread: FakeProviderThread, oai: openai.OpenAI
) -> None:
    fake_thread.add_fault(FaultRule(status=503, times=1))
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert oai.chat.completions.create(model="m", messages=HI).model == "m"  # type: ignore[arg-type]
    assert fake_thread.name == "threaded"
    assert len(fake_thread.requests) == 2
    fake_thread.clear_requests()
    assert fake_thread.requests == []


async def test_start_stop_and_url() -> None:
    provider = FakeProvider()
    with pytest.raises(RuntimeError):
        _ = provider.url
    await provider.start()
    assert provider.url.startswith("http://127.0.0.1:")
    url = provider.url
    await provider.stop()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{url}/v1/models")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_main_listen_serves_until_terminated() -> None:
    port = _free_port()
    code = (
        f"from sidelight_fake_provider.server import main_listen; main_listen('127.0.0.1', {port})"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=20)
        assert f"http://127.0.0.1:{port}" in line.decode()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/v1/models") as response,
        ):
            assert response.status == 200
            assert (await response.json())["object"] == "list"
    finally:
        process.terminate()
        await process.communicate()
    assert process.returncode is not None
