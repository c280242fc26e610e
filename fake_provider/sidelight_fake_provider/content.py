"""What the fake provider says: deterministic answers, tool calls, embeddings, token counts.

Every answer is a fixed function of the request, so tests can predict it:

- The answer text is `"Echo:"` followed by the words of the last user
  message, joined by single spaces (`"Echo: what is up"`). In JSON mode it
  is `{"echo": <last user text>}` serialised compactly.
- A token is a whitespace-separated word. A limit on output tokens keeps the
  first N words of the answer (joined by single spaces) and marks it
  truncated.
- Input tokens (`count_tokens_like_fake`): every message, plus the system
  prompt or instructions when present, costs `MESSAGE_OVERHEAD` tokens plus
  the words of its text. A message's text is every string found under the
  keys `text`, `content`, `arguments` and `output`, through nested lists and
  objects, plus the JSON of Anthropic `tool_use` inputs; images and other
  parts count nothing, and tool definitions count nothing.
- Embedding inputs (`count_embedding_tokens`) cost their words, or their
  length for token arrays, with no overhead.
- Output tokens are the words of the answer; for a tool call, the words of
  the tool name plus the words of its JSON arguments.
- A tool call is made when tools are offered, the tool choice allows it, and
  either the choice forces a tool or the last user text contains the word
  "weather" and the conversation does not end with a tool result. The
  arguments fill each property of the tool's schema from its type: the first
  `enum` value, the last user text for strings, 0, false, [] or {}.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "MESSAGE_OVERHEAD",
    "Answer",
    "ToolCall",
    "ToolMode",
    "count_embedding_tokens",
    "count_tokens_like_fake",
    "count_words",
    "echo_answer",
    "embedding_inputs",
    "embedding_vector",
    "encode_embedding",
    "message_text",
    "plan_tool_call",
    "stream_pieces",
]

MESSAGE_OVERHEAD = 3
"""Input tokens charged for each message on top of its words."""

EMBEDDING_DIMENSIONS = 16
"""Length of an embedding vector when the request does not ask for `dimensions`."""

ToolMode = Literal["auto", "none", "required"]

_TEXT_KEYS = ("text", "content", "arguments", "output", "tool_calls", "function")
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
_PIECE = re.compile(r"\s*\S+")
_ARGUMENT_DEFAULTS: dict[str, object] = {
    "integer": 0,
    "number": 0,
    "boolean": False,
    "array": [],
    "object": {},
}


def count_words(text: str) -> int:
    """The fake's token count of `text`: its whitespace-separated words."""
    return len(text.split())


def message_text(value: object) -> str:
    """The countable text of a message, a content list or a part, joined by spaces."""
    pieces: list[str] = []
    _collect(value, pieces)
    return " ".join(pieces)


def _collect(value: object, pieces: list[str]) -> None:
    if isinstance(value, str):
        pieces.append(value)
    elif isinstance(value, list):
        for item in value:
            _collect(item, pieces)
    elif isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                _collect(value[key], pieces)
        if value.get("type") == "tool_use":
            pieces.append(orjson.dumps(value.get("input", {})).decode())


def count_tokens_like_fake(body: Mapping[str, Any]) -> int:
    """Input tokens the fake reports for a chat, messages or responses request body."""
    units: list[object] = []
    for key in ("system", "instructions"):
        if body.get(key):
            units.append(body[key])
    if "messages" in body:
        units.extend(body["messages"])
    elif isinstance(body.get("input"), list):
        units.extend(body["input"])
    elif "input" in body:
        units.append(body["input"])
    return sum(MESSAGE_OVERHEAD + count_words(message_text(unit)) for unit in units)


def embedding_inputs(value: object) -> list[str | list[int]]:
    """The inputs of an embeddings request: strings or token arrays, always a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, int) for item in value):
        return [list(value)]
    if isinstance(value, list):
        return [item if isinstance(item, str) else list(item) for item in value]
    return []


def count_embedding_tokens(value: object) -> int:
    """Input tokens the fake reports for an embeddings request's `input`."""
    return sum(
        count_words(item) if isinstance(item, str) else len(item)
        for item in embedding_inputs(value)
    )


@dataclass(frozen=True)
class Answer:
    """A text answer and whether it was cut by the output-token limit."""

    text: str
    truncated: bool

    @property
    def output_tokens(self) -> int:
        """Output tokens the fake reports for this answer."""
        return count_words(self.text)


def echo_answer(user_text: str, max_tokens: int | None, *, json_mode: bool = False) -> Answer:
    """The answer to `user_text`, cut to `max_tokens` words when given."""
    if json_mode:
        full = orjson.dumps({"echo": user_text}).decode()
    else:
        full = " ".join(["Echo:", *user_text.split()])
    words = full.split()
    if max_tokens is not None and len(words) > max_tokens:
        return Answer(" ".join(words[: max(max_tokens, 0)]), truncated=True)
    return Answer(full, truncated=False)


def stream_pieces(text: str) -> list[str]:
    """`text` cut into stream deltas, one word each with its leading whitespace."""
    return _PIECE.findall(text)


@dataclass(frozen=True)
class ToolCall:
    """A call of one of the offered tools, with JSON-encoded arguments."""

    name: str
    arguments: str

    @property
    def output_tokens(self) -> int:
        """Output tokens the fake reports for this call."""
        return count_words(self.name) + count_words(self.arguments)

    def argument_pieces(self, size: int = 12) -> list[str]:
        """The JSON arguments cut into stream deltas of `size` characters."""
        return [self.arguments[i : i + size] for i in range(0, len(self.arguments), size)]


def plan_tool_call(
    tools: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    mode: ToolMode,
    forced_name: str | None,
    user_text: str,
    after_tool_result: bool,
) -> ToolCall | None:
    """The tool call the fake makes, if any, given `(name, JSON schema)` pairs."""
    if not tools or mode == "none":
        return None
    schemas = dict(tools)
    if mode == "required":
        name = forced_name if forced_name in schemas else tools[0][0]
    elif not after_tool_result and _WEATHER.search(user_text):
        name = tools[0][0]
    else:
        return None
    return ToolCall(name, orjson.dumps(_arguments(schemas[name], user_text)).decode())


def _arguments(schema: Mapping[str, Any], user_text: str) -> dict[str, object]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    arguments: dict[str, object] = {}
    for key, value in properties.items():
        spec = value if isinstance(value, dict) else {}
        if spec.get("enum"):
            arguments[key] = spec["enum"][0]
        else:
            arguments[key] = _ARGUMENT_DEFAULTS.get(str(spec.get("type")), user_text)
    return arguments


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on `text`, exactly representable as float32."""
    raw = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    values = [v / 32767.5 - 1.0 for v in struct.unpack(f"<{dimensions}H", raw)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


def encode_embedding(vector: Sequence[float]) -> str:
    """A vector as OpenAI's base64 `encoding_format` sends it: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
