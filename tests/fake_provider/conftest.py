"""Fixtures for the fake provider's tests: a provider per test and SDK clients bound to it.

Async tests get `fake` (served in the test's loop) with the async clients;
synchronous tests get `fake_thread` (served by a background thread) with the
sync clients. Every client is closed by its fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import anthropic
import openai
import pytest

from sidelight_fake_provider.server import FakeProvider, FakeProviderThread


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("primary") as provider:
        yield provider


@pytest.fixture
def fake_thread() -> Iterator[FakeProviderThread]:
    with FakeProviderThread("threaded") as provider:
        yield provider


@pytest.fixture
async def aoai(fake: FakeProvider) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def aant(fake: FakeProvider) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=fake.url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def oai(fake_thread: FakeProviderThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{fake_thread.url}/v1", api_key="sk-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def ant(fake_thread: FakeProviderThread) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=fake_thread.url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
