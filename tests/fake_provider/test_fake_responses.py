"""The OpenAI Responses API through the official SDK and on the raw wire."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import orjson
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from sidelight_fake_provider.delivery import parse_events
from sidelight_fake_provider.server import FakeProvider

EVENTS = pydantic.TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)
ITEMS: list[Any] = [
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "an answer"},
    {"role": "user", "content": [{"type": "input_text", "text": "second one please"}]},
]


def test_sync_response(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4o", input="tell me a story", instructions="kind")
    assert response.output_text == "Echo: tell me a story"
    assert response.status == "completed"
    assert response.model == "gpt-4o"
    assert response.instructions == "kind"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7 + 4, 5)
    assert response.usage.total_tokens == 16


async def test_async_response_from_items(aoai: openai.AsyncOpenAI) -> None:
    response = await aoai.responses.create(model="m", input=ITEMS)
    assert response.output_text == "Echo: second one please"
    assert response.usage is not None
    assert response.usage.input_tokens == 5 + 5 + 6


def test_max_output_tokens_makes_it_incomplete(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="m", input="tell me a story", max_output_tokens=2)
    assert response.output_text == "Echo: tell"
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_json_mode(oai: openai.OpenAI) -> None:
    response = oai.responses.create(
        model="m", input="hi there", text={"format": {"type": "json_object"}}
    )
    assert orjson.loads(response.output_text) == {"echo": "hi there"}


async def test_stream_helper(aoai: openai.AsyncOpenAI) -> None:
    async with aoai.responses.stream(model="m", input="tell me a story") as stream:
        deltas = [
            event.delta async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert "".join(deltas) == "Echo: tell me a story"
    assert final.output_text == "Echo: tell me a story"
    assert final.usage is not None
    assert final.usage.output_tokens == 5


async def test_raw_objects_validate(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    body = {"model": "m", "input": "tell me a story"}
    async with http.post(f"{fake.url}/v1/responses", json=body) as response:
        Response.model_validate(await response.json())
    async with http.post(f"{fake.url}/v1/responses", json={**body, "stream": True}) as response:
        events = parse_events(await response.text())
    names = [event.name for event in events]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names.count("response.output_text.delta") == 5
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    payloads: list[Any] = [event.payload for event in events]
    assert [p["sequence_number"] for p in payloads] == list(range(len(events)))
    for event in events:
        assert EVENTS.validate_python(event.payload).type == event.name
    assert payloads[0]["response"]["status"] == "in_progress"
    assert payloads[-1]["response"]["usage"]["input_tokens"] == 7


async def test_raw_stream_ends_incomplete_when_cut_by_limit(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    body = {"model": "m", "input": "a b c", "max_output_tokens": 1, "stream": True}
    async with http.post(f"{fake.url}/v1/responses", json=body) as response:
        events = parse_events(await response.text())
    assert events[-1].name == "response.incomplete"


def test_missing_input_is_a_400(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="m", input="")
    assert caught.value.code == "missing_required_parameter"
    assert caught.value.param == "input"
