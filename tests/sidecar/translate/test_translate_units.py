"""What the golden corpus cannot pin: refusals, fresh ids, clocks and stream misuse."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from sidelight_sidecar.sse import SSEEvent, SSEParser
from sidelight_sidecar.translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    TranslationError,
    anthropic_to_openai_chat,
    anthropic_to_openai_chat_response,
    anthropic_usage,
    openai_chat_to_anthropic,
    openai_chat_to_anthropic_response,
    openai_usage,
)

USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "f"}}


def _openai(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [USER], **fields}


def _user_part(part: dict[str, Any]) -> dict[str, Any]:
    return _openai(messages=[{"role": "user", "content": [part]}])


def _call(call: dict[str, Any]) -> dict[str, Any]:
    return _openai(messages=[USER, {"role": "assistant", "content": None, "tool_calls": [call]}])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_openai(n=2), "`n`"),
        (_openai(functions=[{"name": "f"}]), "legacy"),
        (_openai(messages=[{"role": "function", "name": "f", "content": "x"}]), "'function'"),
        (_openai(messages="hi"), "messages must be a list"),
        (_openai(messages=[["user", "hi"]]), "messages must be a list"),
        (
            _user_part({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}),
            "audio",
        ),
        (_user_part({"type": "file", "file": {"file_id": "file-1"}}), "'file'"),
        (_user_part({"type": "image_url", "image_url": {"url": "data:image/png,abc"}}), "base64"),
        (_user_part({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}), "http"),
        (_user_part({"type": "image_url", "image_url": {}}), "url"),
        (_openai(messages=[{"role": "system", "content": [{"type": "image_url"}]}]), "only text"),
        (_openai(tools=[{"type": "custom", "custom": {"name": "grammar"}}]), "function tools"),
        (_openai(tools=[TOOL], tool_choice={"type": "allowed_tools"}), "tool_choice"),
        (_openai(tools=[TOOL], tool_choice={"type": "function"}), "function name"),
        (_openai(response_format={"type": "json_schema", "json_schema": {}}), "response_format"),
        (_openai(response_format={"type": "grammar"}), "response_format"),
        (_call({"id": "c", "type": "custom", "custom": {"name": "f", "input": ""}}), "function"),
        (
            _call({"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}),
            "JSON",
        ),
        (
            _call({"id": "c", "type": "function", "function": {"name": "f", "arguments": "[]"}}),
            "object",
        ),
        (_call({"type": "function", "function": {"name": "f", "arguments": "{}"}}), "`id`"),
    ],
)
def test_openai_requests_that_are_refused(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(TranslationError, match=reason):
        openai_chat_to_anthropic(body, "claude", 100)


def _anthropic(*content: dict[str, Any], **fields: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": list(content)}] if content else [USER]
    return {"model": "claude", "max_tokens": 10, "messages": messages, **fields}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_anthropic(messages=[{"role": "system", "content": "x"}]), "'system'"),
        (_anthropic(messages=None), "messages must be a list"),
        (
            _anthropic({"type": "document", "source": {"type": "text", "data": "x"}}),
            "'document'",
        ),
        (_anthropic({"type": "search_result", "source": "s", "title": "t"}), "'search_result'"),
        (_anthropic({"type": "image", "source": {"type": "file", "file_id": "f"}}), "image"),
        (
            _anthropic(
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "image", "source": {"type": "url", "url": "u"}}],
                }
            ),
            "only text",
        ),
        (_anthropic(system=[{"type": "image"}]), "only text"),
        (_anthropic(output_config={"format": {"type": "regex"}}), "output format"),
        (
            _anthropic(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
            "server tool",
        ),
        (
            _anthropic(
                tools=[{"name": "f", "input_schema": {"type": "object"}}],
                tool_choice={"type": "maybe"},
            ),
            "tool_choice",
        ),
        (
            _anthropic(
                messages=[
                    USER,
                    {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s"}]},
                ]
            ),
            "'server_tool_use'",
        ),
    ],
)
def test_anthropic_requests_that_are_refused(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(TranslationError, match=reason):
        anthropic_to_openai_chat(body, "gpt-4o")


def test_responses_without_ids_get_fresh_prefixed_ids() -> None:
    anthropic_message = {"content": [], "stop_reason": "end_turn", "usage": {}}
    first = anthropic_to_openai_chat_response(anthropic_message, "m")["id"]
    second = anthropic_to_openai_chat_response(anthropic_message, "m")["id"]
    assert first.startswith("chatcmpl-")
    assert first != second
    assert openai_chat_to_anthropic_response({"choices": []}, "m")["id"].startswith("msg_")


def test_created_defaults_to_now() -> None:
    before = int(time.time())
    created = anthropic_to_openai_chat_response({"content": []}, "m")["created"]
    assert before <= created <= int(time.time())


def test_a_response_with_unusable_tool_arguments_is_refused() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    response = {"choices": [{"message": {"role": "assistant", "tool_calls": [call]}}]}
    with pytest.raises(TranslationError, match="JSON"):
        openai_chat_to_anthropic_response(response, "m")


def test_usage_helpers() -> None:
    assert openai_usage({"usage": {"prompt_tokens": 7, "completion_tokens": 3}}) == (7, 3)
    assert openai_usage({"usage": None}) == (0, 0)
    assert openai_usage({}) == (0, 0)
    usage = {
        "input_tokens": 5,
        "output_tokens": 2,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 10,
    }
    assert anthropic_usage({"usage": usage}) == (115, 2)
    assert anthropic_usage({"usage": {"output_tokens": 9, "cache_read_input_tokens": None}}) == (
        0,
        9,
    )
    assert anthropic_usage({}) == (0, 0)


def _events(*payloads: dict[str, Any]) -> list[SSEEvent]:
    return [SSEEvent(str(payload["type"]), orjson.dumps(payload).decode()) for payload in payloads]


def test_anthropic_stream_usage_and_finish() -> None:
    stream = AnthropicToOpenAIStream("m", include_usage=False, created=1)
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "usage": {"input_tokens": 4, "cache_read_input_tokens": 6}},
    }
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 12},
    }
    [first] = stream.feed(_events(start)[0])
    assert stream.usage == (10, 0)
    assert b'"id":"chatcmpl-1"' in first
    stream.feed(_events(delta)[0])
    assert (stream.usage, stream.finished) == ((10, 12), False)
    assert stream.feed(_events({"type": "message_stop"})[0]) == [b"data: [DONE]\n\n"]
    assert stream.finished
    assert stream.feed(_events(delta)[0]) == []


def test_anthropic_stream_skips_pings_unparsed_and_refuses_garbage() -> None:
    stream = AnthropicToOpenAIStream("m", include_usage=True)
    assert stream.feed(SSEEvent("ping", "not json")) == []
    with pytest.raises(TranslationError, match="not JSON"):
        stream.feed(SSEEvent("message_start", "{"))
    with pytest.raises(TranslationError, match="not a JSON object"):
        stream.feed(SSEEvent("message_start", "[]"))


def _chunk(delta: dict[str, Any], index: int = 0, **fields: Any) -> SSEEvent:
    choice = {"index": index, "delta": delta, "finish_reason": None}
    return SSEEvent(
        None, orjson.dumps({"id": "chatcmpl-1", "choices": [choice], **fields}).decode()
    )


def _anthropic_types(out: list[bytes]) -> list[str]:
    return [event.event or "" for event in SSEParser().feed(b"".join(out))]


def test_openai_stream_that_is_only_done_still_makes_a_message() -> None:
    stream = OpenAIToAnthropicStream("m")
    out = stream.feed(SSEEvent(None, "[DONE]"))
    assert _anthropic_types(out) == ["message_start", "message_delta", "message_stop"]
    [start, *_] = SSEParser().feed(b"".join(out))
    assert orjson.loads(start.data)["message"]["id"].startswith("msg_")
    assert stream.finished
    assert stream.feed(_chunk({"content": "late"})) == []


def test_openai_stream_tool_call_without_id_gets_one() -> None:
    stream = OpenAIToAnthropicStream("m")
    call = {"index": 0, "function": {"name": "f", "arguments": "{}"}}
    out = stream.feed(_chunk({"tool_calls": [call]}))
    [_, block_start, _] = SSEParser().feed(b"".join(out))
    assert orjson.loads(block_start.data)["content_block"]["id"].startswith("toolu_")


def test_openai_stream_refuses_interleaved_tool_calls() -> None:
    stream = OpenAIToAnthropicStream("m")
    first = {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}
    second = {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}
    stream.feed(_chunk({"tool_calls": [first]}))
    stream.feed(_chunk({"tool_calls": [second]}))
    with pytest.raises(TranslationError, match="interleaved"):
        stream.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}))


def test_openai_stream_reads_only_the_first_choice_and_tracks_usage() -> None:
    stream = OpenAIToAnthropicStream("m")
    out = stream.feed(_chunk({"content": "other choice"}, index=1))
    assert _anthropic_types(out) == ["message_start"]
    assert stream.usage == (0, 0)
    stream.feed(_chunk({}, usage={"prompt_tokens": 8, "completion_tokens": 2}))
    assert stream.usage == (8, 2)


def test_openai_stream_refuses_garbage() -> None:
    stream = OpenAIToAnthropicStream("m")
    with pytest.raises(TranslationError, match="not JSON"):
        stream.feed(SSEEvent(None, "{"))
    with pytest.raises(TranslationError, match="not a JSON object"):
        stream.feed(SSEEvent(None, "3"))
