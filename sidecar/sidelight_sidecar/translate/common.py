"""What the request, response and stream translators share: the error, ids, stop reasons."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

__all__ = [
    "FINISH_REASONS",
    "STOP_REASONS",
    "JSONObject",
    "TranslationError",
    "anthropic_message_id",
    "objects",
    "openai_completion_id",
    "text_field",
    "tool_input",
]

JSONObject = dict[str, Any]
"""A JSON object as orjson parses it; shapes are checked where they branch."""


class TranslationError(ValueError):
    """The body cannot be expressed in the other format without changing its meaning.

    Meant to be answered with 400 `invalid_request_error` for a request, and
    with 502 (or an in-band stream error) for an upstream answer.
    """


FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic `stop_reason` to OpenAI `finish_reason`; anything else is `stop`."""

STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI `finish_reason` to Anthropic `stop_reason`; anything else is `end_turn`.

OpenAI does not say which stop sequence ended the text, so `stop` maps to
`end_turn`, never to `stop_sequence`.
"""


def openai_completion_id(upstream_id: object) -> str:
    """`chatcmpl-` and the Anthropic id without its `msg_` prefix (a fresh one if absent)."""
    if isinstance(upstream_id, str) and upstream_id:
        return "chatcmpl-" + upstream_id.removeprefix("msg_")
    return "chatcmpl-" + uuid.uuid4().hex


def anthropic_message_id(upstream_id: object) -> str:
    """`msg_` and the OpenAI id without its `chatcmpl-` prefix (a fresh one if absent)."""
    if isinstance(upstream_id, str) and upstream_id:
        return "msg_" + upstream_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def tool_input(arguments: object) -> JSONObject:
    """Parse OpenAI tool call `arguments` into an Anthropic tool `input` object."""
    if arguments is None or arguments == "":
        return {}
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError as error:
        raise TranslationError("tool call arguments are not valid JSON") from error
    if not isinstance(parsed, dict):
        raise TranslationError("tool call arguments must be a JSON object")
    return parsed


def objects(value: object, what: str) -> list[JSONObject]:
    """`value` as a list of JSON objects, or `TranslationError` naming `what`."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TranslationError(f"{what} must be a list of objects")
    return value


def text_field(container: JSONObject, key: str) -> str:
    """The string at `key`, or `TranslationError`."""
    value = container.get(key)
    if not isinstance(value, str):
        raise TranslationError(f"`{key}` must be a string")
    return value
