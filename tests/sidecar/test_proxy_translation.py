"""Both translation directions, streaming and not, tools, JSON mode, embeddings, responses."""

from __future__ import annotations

import json
from typing import Any

from tests.sidecar.harness import SEED_ROUTES, Harness

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SUMMARY = {"x-sidelight-task-type": "summarization"}


async def test_openai_caller_to_anthropic_backend(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    completion = await harness.oai.chat.completions.create(
        model="gpt-4",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "summarize this please"},
        ],
        max_tokens=50,
        extra_headers=SUMMARY,
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Echo: summarize this please"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "claude-3-haiku-20240307"
    assert completion.usage is not None
    sent = harness.anthropic_fake.requests[0].body
    assert sent["system"] in ("be brief", [{"type": "text", "text": "be brief"}])
    assert sent["max_tokens"] == 50
    assert completion.usage.completion_tokens == 4


async def test_openai_caller_tools_through_anthropic(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    completion = await harness.oai.chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "what is the weather in Paris"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        extra_headers=SUMMARY,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert harness.anthropic_fake.requests[0].body["tools"][0]["name"] == "get_weather"


async def test_openai_caller_streams_from_anthropic_backend(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    stream = await harness.oai.chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=SUMMARY,
    )
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == "Echo: one two three"
    assert usage is not None
    assert usage.completion_tokens == 4
    records = await harness.usage(1)
    assert records[-1]["output_tokens"] == "4"
    assert records[-1]["stream"] is True


async def test_anthropic_caller_to_openai_backend(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    message = await harness.ant.messages.create(
        model="gpt-4",
        max_tokens=100,
        system="be nice",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert message.type == "message"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello there"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    sent = harness.openai_fake.requests[0].body
    assert sent["messages"][0] == {"role": "system", "content": "be nice"}
    assert sent["model"] == "gpt-4"


async def test_anthropic_caller_tools_and_stream_through_openai(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    tools: Any = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    async with harness.ant.messages.stream(
        model="gpt-4",
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "weather in Oslo?"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[-1]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert "city" in block.input
    assert final.usage.output_tokens > 0
    assert harness.openai_fake.requests[0].body["stream_options"] == {"include_usage": True}


async def test_same_format_stream_strips_usage_chunk_unless_asked(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    stream = await harness.oai.chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "a b"}], stream=True
    )
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    assert harness.openai_fake.requests[0].body["stream_options"] == {"include_usage": True}
    records = await harness.usage(1)
    assert records[-1]["input_tokens"] != "0"
    assert records[-1]["output_tokens"] == "3"


async def test_anthropic_passthrough_stream(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    async with harness.ant.messages.stream(
        model="claude-3-haiku",
        max_tokens=100,
        messages=[{"role": "user", "content": "x y z"}],
    ) as stream:
        text = await stream.get_final_text()
    assert text == "Echo: x y z"
    assert harness.anthropic_fake.requests[0].body["model"] == "claude-3-haiku-20240307"


async def test_json_mode_and_images_pass_through(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    completion = await harness.oai.chat.completions.create(
        model="gpt-4",
        response_format={"type": "json_object"},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ],
    )
    assert json.loads(completion.choices[0].message.content or "") == {"echo": "describe"}
    sent = harness.openai_fake.requests[0].body
    assert sent["messages"][0]["content"][1]["image_url"]["url"] == "https://example.com/cat.png"


async def test_embeddings_and_responses(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    embedding = await harness.oai.embeddings.create(model="gpt-4", input="hello world")
    assert len(embedding.data[0].embedding) > 0
    assert harness.openai_fake.requests[0].path == "/v1/embeddings"
    response = await harness.oai.responses.create(model="gpt-4", input="hi there")
    assert response.output_text == "Echo: hi there"
    assert harness.openai_fake.requests[1].path == "/v1/responses"
    records = await harness.usage(2)
    assert [r["endpoint"] for r in records] == ["embeddings", "responses"]


async def test_responses_stream_passes_its_named_events_and_usage(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    stream = await harness.oai.responses.create(model="gpt-4", input="hi there", stream=True)
    events = [e async for e in stream]
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: hi there"
    (record,) = await harness.usage(1)
    assert int(record["output_tokens"]) == 3
    assert int(record["input_tokens"]) > 0
