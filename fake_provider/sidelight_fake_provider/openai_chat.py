"""OpenAI chat completions, embeddings and the model list (also served on Azure paths).

Chat streams follow the real chunk sequence: a first chunk with the
assistant role, one chunk per word (or per slice of tool-call arguments), a
chunk with the finish reason, then, with `stream_options.include_usage`, a
chunk with empty `choices` and the usage (every earlier chunk carrying
`"usage": null`), and `data: [DONE]`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from sidelight_fake_provider.content import (
    EMBEDDING_DIMENSIONS,
    Answer,
    ToolCall,
    ToolMode,
    count_embedding_tokens,
    count_tokens_like_fake,
    echo_answer,
    embedding_inputs,
    embedding_vector,
    encode_embedding,
    message_text,
    plan_tool_call,
    stream_pieces,
)
from sidelight_fake_provider.delivery import (
    CALL,
    DONE,
    Call,
    Event,
    send_error,
    send_events,
    send_json,
)

__all__ = ["chat_completions", "embeddings", "models"]

SYSTEM_FINGERPRINT = "fp_sidelight_fake"
MODEL_CREATED = 1_700_000_000


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions` and the Azure deployment path."""
    call = request[CALL]
    messages = call.body.get("messages")
    if not call.model:
        return await _missing(call, "model")
    if not isinstance(messages, list) or not messages:
        return await _missing(call, "messages")
    reply = _reply(call.body, messages)
    usage = _usage(count_tokens_like_fake(call.body), reply.output_tokens)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    if call.body.get("stream"):
        return await send_events(call, _chunks(call, completion_id, reply, usage))
    if isinstance(reply, ToolCall):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": [],
            "tool_calls": [_tool_call_json(reply)],
        }
    else:
        message = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    completion = {
        **_envelope(call, completion_id, "chat.completion"),
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(reply)}
        ],
        "usage": usage,
    }
    return await send_json(call, completion)


async def _missing(call: Call, param: str) -> web.StreamResponse:
    return await send_error(
        call,
        400,
        f"Missing required parameter: '{param}'.",
        error_type="invalid_request_error",
        param=param,
        code="missing_required_parameter",
    )


def _reply(body: dict[str, Any], messages: list[Any]) -> Answer | ToolCall:
    user_text = next(
        (message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
        "",
    )
    tools = [
        (t["function"]["name"], t["function"].get("parameters") or {})
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    choice = body.get("tool_choice", "auto")
    mode: ToolMode = "auto"
    forced_name = None
    if isinstance(choice, dict) and choice.get("type") == "function":
        mode, forced_name = "required", choice["function"]["name"]
    elif choice in ("none", "required"):
        mode = choice
    tool_call = plan_tool_call(
        tools,
        mode=mode,
        forced_name=forced_name,
        user_text=user_text,
        after_tool_result=messages[-1].get("role") == "tool",
    )
    if tool_call is not None:
        return tool_call
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    json_mode = (body.get("response_format") or {}).get("type") == "json_object"
    return echo_answer(user_text, limit, json_mode=json_mode)


def _finish(reply: Answer | ToolCall) -> str:
    if isinstance(reply, ToolCall):
        return "tool_calls"
    return "length" if reply.truncated else "stop"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _envelope(call: Call, completion_id: str, kind: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": kind,
        "created": int(time.time()),
        "model": call.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _tool_call_json(tool_call: ToolCall) -> dict[str, Any]:
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": tool_call.name, "arguments": tool_call.arguments},
    }


def _chunks(
    call: Call, completion_id: str, reply: Answer | ToolCall, usage: dict[str, Any]
) -> list[Event]:
    envelope = _envelope(call, completion_id, "chat.completion.chunk")
    include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> Event:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return Event({**envelope, "choices": [choice], **extra})

    if isinstance(reply, ToolCall):
        opening = {**_tool_call_json(reply), "index": 0}
        opening["function"] = {"name": reply.name, "arguments": ""}
        events = [chunk({"role": "assistant", "content": None, "tool_calls": [opening]})]
        events += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in reply.argument_pieces()
        ]
    else:
        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": piece}) for piece in stream_pieces(reply.text)]
    events.append(chunk({}, _finish(reply)))
    if include_usage:
        events.append(Event({**envelope, "choices": [], "usage": usage}))
    events.append(Event(DONE))
    return events


async def embeddings(request: web.Request) -> web.StreamResponse:
    """`POST /v1/embeddings` and the Azure deployment path; floats or base64."""
    call = request[CALL]
    inputs = embedding_inputs(call.body.get("input"))
    if not call.model:
        return await _missing(call, "model")
    if not inputs:
        return await _missing(call, "input")
    dimensions = call.body.get("dimensions") or EMBEDDING_DIMENSIONS
    as_base64 = call.body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        vector = embedding_vector(text, dimensions)
        encoded = encode_embedding(vector) if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = count_embedding_tokens(call.body.get("input"))
    body = {
        "object": "list",
        "data": data,
        "model": call.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return await send_json(call, body)


async def models(request: web.Request) -> web.StreamResponse:
    """`GET /v1/models`: the state's model names."""
    call = request[CALL]
    data = [
        {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "sidelight-fake"}
        for name in call.state.models
    ]
    return await send_json(call, {"object": "list", "data": data})
