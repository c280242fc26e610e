"""The Anthropic Messages API: `POST /v1/messages`, plain and streamed.

A stream sends the real event sequence, each named on an `event:` line:
`message_start` (usage with the input tokens and `output_tokens: 1`),
`content_block_start`, `ping`, `content_block_delta` (`text_delta` per word,
or `input_json_delta` slices of a tool call's input), `content_block_stop`,
`message_delta` (the stop reason and the final, cumulative output tokens) and
`message_stop`.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

from sidelight_fake_provider.content import (
    Answer,
    ToolCall,
    ToolMode,
    count_tokens_like_fake,
    echo_answer,
    message_text,
    plan_tool_call,
    stream_pieces,
)
from sidelight_fake_provider.delivery import CALL, Call, Event, send_error, send_events, send_json

__all__ = ["messages"]


async def messages(request: web.Request) -> web.StreamResponse:
    """`POST /v1/messages`."""
    call = request[CALL]
    for field in ("model", "max_tokens", "messages"):
        if call.body.get(field) is None:
            return await send_error(call, 400, f"{field}: Field required")
    conversation = call.body["messages"]
    if not isinstance(conversation, list) or not conversation:
        return await send_error(call, 400, "messages: at least one message is required")
    reply = _reply(call.body, conversation)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    if isinstance(reply, ToolCall):
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:24]}",
            "name": reply.name,
            "input": orjson.loads(reply.arguments),
        }
    else:
        block = {"type": "text", "text": reply.text}
    if call.body.get("stream"):
        return await send_events(call, _events(call, message_id, reply, block))
    message = _message(call, message_id, [block], _stop_reason(reply), reply.output_tokens)
    return await send_json(call, message)


def _reply(body: dict[str, Any], conversation: list[Any]) -> Answer | ToolCall:
    user_text = next(
        (message_text(m.get("content")) for m in reversed(conversation) if m.get("role") == "user"),
        "",
    )
    last_content = conversation[-1].get("content")
    after_tool_result = conversation[-1].get("role") == "user" and any(
        isinstance(part, dict) and part.get("type") == "tool_result"
        for part in (last_content if isinstance(last_content, list) else [])
    )
    tools = [(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or []]
    choice = body.get("tool_choice") or {"type": "auto"}
    modes: dict[str, ToolMode] = {"any": "required", "tool": "required", "none": "none"}
    mode = modes.get(str(choice.get("type")), "auto")
    tool_call = plan_tool_call(
        tools,
        mode=mode,
        forced_name=choice.get("name"),
        user_text=user_text,
        after_tool_result=after_tool_result,
    )
    if tool_call is not None:
        return tool_call
    return echo_answer(user_text, body["max_tokens"])


def _stop_reason(reply: Answer | ToolCall) -> str:
    if isinstance(reply, ToolCall):
        return "tool_use"
    return "max_tokens" if reply.truncated else "end_turn"


def _message(
    call: Call,
    message_id: str,
    content: list[dict[str, Any]],
    stop_reason: str | None,
    output_tokens: int,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": count_tokens_like_fake(call.body),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def _events(
    call: Call, message_id: str, reply: Answer | ToolCall, block: dict[str, Any]
) -> list[Event]:
    if isinstance(reply, ToolCall):
        opening = {**block, "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": piece} for piece in reply.argument_pieces()
        ]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in stream_pieces(reply.text)]
    payloads: list[dict[str, Any]] = [
        {"type": "message_start", "message": _message(call, message_id, [], None, 1)},
        {"type": "content_block_start", "index": 0, "content_block": opening},
        {"type": "ping"},
        *({"type": "content_block_delta", "index": 0, "delta": delta} for delta in deltas),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        },
        {"type": "message_stop"},
    ]
    return [Event(payload, name=str(payload["type"])) for payload in payloads]
