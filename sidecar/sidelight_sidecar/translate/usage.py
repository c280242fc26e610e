"""Token usage in both formats, read into one shape and written back out.

OpenAI's `prompt_tokens` counts every prompt token, cached ones included
(`prompt_tokens_details.cached_tokens` is a part of it). Anthropic's
`input_tokens` counts only the uncached ones; cache reads and writes are
reported beside it. `Usage.input_tokens` follows OpenAI: all prompt tokens,
so the two formats settle the same amount for the same exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidelight_sidecar.translate.common import JSONObject

__all__ = [
    "Usage",
    "anthropic_usage",
    "anthropic_usage_object",
    "openai_usage",
    "openai_usage_object",
    "read_anthropic_usage",
    "read_openai_usage",
]


@dataclass(slots=True)
class Usage:
    """Token counts of one exchange; the cache counts are parts of `input_tokens`."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def openai_usage(body: JSONObject) -> tuple[int, int]:
    """(input, output) tokens of an OpenAI response or chunk; (0, 0) without `usage`."""
    usage = Usage()
    read_openai_usage(usage, body.get("usage"))
    return usage.input_tokens, usage.output_tokens


def anthropic_usage(body: JSONObject) -> tuple[int, int]:
    """(input, output) tokens of an Anthropic message or `message_delta` event.

    Input includes cache reads and writes. (0, 0) without `usage`.
    """
    usage = Usage()
    read_anthropic_usage(usage, body.get("usage"))
    return usage.input_tokens, usage.output_tokens


def read_openai_usage(target: Usage, usage: object) -> None:
    """Update `target` from an OpenAI `usage` object; absent counts keep their value."""
    if not isinstance(usage, dict):
        return
    target.input_tokens = _count(usage, "prompt_tokens", target.input_tokens)
    target.output_tokens = _count(usage, "completion_tokens", target.output_tokens)
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        target.cache_read_tokens = _count(details, "cached_tokens", target.cache_read_tokens)
        target.cache_write_tokens = _count(details, "cache_write_tokens", target.cache_write_tokens)


def read_anthropic_usage(target: Usage, usage: object) -> None:
    """Update `target` from an Anthropic `usage` object; absent counts keep their value.

    `message_delta` events carry cumulative counts, often only `output_tokens`.
    """
    if not isinstance(usage, dict):
        return
    uncached = target.input_tokens - target.cache_read_tokens - target.cache_write_tokens
    uncached = _count(usage, "input_tokens", uncached)
    target.cache_read_tokens = _count(usage, "cache_read_input_tokens", target.cache_read_tokens)
    target.cache_write_tokens = _count(
        usage, "cache_creation_input_tokens", target.cache_write_tokens
    )
    target.input_tokens = uncached + target.cache_read_tokens + target.cache_write_tokens
    target.output_tokens = _count(usage, "output_tokens", target.output_tokens)


def openai_usage_object(usage: Usage) -> JSONObject:
    """The OpenAI `usage` object; `prompt_tokens_details` only when a cache was used."""
    result: JSONObject = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    if usage.cache_read_tokens or usage.cache_write_tokens:
        details = {"cached_tokens": usage.cache_read_tokens}
        if usage.cache_write_tokens:
            details["cache_write_tokens"] = usage.cache_write_tokens
        result["prompt_tokens_details"] = details
    return result


def anthropic_usage_object(usage: Usage) -> JSONObject:
    """The Anthropic `usage` object, with the cache counts as Anthropic always sends them."""
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(uncached, 0),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def _count(container: JSONObject, key: str, default: int) -> int:
    value = container.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default
