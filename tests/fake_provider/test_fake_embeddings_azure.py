"""Embeddings, the model list, and the Azure OpenAI deployment paths."""

from __future__ import annotations

import aiohttp
import openai
import pytest
from openai.types import CreateEmbeddingResponse

from sidelight_fake_provider.content import EMBEDDING_DIMENSIONS, embedding_vector
from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.server import FakeProvider, FakeProviderThread

API_VERSION = "2024-10-21"


def test_float_embeddings(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], encoding_format="float"
    )
    assert result.model == "text-embedding-3-small"
    assert [item.index for item in result.data] == [0, 1]
    assert result.data[0].embedding == embedding_vector("hello world", EMBEDDING_DIMENSIONS)
    assert len(result.data[1].embedding) == EMBEDDING_DIMENSIONS
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)


def test_base64_embeddings_decode_to_the_same_vector(
    oai: openai.OpenAI, fake_thread: FakeProviderThread
) -> None:
    default = oai.embeddings.create(model="e", input="hello world", dimensions=7)
    assert fake_thread.requests[-1].body["encoding_format"] == "base64"
    assert default.data[0].embedding == embedding_vector("hello world", 7)


def test_token_array_input(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="e", input=[1, 2, 3], encoding_format="float")
    assert result.data[0].embedding == embedding_vector("1 2 3", EMBEDDING_DIMENSIONS)
    assert result.usage.prompt_tokens == 3


async def test_raw_embeddings_validate(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    body = {"model": "e", "input": "x"}
    async with http.post(f"{fake.url}/v1/embeddings", json=body) as response:
        parsed = CreateEmbeddingResponse.model_validate(await response.json())
    assert parsed.object == "list"


def test_models(oai: openai.OpenAI) -> None:
    models = list(oai.models.list())
    assert [m.id for m in models][:2] == ["gpt-4o-mini", "gpt-4o"]
    assert all(m.object == "model" for m in models)


async def test_custom_models() -> None:
    async with (
        FakeProvider(models=("only-one",)) as fake,
        openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key="k", max_retries=0) as client,
    ):
        page = await client.models.list()
    assert [m.id for m in page.data] == ["only-one"]


@pytest.fixture
def azure(fake_thread: FakeProviderThread) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=fake_thread.url, api_key="azure-key", api_version=API_VERSION, max_retries=0
    )


def test_azure_chat_and_embeddings(
    azure: openai.AzureOpenAI, fake_thread: FakeProviderThread
) -> None:
    with azure:
        completion = azure.chat.completions.create(
            model="my-deployment", messages=[{"role": "user", "content": "hi azure"}]
        )
        embedding = azure.embeddings.create(model="emb-deployment", input="x")
    assert completion.choices[0].message.content == "Echo: hi azure"
    assert completion.model == "my-deployment"
    assert embedding.model == "emb-deployment"
    chat, embed = fake_thread.requests
    assert chat.path == "/openai/deployments/my-deployment/chat/completions"
    assert embed.path == "/openai/deployments/emb-deployment/embeddings"
    assert chat.query == {"api-version": API_VERSION}
    assert chat.credentials == {"api-key": "azure-key"}


def test_azure_stream(azure: openai.AzureOpenAI) -> None:
    with (
        azure,
        azure.chat.completions.create(
            model="d",
            messages=[{"role": "user", "content": "a b"}],
            stream=True,
            stream_options={"include_usage": True},
        ) as stream,
    ):
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: a b"
    assert chunks[-1].usage is not None


async def test_azure_without_api_version_is_not_found(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    body = {"messages": [{"role": "user", "content": "x"}]}
    url = f"{fake.url}/openai/deployments/d/chat/completions"
    async with http.post(url, json=body) as response:
        assert response.status == 404
        assert await response.json() == {"error": {"code": "404", "message": "Resource not found"}}
        assert "apim-request-id" in response.headers
    async with http.post(url, params={"api-version": API_VERSION}, json=body) as response:
        assert response.status == 200
        assert (await response.json())["model"] == "d"


def test_azure_gateway_errors_use_azure_shape(
    azure: openai.AzureOpenAI, fake_thread: FakeProviderThread
) -> None:
    fake_thread.add_fault(FaultRule(path="/openai/deployments/*", status=429, retry_after="6"))
    with azure, pytest.raises(openai.RateLimitError) as caught:
        azure.embeddings.create(model="d", input="x")
    assert caught.value.body == {"code": "429", "message": "Rate limit reached for requests."}
    assert caught.value.response.headers["retry-after"] == "6"
