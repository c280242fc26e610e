"""An OpenAI chat completion stream re-told as Anthropic message events.

The first chunk opens the message (`message_start`, usage still zero: OpenAI
reports it at the end). Content and refusal deltas go into a text block;
each tool call becomes a `tool_use` block whose `arguments` fragments are
passed on as `input_json_delta`; a block is closed (`content_block_stop`)
when the next one starts or a finish reason arrives. `data: [DONE]` closes
the message: `message_delta` with the stop reason and the usage, then
`message_stop`.

The usage arrives in a last chunk only when the upstream was asked for
`stream_options.include_usage`, which the proxy always does; an upstream
that ignores it yields zero counts. Only the first choice is read (requests
are sent with n=1). Anthropic blocks do not interleave, so the fragments of
one tool call must arrive before the next call starts, as every
OpenAI-compatible server sends them; a fragment for an earlier call raises
`TranslationError`. An in-band error chunk becomes an `error` event and
ends the stream.
"""

from __future__ import annotations

import uuid

import orjson

from sidelight_sidecar.errors import translate_stream_error
from sidelight_sidecar.sse import SSEEvent, encode_sse
from sidelight_sidecar.translate.common import (
    STOP_REASONS,
    JSONObject,
    TranslationError,
    anthropic_message_id,
)
from sidelight_sidecar.translate.usage import Usage, anthropic_usage_object, read_openai_usage

__all__ = ["OpenAIToAnthropicStream"]

_MESSAGE_STOP = encode_sse(b'{"type":"message_stop"}', "message_stop")


class OpenAIToAnthropicStream:
    """Translate one OpenAI stream; feed it every upstream event in order.

    `usage` holds the (input, output) tokens reported so far; `finished` turns true after
    `[DONE]` or an in-band error. A stream that ends before that was cut, and
    the caller reports it. Upstream data that is not JSON raises
    `TranslationError`.
    """

    __slots__ = (
        "_blocks",
        "_model",
        "_open",
        "_open_text",
        "_started",
        "_stop_reason",
        "_tools",
        "_usage",
        "finished",
        "usage",
    )

    def __init__(self, model: str) -> None:
        self.usage = (0, 0)
        self.finished = False
        self._model = model
        self._started = False
        self._blocks = 0  # content blocks started so far
        self._open = -1  # index of the open block, -1 when none is open
        self._open_text = False
        self._tools: dict[int, int] = {}  # OpenAI tool call index -> block index
        self._stop_reason = "end_turn"
        self._usage = Usage()

    def feed(self, event: SSEEvent) -> list[bytes]:
        """The encoded Anthropic events for one upstream chunk."""
        if self.finished:
            return []
        if event.data == "[DONE]":
            return self._finish()
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError as error:
            raise TranslationError("the upstream sent a chunk that is not JSON") from error
        if not isinstance(data, dict):
            raise TranslationError("the upstream sent a chunk that is not a JSON object")
        if data.get("error"):
            self.finished = True
            return [translate_stream_error(data, "openai", "anthropic")]
        out: list[bytes] = []
        if not self._started:
            self._start(data.get("id"), out)
        if data.get("usage"):
            read_openai_usage(self._usage, data["usage"])
            self.usage = (self._usage.input_tokens, self._usage.output_tokens)
        for choice in data.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._choice(choice, out)
        return out

    def _choice(self, choice: JSONObject, out: list[bytes]) -> None:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            self._text(delta["content"], out)
        if delta.get("refusal"):
            self._text(delta["refusal"], out)
            self._stop_reason = "refusal"
        for call in delta.get("tool_calls") or ():
            self._tool_call(call, out)
        finish_reason = choice.get("finish_reason")
        if finish_reason:
            self._close(out)
            if self._stop_reason != "refusal":
                self._stop_reason = STOP_REASONS.get(finish_reason, "end_turn")

    def _text(self, text: str, out: list[bytes]) -> None:
        if not self._open_text:
            self._open_block({"type": "text", "text": ""}, out)
            self._open_text = True
        delta = {"type": "text_delta", "text": text}
        out.append(_event("content_block_delta", index=self._open, delta=delta))

    def _tool_call(self, call: JSONObject, out: list[bytes]) -> None:
        function = call.get("function") or {}
        tool = call.get("index", 0)
        block = self._tools.get(tool)
        if block is None:
            tool_use: JSONObject = {
                "type": "tool_use",
                "id": call.get("id") or "toolu_" + uuid.uuid4().hex,
                "name": function.get("name") or "",
                "input": {},
            }
            block = self._tools[tool] = self._open_block(tool_use, out)
        elif block != self._open:
            raise TranslationError("the upstream interleaved the fragments of two tool calls")
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            out.append(_event("content_block_delta", index=block, delta=delta))

    def _start(self, upstream_id: object, out: list[bytes]) -> None:
        self._started = True
        message: JSONObject = {
            "id": anthropic_message_id(upstream_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(_event("message_start", message=message))

    def _open_block(self, content_block: JSONObject, out: list[bytes]) -> int:
        self._close(out)
        self._open = index = self._blocks
        self._blocks += 1
        out.append(_event("content_block_start", index=index, content_block=content_block))
        return index

    def _close(self, out: list[bytes]) -> None:
        if self._open >= 0:
            out.append(_event("content_block_stop", index=self._open))
            self._open = -1
            self._open_text = False

    def _finish(self) -> list[bytes]:
        out: list[bytes] = []
        if not self._started:
            self._start(None, out)
        self._close(out)
        delta = {"stop_reason": self._stop_reason, "stop_sequence": None}
        usage = anthropic_usage_object(self._usage)
        out.append(_event("message_delta", delta=delta, usage=usage))
        out.append(_MESSAGE_STOP)
        self.finished = True
        return out


def _event(kind: str, **fields: object) -> bytes:
    return encode_sse(orjson.dumps({"type": kind, **fields}), kind)
