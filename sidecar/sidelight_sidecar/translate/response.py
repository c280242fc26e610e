"""Non-streaming response translation between Anthropic messages and OpenAI chat completions.

Anthropic to OpenAI: text blocks are joined into `message.content`,
`tool_use` blocks become `tool_calls` (input serialised into `arguments`),
the stop reason becomes a finish reason (`end_turn`, `stop_sequence` and
`pause_turn` stop, `max_tokens` and a full context window are `length`,
`tool_use` is `tool_calls`, `refusal` is `content_filter`), usage is
converted (cache reads and writes counted into `prompt_tokens`) and the id
keeps the upstream's with a `chatcmpl-` prefix. Thinking blocks and server
tool blocks have no place in a chat completion and are left out.

OpenAI to Anthropic: the first choice (requests are sent with n=1) becomes
text and `tool_use` blocks, a refusal a text block with stop reason
`refusal`; `stop` maps to `end_turn` (OpenAI does not say whether a stop
sequence matched), `length` to `max_tokens`, `tool_calls` to `tool_use`,
`content_filter` to `refusal`; the id gets a `msg_` prefix. Tool arguments
that are not a JSON object raise `TranslationError`: the Anthropic SDK cannot
represent them.
"""

from __future__ import annotations

import time

import orjson

from sidelight_sidecar.translate.common import (
    FINISH_REASONS,
    STOP_REASONS,
    JSONObject,
    anthropic_message_id,
    openai_completion_id,
    tool_input,
)
from sidelight_sidecar.translate.usage import (
    Usage,
    anthropic_usage_object,
    openai_usage_object,
    read_anthropic_usage,
    read_openai_usage,
)

__all__ = ["anthropic_to_openai_chat_response", "openai_chat_to_anthropic_response"]


def anthropic_to_openai_chat_response(
    resp: JSONObject, model: str, *, created: int | None = None
) -> JSONObject:
    """The OpenAI chat completion for an Anthropic message; `created` defaults to now."""
    texts: list[str] = []
    calls: list[JSONObject] = []
    for block in resp.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    message: JSONObject = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    usage = Usage()
    read_anthropic_usage(usage, resp.get("usage"))
    return {
        "id": openai_completion_id(resp.get("id")),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(resp.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": openai_usage_object(usage),
    }


def openai_chat_to_anthropic_response(resp: JSONObject, model: str) -> JSONObject:
    """The Anthropic message for an OpenAI chat completion (its first choice)."""
    choices = resp.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") or {}
    content: list[JSONObject] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    stop_reason = STOP_REASONS.get(choice.get("finish_reason") or "", "end_turn")
    if message.get("refusal"):
        content.append({"type": "text", "text": message["refusal"]})
        stop_reason = "refusal"
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": tool_input(function.get("arguments")),
            }
        )
    usage = Usage()
    read_openai_usage(usage, resp.get("usage"))
    return {
        "id": anthropic_message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage_object(usage),
    }
