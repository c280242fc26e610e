"""The OpenAI Responses API: `POST /v1/responses`, plain and streamed.

A stream sends the real event sequence, each event named on an `event:` line
and numbered by `sequence_number`: `response.created`,
`response.in_progress`, `response.output_item.added`,
`response.content_part.added`, one `response.output_text.delta` per word,
`response.output_text.done`, `response.content_part.done`,
`response.output_item.done`, and `response.completed` (or
`response.incomplete` when `max_output_tokens` cut the answer). There is no
`[DONE]` line in this API.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from sidelight_fake_provider.content import (
    Answer,
    count_tokens_like_fake,
    echo_answer,
    message_text,
    stream_pieces,
)
from sidelight_fake_provider.delivery import CALL, Call, Event, send_error, send_events, send_json

__all__ = ["responses"]


async def responses(request: web.Request) -> web.StreamResponse:
    """`POST /v1/responses`."""
    call = request[CALL]
    for param in ("model", "input"):
        if not call.body.get(param):
            return await send_error(
                call,
                400,
                f"Missing required parameter: '{param}'.",
                error_type="invalid_request_error",
                param=param,
                code="missing_required_parameter",
            )
    json_mode = ((call.body.get("text") or {}).get("format") or {}).get("type") == "json_object"
    answer = echo_answer(
        _user_text(call.body["input"]), call.body.get("max_output_tokens"), json_mode=json_mode
    )
    draft = _Draft(call, answer)
    if call.body.get("stream"):
        return await send_events(call, draft.events())
    return await send_json(call, draft.response(final=True))


def _user_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, dict) and item.get("role") == "user":
                return message_text(item.get("content"))
    return ""


class _Draft:
    """One response with its ids fixed, rendered whole or as stream events."""

    def __init__(self, call: Call, answer: Answer) -> None:
        self.call = call
        self.answer = answer
        self.response_id = f"resp_{uuid.uuid4().hex}"
        self.message_id = f"msg_{uuid.uuid4().hex}"
        self.created_at = int(time.time())
        self.status = "incomplete" if answer.truncated else "completed"

    def part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def message(self, *, final: bool) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "status": self.status if final else "in_progress",
            "role": "assistant",
            "content": [self.part(self.answer.text)] if final else [],
        }

    def response(self, *, final: bool) -> dict[str, Any]:
        body = self.call.body
        input_tokens = count_tokens_like_fake(body)
        output_tokens = self.answer.output_tokens
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        truncated = final and self.answer.truncated
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status if final else "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") or {},
            "model": self.call.model,
            "output": [self.message(final=True)] if final else [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage if final else None,
            "user": None,
        }

    def events(self) -> list[Event]:
        where = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
        text = self.answer.text
        payloads: list[dict[str, Any]] = [
            {"type": "response.created", "response": self.response(final=False)},
            {"type": "response.in_progress", "response": self.response(final=False)},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": self.message(final=False),
            },
            {"type": "response.content_part.added", **where, "part": self.part("")},
        ]
        payloads += [
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
            for piece in stream_pieces(text)
        ]
        payloads += [
            {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": self.part(text)},
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": self.message(final=True),
            },
            {"type": f"response.{self.status}", "response": self.response(final=True)},
        ]
        return [
            Event({**payload, "sequence_number": number}, name=str(payload["type"]))
            for number, payload in enumerate(payloads)
        ]
