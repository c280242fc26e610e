"""Stream transcoders: upstream SSE events in, caller SSE bytes out.

One transcoder per attempt. Same-format streams pass each event's bytes
through unchanged and only read the usage; cross-format streams use the
translators in `translate`. Every transcoder exposes `usage` (input, output
tokens seen so far) and `finished` (the terminal event arrived), so the proxy
can settle cost and tell a cut stream from a complete one.
"""

from __future__ import annotations

from typing import Protocol

import orjson

from sidelight_sidecar.errors import ApiFormat
from sidelight_sidecar.sse import SSEEvent, encode_sse
from sidelight_sidecar.translate import AnthropicToOpenAIStream, OpenAIToAnthropicStream

DONE = b"data: [DONE]\n\n"


class MalformedStream(ValueError):
    """An upstream event that is not what its format promises."""


class Transcoder(Protocol):
    """Turns upstream events into caller bytes."""

    @property
    def usage(self) -> tuple[int, int]:
        """Input and output tokens seen so far."""
        ...

    @property
    def finished(self) -> bool:
        """True once the terminal event arrived."""
        ...

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Caller bytes for one upstream event (possibly none)."""
        ...


class TranscoderWrapper:
    """A transcoder around another one, whose usage and end it reports."""

    def __init__(self, inner: Transcoder) -> None:
        self._inner = inner

    @property
    def usage(self) -> tuple[int, int]:
        """Tokens seen so far, from the wrapped transcoder."""
        return self._inner.usage

    @property
    def finished(self) -> bool:
        """The terminal event arrived."""
        return self._inner.finished


class OpenAIPassthrough:
    """OpenAI stream to an OpenAI caller; drops the usage chunk it did not ask for."""

    def __init__(self, caller_wants_usage: bool) -> None:
        self.caller_wants_usage = caller_wants_usage
        self.usage = (0, 0)
        self.finished = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Pass the event through; read usage; strip the usage-only chunk if unasked."""
        data = event.data
        if data == "[DONE]":
            self.finished = True
            return [DONE]
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedStream("upstream sent a chunk that is not JSON") from exc
        if not isinstance(chunk, dict):
            raise MalformedStream("upstream sent a chunk that is not an object")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = (
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
            if not self.caller_wants_usage and not chunk.get("choices"):
                return []
        return [encode_sse(data.encode())]


class AnthropicPassthrough:
    """Anthropic stream to an Anthropic caller; reads usage on the way."""

    def __init__(self) -> None:
        self.usage = (0, 0)
        self.finished = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Pass the event through; read usage from message_start and message_delta."""
        name = event.event
        if name in ("message_start", "message_delta", "error"):
            try:
                obj = orjson.loads(event.data)
            except orjson.JSONDecodeError as exc:
                raise MalformedStream("upstream sent an event that is not JSON") from exc
            if name == "message_start":
                usage = obj.get("message", {}).get("usage", {})
                self.usage = (int(usage.get("input_tokens") or 0), self.usage[1])
            elif name == "message_delta":
                usage = obj.get("usage") or {}
                if usage.get("input_tokens"):
                    self.usage = (int(usage["input_tokens"]), self.usage[1])
                self.usage = (self.usage[0], int(usage.get("output_tokens") or self.usage[1]))
        elif name == "message_stop":
            self.finished = True
        return [encode_sse(event.data.encode(), event.event)]


class ResponsesPassthrough:
    """OpenAI Responses API stream to its caller: named events, usage at the end."""

    _TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def __init__(self) -> None:
        self.usage = (0, 0)
        self.finished = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        """Pass the event through; read usage from the terminal event."""
        name = event.event
        if name in self._TERMINAL:
            try:
                obj = orjson.loads(event.data)
            except orjson.JSONDecodeError as exc:
                raise MalformedStream("upstream sent an event that is not JSON") from exc
            response = obj.get("response") if isinstance(obj, dict) else None
            usage = response.get("usage") if isinstance(response, dict) else None
            if isinstance(usage, dict):
                self.usage = (
                    int(usage.get("input_tokens") or 0),
                    int(usage.get("output_tokens") or 0),
                )
            self.finished = True
        return [encode_sse(event.data.encode(), name)]


def transcoder_for(
    caller_format: ApiFormat,
    backend_format: ApiFormat,
    model: str,
    caller_wants_usage: bool,
    *,
    responses: bool = False,
) -> Transcoder:
    """The transcoder between `backend_format` events and a `caller_format` caller.

    `responses`: the OpenAI Responses API, served only by OpenAI-format backends.
    """
    if responses:
        return ResponsesPassthrough()
    if caller_format == backend_format:
        if caller_format == "openai":
            return OpenAIPassthrough(caller_wants_usage)
        return AnthropicPassthrough()
    if caller_format == "openai":
        return AnthropicToOpenAIStream(model, include_usage=caller_wants_usage)
    return OpenAIToAnthropicStream(model)
