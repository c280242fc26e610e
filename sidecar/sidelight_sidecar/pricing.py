"""Cost of a request from its tokens: a built-in table, overridable per backend.

Prices are US dollars per million tokens, list prices of the providers as
published for their standard tier. A backend's `pricing` in the LLMRoute
overrides the table; a model in neither costs 0 and is reported as unpriced.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """Dollars per million input and output tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for the given token counts."""
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


# Longest prefix wins, so dated model names ("gpt-4o-2024-08-06") match.
BUILTIN_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.4),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "gpt-4.1-nano": Price(0.1, 0.4),
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "gpt-4-turbo": Price(10.0, 30.0),
    "gpt-4": Price(30.0, 60.0),
    "gpt-3.5-turbo": Price(0.5, 1.5),
    "o1": Price(15.0, 60.0),
    "o1-mini": Price(1.1, 4.4),
    "o3": Price(2.0, 8.0),
    "o3-mini": Price(1.1, 4.4),
    "o4-mini": Price(1.1, 4.4),
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
    "text-embedding-ada-002": Price(0.1, 0.0),
    "claude-3-haiku": Price(0.25, 1.25),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "claude-haiku-4-5": Price(1.0, 5.0),
    "claude-3-sonnet": Price(3.0, 15.0),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-3-7-sonnet": Price(3.0, 15.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-3-opus": Price(15.0, 75.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-opus-4-5": Price(5.0, 25.0),
}

_BY_LENGTH = sorted(BUILTIN_PRICES, key=len, reverse=True)


def builtin_price(model: str) -> Price | None:
    """The table's price for `model` by longest matching prefix, if any."""
    name = model.lower().rsplit("/", 1)[-1]
    for prefix in _BY_LENGTH:
        if name.startswith(prefix):
            return BUILTIN_PRICES[prefix]
    return None
