"""The Anthropic Messages API through the official anthropic SDK and on the raw wire."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import pydantic
from anthropic.types import Message, RawMessageStreamEvent, ToolParam

from sidelight_fake_provider.content import count_tokens_like_fake
from sidelight_fake_provider.delivery import parse_events
from sidelight_fake_provider.server import FakeProvider

SYSTEM_BLOCKS: list[Any] = [{"type": "text", "text": "You are terse."}]
QUESTION: list[Any] = [{"role": "user", "content": "how are you today"}]
WEATHER: list[Any] = [
    {"role": "user", "content": [{"type": "text", "text": "weather in Oslo please"}]}
]
TOOLS: list[ToolParam] = [
    {
        "name": "get_weather",
        "description": "Weather by city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
EVENTS = pydantic.TypeAdapter[RawMessageStreamEvent](RawMessageStreamEvent)


def test_sync_message_with_string_system(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(
        model="claude-x", max_tokens=100, system="You are terse.", messages=QUESTION
    )
    assert message.model == "claude-x"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: how are you today"
    assert message.stop_reason == "end_turn"
    expected = count_tokens_like_fake({"system": "You are terse.", "messages": QUESTION})
    assert message.usage.input_tokens == expected == 13
    assert message.usage.output_tokens == 5


async def test_async_message_with_system_blocks(aant: anthropic.AsyncAnthropic) -> None:
    message = await aant.messages.create(
        model="claude-y", max_tokens=100, system=SYSTEM_BLOCKS, messages=QUESTION
    )
    assert message.model == "claude-y"
    assert message.usage.input_tokens == 13


async def test_raw_message_validates_and_has_request_id(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    body = {"model": "c", "max_tokens": 10, "messages": QUESTION}
    async with http.post(f"{fake.url}/v1/messages", json=body) as response:
        assert response.headers["request-id"].startswith("req_")
        message = Message.model_validate(await response.json())
    assert message.type == "message"


def test_max_tokens_truncates(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="c", max_tokens=2, messages=QUESTION)
    assert message.content[0].text == "Echo: how"  # type: ignore[union-attr]
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


async def test_missing_max_tokens_is_invalid_request(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    body = {"model": "c", "messages": QUESTION}
    async with http.post(f"{fake.url}/v1/messages", json=body) as response:
        assert response.status == 400
        assert await response.json() == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
        }


def test_tool_use(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="c", max_tokens=100, messages=WEATHER, tools=TOOLS)
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.name == "get_weather"
    assert block.input == {"city": "weather in Oslo please"}


def test_tool_choice_variants(ant: anthropic.Anthropic) -> None:
    tools: list[ToolParam] = [*TOOLS, {"name": "lookup", "input_schema": {"type": "object"}}]
    forced = ant.messages.create(
        model="c",
        max_tokens=100,
        messages=QUESTION,
        tools=tools,
        tool_choice={"type": "tool", "name": "lookup"},
    )
    assert forced.content[0].type == "tool_use"
    assert forced.content[0].name == "lookup"
    any_tool = ant.messages.create(
        model="c", max_tokens=100, messages=QUESTION, tools=tools, tool_choice={"type": "any"}
    )
    assert any_tool.content[0].name == "get_weather"  # type: ignore[union-attr]
    none = ant.messages.create(
        model="c", max_tokens=100, messages=WEATHER, tools=tools, tool_choice={"type": "none"}
    )
    assert none.stop_reason == "end_turn"


def test_tool_result_ends_the_loop(ant: anthropic.Anthropic) -> None:
    messages: list[Any] = [
        *WEATHER,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny, weather"}],
        },
    ]
    message = ant.messages.create(model="c", max_tokens=100, messages=messages, tools=TOOLS)
    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "Echo: sunny, weather"  # type: ignore[union-attr]


def test_stream_text(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="c", max_tokens=100, messages=QUESTION) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "Echo: how are you today"  # type: ignore[union-attr]
    assert final.usage.input_tokens == 7
    assert final.usage.output_tokens == 5
    assert final.stop_reason == "end_turn"
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"


async def test_async_stream_tool_use(aant: anthropic.AsyncAnthropic) -> None:
    async with aant.messages.stream(
        model="c", max_tokens=100, messages=WEATHER, tools=TOOLS
    ) as stream:
        final = await stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.input == {"city": "weather in Oslo please"}
    assert final.stop_reason == "tool_use"


async def test_raw_stream_event_sequence(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    body = {"model": "c", "max_tokens": 3, "messages": QUESTION, "stream": True}
    async with http.post(f"{fake.url}/v1/messages", json=body) as response:
        assert response.content_type == "text/event-stream"
        events = parse_events(await response.text())
    names = [event.name for event in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for event in events:
        assert isinstance(event.payload, dict)
        assert event.payload["type"] == event.name
        if event.name != "ping":
            EVENTS.validate_python(event.payload)
    delta: Any = events[-2].payload
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"] == {"output_tokens": 3}


async def test_raw_stream_tool_deltas(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    body = {"model": "c", "max_tokens": 99, "messages": WEATHER, "tools": TOOLS, "stream": True}
    async with http.post(f"{fake.url}/v1/messages", json=body) as response:
        events = parse_events(await response.text())
    payloads: list[Any] = [event.payload for event in events]
    start = payloads[1]["content_block"]
    assert (start["type"], start["name"], start["input"]) == ("tool_use", "get_weather", {})
    pieces = [p["delta"]["partial_json"] for p in payloads if p["type"] == "content_block_delta"]
    assert len(pieces) > 1
    assert "".join(pieces) == '{"city":"weather in Oslo please"}'
