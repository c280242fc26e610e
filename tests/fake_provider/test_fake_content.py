"""The deterministic content rules: token counts, answers, tool calls, embeddings, fault rules."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from sidelight_fake_provider.content import (
    MESSAGE_OVERHEAD,
    ToolCall,
    count_embedding_tokens,
    count_tokens_like_fake,
    echo_answer,
    embedding_vector,
    encode_embedding,
    message_text,
    plan_tool_call,
    stream_pieces,
)
from sidelight_fake_provider.delivery import DONE, Event, parse_events
from sidelight_fake_provider.faults import FaultRule, FaultRuleError

WEATHER_TOOL = (
    "get_weather",
    {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "detailed": {"type": "boolean"},
        },
    },
)


def test_overhead_is_three() -> None:
    assert MESSAGE_OVERHEAD == 3


@pytest.mark.parametrize(
    ("body", "tokens"),
    [
        ({"messages": [{"role": "user", "content": "hello  there\nworld"}]}, 6),
        (
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "a b"}]},
                ]
            },
            10,
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this"},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                        ],
                    }
                ]
            },
            6,
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"a": "b c"}'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c", "content": "sunny"},
                ]
            },
            3 + 3 + 3 + 1,
        ),
        ({"system": "one two", "messages": [{"role": "user", "content": "x"}]}, 5 + 4),
        (
            {
                "system": [{"type": "text", "text": "one two three"}],
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                    },
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}],
                    },
                ],
            },
            6 + 4 + 4,
        ),
        ({"input": "tell me a story"}, 7),
        ({"instructions": "be kind", "input": "hi"}, 5 + 4),
        (
            {
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "a b c"}]},
                    {"type": "function_call_output", "call_id": "c", "output": "done"},
                ]
            },
            6 + 4,
        ),
    ],
)
def test_count_tokens_like_fake(body: dict[str, object], tokens: int) -> None:
    assert count_tokens_like_fake(body) == tokens


@pytest.mark.parametrize(
    ("value", "tokens"),
    [("a b c", 3), (["a b", "c"], 3), ([1, 2, 3, 4], 4), ([[1, 2], [3]], 3)],
)
def test_count_embedding_tokens(value: object, tokens: int) -> None:
    assert count_embedding_tokens(value) == tokens


def test_message_text_ignores_images_and_reads_tool_use_input() -> None:
    parts = [
        {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        {"type": "tool_use", "id": "t", "name": "f", "input": {"q": 1}},
    ]
    assert message_text(parts) == '{"q":1}'


def test_echo_answer_normalises_whitespace_and_truncates() -> None:
    full = echo_answer("  what   is\nup ", None)
    assert (full.text, full.truncated, full.output_tokens) == ("Echo: what is up", False, 4)
    cut = echo_answer("what is up", 2)
    assert (cut.text, cut.truncated, cut.output_tokens) == ("Echo: what", True, 2)
    exact = echo_answer("what is up", 4)
    assert not exact.truncated


def test_echo_answer_json_mode() -> None:
    answer = echo_answer("say  hi", None, json_mode=True)
    assert orjson.loads(answer.text) == {"echo": "say  hi"}
    assert answer.output_tokens == 2


def test_stream_pieces_rebuild_the_text() -> None:
    assert stream_pieces("Echo: a  b") == ["Echo:", " a", "  b"]


def test_tool_call_on_weather_fills_arguments_from_the_schema() -> None:
    call = plan_tool_call(
        [WEATHER_TOOL],
        mode="auto",
        forced_name=None,
        user_text="What's the Weather in Paris?",
        after_tool_result=False,
    )
    assert call is not None
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments) == {
        "location": "What's the Weather in Paris?",
        "unit": "celsius",
        "days": 0,
        "detailed": False,
    }
    assert call.output_tokens == 1 + len(call.arguments.split())
    assert "".join(call.argument_pieces()) == call.arguments


@pytest.mark.parametrize(
    ("mode", "forced", "text", "after_result", "expected"),
    [
        ("auto", None, "hello", False, None),
        ("auto", None, "weatherman", False, None),
        ("auto", None, "the weather", True, None),
        ("none", None, "the weather", False, None),
        ("required", None, "hello", False, "get_weather"),
        ("required", "lookup", "hello", True, "lookup"),
    ],
)
def test_tool_call_decision(
    mode: str, forced: str | None, text: str, after_result: bool, expected: str | None
) -> None:
    tools = [WEATHER_TOOL, ("lookup", {})]
    call = plan_tool_call(
        tools,
        mode=mode,  # type: ignore[arg-type]
        forced_name=forced,
        user_text=text,
        after_tool_result=after_result,
    )
    assert (call.name if call else None) == expected


def test_no_tools_no_call() -> None:
    assert (
        plan_tool_call([], mode="required", forced_name=None, user_text="", after_tool_result=False)
        is None
    )
    assert ToolCall("f", "{}").output_tokens == 2


def test_embedding_is_deterministic_unit_float32() -> None:
    vector = embedding_vector("hello", 16)
    assert vector == embedding_vector("hello", 16)
    assert vector != embedding_vector("hullo", 16)
    assert len(embedding_vector("hello", 5)) == 5
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-6)
    decoded = struct.unpack("<16f", base64.b64decode(encode_embedding(vector)))
    assert list(decoded) == vector


def test_events_round_trip() -> None:
    events = [Event({"a": 1}), Event({"type": "ping"}, name="ping"), Event(DONE)]
    wire = b"".join(event.encode() for event in events).decode()
    assert parse_events(wire) == events
    assert parse_events(Event({"a": 1}, name="x").encode(malformed=True).decode())[0].name == "x"


def test_fault_rule_json_round_trip() -> None:
    data = {
        "match": {"path": "/v1/*", "model": "m", "endpoint_name": "east"},
        "status": 429,
        "retry_after": 1,
        "times": 2,
    }
    rule = FaultRule.from_json(data)
    assert rule.retry_after == "1"
    assert rule.matches("/v1/messages", "m", "east")
    assert not rule.matches("/v1/messages", "other", "east")
    assert not rule.matches("/v1/messages", "m", "west")
    assert not rule.matches("/openai/deployments/m/embeddings", "m", "east")
    assert rule.to_json()["match"] == data["match"]
    assert FaultRule.from_json({}).matches("/anything", None, "any")


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"match": []},
        {"statuz": 500},
        {"match": {"url": "/"}},
        {"match": {"model": 3}},
        {"status": "500"},
        {"times": True},
        {"latency_ms": -1},
        {"times": 0},
        {"context_length_exceeded": "yes"},
    ],
)
def test_fault_rule_rejects_bad_json(data: object) -> None:
    with pytest.raises(FaultRuleError):
        FaultRule.from_json(data)
