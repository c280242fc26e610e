"""Chat completions through the official openai SDK (sync and async) and on the raw wire."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionToolParam

from sidelight_fake_provider.content import count_tokens_like_fake
from sidelight_fake_provider.delivery import DONE, parse_events
from sidelight_fake_provider.server import FakeProvider

QUESTION: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "how are you today"},
]
WEATHER: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_sync_chat(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    choice = completion.choices[0]
    assert choice.message.content == "Echo: how are you today"
    assert choice.finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_tokens_like_fake({"messages": QUESTION}) == 13
    assert completion.usage.completion_tokens == 5
    assert completion.usage.total_tokens == 18


async def test_async_chat(aoai: openai.AsyncOpenAI) -> None:
    completion = await aoai.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert completion.choices[0].message.content == "Echo: how are you today"
    assert completion.model == "gpt-4o"


async def test_raw_chat_validates_against_sdk_types(
    fake: FakeProvider, http: aiohttp.ClientSession
) -> None:
    body = {"model": "m", "messages": QUESTION}
    async with http.post(f"{fake.url}/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["x-request-id"].startswith("req_")
        completion = ChatCompletion.model_validate(await response.json())
    assert completion.object == "chat.completion"


def test_sync_stream_without_usage(oai: openai.OpenAI) -> None:
    with oai.chat.completions.create(model="m", messages=QUESTION, stream=True) as stream:
        chunks = list(stream)
    assert all(chunk.usage is None and chunk.model == "m" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Echo: how are you today"
    assert [c.choices[0].finish_reason for c in chunks][-2:] == [None, "stop"]


async def test_async_stream_with_usage(aoai: openai.AsyncOpenAI) -> None:
    stream = await aoai.chat.completions.create(
        model="m", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (13, 5)
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_raw_stream_wire_format(fake: FakeProvider, http: aiohttp.ClientSession) -> None:
    body = {
        "model": "m",
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.post(f"{fake.url}/v1/chat/completions", json=body) as response:
        assert response.content_type == "text/event-stream"
        raw = await response.text()
    assert raw.endswith("data: [DONE]\n\n")
    events = parse_events(raw)
    assert events[-1].payload == DONE
    assert all(event.name is None for event in events)
    for event in events[:-1]:
        assert "usage" in orjson.dumps(event.payload).decode()
        ChatCompletionChunk.model_validate(event.payload)


def test_tool_call(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="m", messages=WEATHER, tools=TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "What is the weather in Paris?"}
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 1 + len(call.function.arguments.split())


def test_tool_choice_none_and_no_weather_answer_text(oai: openai.OpenAI) -> None:
    none = oai.chat.completions.create(model="m", messages=WEATHER, tools=TOOLS, tool_choice="none")
    assert none.choices[0].finish_reason == "stop"
    plain = oai.chat.completions.create(model="m", messages=QUESTION, tools=TOOLS)
    assert plain.choices[0].message.tool_calls is None


def test_forced_tool_choice_calls_the_named_function(oai: openai.OpenAI) -> None:
    tools: list[ChatCompletionToolParam] = [
        *TOOLS,
        {"type": "function", "function": {"name": "lookup", "parameters": {}}},
    ]
    completion = oai.chat.completions.create(
        model="m",
        messages=QUESTION,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "lookup"  # type: ignore[union-attr]


def test_tool_result_ends_the_loop(oai: openai.OpenAI) -> None:
    messages: list[Any] = [
        *WEATHER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    completion = oai.chat.completions.create(model="m", messages=messages, tools=TOOLS)
    assert completion.choices[0].message.content == "Echo: What is the weather in Paris?"


async def test_streamed_tool_call(aoai: openai.AsyncOpenAI) -> None:
    stream = await aoai.chat.completions.create(
        model="m", messages=WEATHER, tools=TOOLS, stream=True
    )
    chunks = [chunk async for chunk in stream]
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id is not None
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert all(delta.index == 0 for delta in deltas)
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert orjson.loads(arguments) == {"city": "What is the weather in Paris?"}
    assert len(deltas) > 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_stream_helper_accumulates_tool_call(aoai: openai.AsyncOpenAI) -> None:
    async with aoai.chat.completions.stream(model="m", messages=WEATHER, tools=TOOLS) as stream:
        final = await stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "get_weather"


def test_json_mode(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=QUESTION, response_format={"type": "json_object"}
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert orjson.loads(content) == {"echo": "how are you today"}


def test_image_parts_are_accepted(oai: openai.OpenAI) -> None:
    messages: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "describe this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]
    completion = oai.chat.completions.create(model="m", messages=messages)
    assert completion.choices[0].message.content == "Echo: describe this"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 5


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_output_limit_truncates(oai: openai.OpenAI, limit: str) -> None:
    completion = oai.chat.completions.create(
        model="m",
        messages=QUESTION,
        **{limit: 3},  # type: ignore[call-overload]
    )
    assert completion.choices[0].message.content == "Echo: how are"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3


def test_streamed_truncation(oai: openai.OpenAI) -> None:
    with oai.chat.completions.create(
        model="m", messages=QUESTION, max_completion_tokens=2, stream=True
    ) as stream:
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: how"
    assert chunks[-1].choices[0].finish_reason == "length"
