"""The texts of a request or response body that guardrails read and may rewrite.

A `TextSlots` is the list of places in a parsed JSON body that hold text a
person or a model wrote: message contents and text parts, system prompts,
tool-call arguments and tool results, embedding inputs, Responses API items.
Guardrails evaluate `texts()` and write the redacted texts back with
`replace()`, in place, so the body keeps its shape and everything else in it
(images, tool schemas, ids, signatures) is untouched.

Both API formats share one walk: the keys and block types below that never
hold free text (ids, roles, images, thinking blocks whose signature would
break if changed) are skipped; every other string leaf under a content key
is a slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Keys whose values are never free text, or must not change.
_SKIP_KEYS = frozenset(
    {
        "type",
        "id",
        "role",
        "name",
        "model",
        "tool_call_id",
        "tool_use_id",
        "call_id",
        "cache_control",
        "image_url",
        "source",
        "signature",
        "media_type",
        "input_audio",
        "file",
        "logprobs",
        "finish_reason",
        "stop_reason",
        "status",
    }
)
# Content blocks that carry no text the guardrails may read or rewrite.
_SKIP_BLOCKS = frozenset(
    {
        "image",
        "image_url",
        "input_image",
        "input_audio",
        "input_file",
        "file",
        "document",
        "thinking",
        "redacted_thinking",
    }
)
_REQUEST_KEYS = ("system", "messages", "input", "instructions", "prompt")
_RESPONSE_KEYS = ("choices", "content", "output")

_Container = dict[str, Any] | list[Any]


class TextSlots:
    """The text leaves of a body, in document order."""

    __slots__ = ("_slots",)

    def __init__(self, slots: list[tuple[_Container, Any]]) -> None:
        self._slots = slots

    def texts(self) -> list[str]:
        """The current text of every slot."""
        return [str(container[key]) for container, key in self._slots]

    def replace(self, texts: Sequence[str]) -> None:
        """Write `texts` back, one per slot, where they differ."""
        for (container, key), text in zip(self._slots, texts, strict=True):
            if container[key] != text:
                container[key] = text

    def __len__(self) -> int:
        return len(self._slots)


def request_slots(body: dict[str, Any]) -> TextSlots:
    """The text slots of an OpenAI or Anthropic request body."""
    return _slots(body, _REQUEST_KEYS)


def response_slots(body: dict[str, Any]) -> TextSlots:
    """The text slots of an OpenAI or Anthropic (non-streamed) response body."""
    return _slots(body, _RESPONSE_KEYS)


def _slots(body: dict[str, Any], keys: Sequence[str]) -> TextSlots:
    found: list[tuple[_Container, Any]] = []
    for key in keys:
        if key in body:
            _walk(body, key, found)
    return TextSlots(found)


def _walk(container: _Container, key: Any, out: list[tuple[_Container, Any]]) -> None:
    value = container[key]
    if isinstance(value, str):
        if value:
            out.append((container, key))
    elif isinstance(value, list):
        for i in range(len(value)):
            _walk(value, i, out)
    elif isinstance(value, dict):
        if value.get("type") in _SKIP_BLOCKS:
            return
        for name in value:
            if name not in _SKIP_KEYS:
                _walk(value, name, out)
