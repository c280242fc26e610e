"""An Anthropic message stream re-told as OpenAI chat completion chunks.

`message_start` becomes the first chunk (role `assistant`, empty content);
text deltas become content deltas; a `tool_use` block becomes a tool call
(id, name and empty arguments in its first chunk) and its `input_json_delta`
fragments become `arguments` fragments, numbered in the order the tool
blocks appear; `message_delta` becomes the chunk with the finish reason;
`message_stop` becomes the usage chunk (when the caller asked for
`stream_options.include_usage`) and `data: [DONE]`. An in-band `error`
event becomes an OpenAI error chunk and ends the stream, without `[DONE]`,
as OpenAI ends a failed stream. Pings, thinking blocks, signatures and
citations have no chat-completion form and produce nothing.
"""

from __future__ import annotations

import time

import orjson

from sidelight_sidecar.errors import translate_stream_error
from sidelight_sidecar.sse import SSEEvent, encode_sse
from sidelight_sidecar.translate.common import (
    FINISH_REASONS,
    JSONObject,
    TranslationError,
    openai_completion_id,
)
from sidelight_sidecar.translate.usage import Usage, openai_usage_object, read_anthropic_usage

__all__ = ["AnthropicToOpenAIStream"]

_DONE = encode_sse(b"[DONE]")


class AnthropicToOpenAIStream:
    """Translate one Anthropic stream; feed it every upstream event in order.

    `usage` holds the (input, output) tokens reported so far: input from
    `message_start`, cache reads and writes included, output from each
    `message_delta`. `finished` turns true after `message_stop` or an
    in-band error; a stream that ends before that was cut, and the caller
    reports it. Upstream data that is not JSON raises `TranslationError`.
    """

    __slots__ = (
        "_created",
        "_id",
        "_include_usage",
        "_model",
        "_tools",
        "_usage",
        "finished",
        "usage",
    )

    def __init__(self, model: str, include_usage: bool, *, created: int | None = None) -> None:
        self.usage = (0, 0)
        self.finished = False
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._id = openai_completion_id(None)
        # Anthropic content block index -> OpenAI tool call index.
        self._tools: dict[int, int] = {}
        self._usage = Usage()

    def feed(self, event: SSEEvent) -> list[bytes]:
        """The encoded OpenAI chunks for one upstream event (often none or one)."""
        if self.finished or event.event == "ping":
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError as error:
            raise TranslationError("the upstream sent an event that is not JSON") from error
        if not isinstance(data, dict):
            raise TranslationError("the upstream sent an event that is not a JSON object")
        kind = data.get("type")
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = openai_completion_id(message.get("id"))
            self._read_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            self._read_usage(data.get("usage"))
            stop_reason = (data.get("delta") or {}).get("stop_reason") or ""
            return [self._chunk({}, FINISH_REASONS.get(stop_reason, "stop"))]
        if kind == "message_stop":
            self.finished = True
            if not self._include_usage:
                return [_DONE]
            return [self._usage_chunk(), _DONE]
        if kind == "error":
            self.finished = True
            return [translate_stream_error(data, "anthropic", "openai")]
        return []

    def _read_usage(self, usage: object) -> None:
        read_anthropic_usage(self._usage, usage)
        self.usage = (self._usage.input_tokens, self._usage.output_tokens)

    def _block_start(self, data: JSONObject) -> list[bytes]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        if kind == "tool_use":
            index = len(self._tools)
            self._tools[data.get("index", 0)] = index
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _delta(self, data: JSONObject) -> list[bytes]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self._tools.get(data.get("index", 0))
            if index is not None:
                call = {"index": index, "function": {"arguments": delta["partial_json"]}}
                return [self._chunk({"tool_calls": [call]})]
        return []

    def _chunk(self, delta: JSONObject, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return encode_sse(orjson.dumps(self._envelope([choice])))

    def _usage_chunk(self) -> bytes:
        chunk = self._envelope([])
        chunk["usage"] = openai_usage_object(self._usage)
        return encode_sse(orjson.dumps(chunk))

    def _envelope(self, choices: list[JSONObject]) -> JSONObject:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
