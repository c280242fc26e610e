"""Token counting: real encodings for OpenAI models, a measured estimate elsewhere."""

from __future__ import annotations

import pytest

from sidelight_sidecar.tokens import TokenCounter, encoding_name, estimate

PROSE = (
    "The quarterly report shows revenue growth of twelve percent, driven by strong demand "
    "in the enterprise segment. Operating margins improved as the company reduced logistics "
    "costs and renegotiated supplier contracts. Management expects similar results next year."
)
CODE = (
    "def fibonacci(n: int) -> int:\n    if n < 2:\n        return n\n"
    "    return fibonacci(n - 1) + fibonacci(n - 2)\n\nprint([fibonacci(i) for i in range(10)])\n"
)
JSON_TEXT = '{"user": {"id": 1234, "name": "Ada", "roles": ["admin", "dev"]}, "active": true}'
CORPUS = [PROSE * 3, CODE * 3, JSON_TEXT * 3, (PROSE + CODE) * 2]
OTHER = [
    "Bonjour, je voudrais réserver une table pour quatre personnes ce soir à vingt heures.",
    "東京は日本の首都であり、世界で最も人口の多い都市の一つです。",
    "Привет, как дела? Я хотел бы узнать больше о вашем продукте.",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id DESC LIMIT 10;",
    "https://example.com/api/v1/items?id=42&sort=desc  user@example.org  +1 (555) 123-4567",
]


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-3-haiku-20240307", None),
        ("meta-llama/Llama-3-8b", None),
    ],
)
def test_encoding_by_model(model: str, encoding: str | None) -> None:
    assert encoding_name(model) == encoding


def test_real_encoding_counts_known_strings(counter: TokenCounter) -> None:
    # Reference counts from the published encodings.
    assert counter.count_text("hello world", "gpt-4") == 2
    assert counter.count_text("hello world", "gpt-4o") == 2
    assert counter.count_text("tiktoken is great!", "gpt-3.5-turbo") == 6


def test_chat_framing(counter: TokenCounter) -> None:
    body = {"messages": [{"role": "user", "content": "hello world"}]}
    assert counter.count_chat(body, "gpt-4") == 2 + 3 + 3


def test_counts_content_parts_and_system(counter: TokenCounter) -> None:
    body = {
        "system": "be brief",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello world"}]},
        ],
    }
    assert (
        counter.count_chat(body, "gpt-4")
        == counter.count_text("hello world\nbe brief", "gpt-4") + 6
    )


@pytest.mark.parametrize("text", CORPUS)
@pytest.mark.parametrize("model", ["gpt-4", "gpt-4o"])
def test_estimate_is_within_10_percent_on_english_code_and_json(
    counter: TokenCounter, text: str, model: str
) -> None:
    real = counter.count_text(text, model)
    assert abs(estimate(text) - real) / real <= 0.10, (estimate(text), real)


@pytest.mark.parametrize("text", OTHER)
@pytest.mark.parametrize("model", ["gpt-4", "gpt-4o"])
def test_estimate_is_within_40_percent_on_other_languages(
    counter: TokenCounter, text: str, model: str
) -> None:
    real = counter.count_text(text, model)
    assert abs(estimate(text) - real) / real <= 0.40, (estimate(text), real)


def test_estimate_for_unknown_models(counter: TokenCounter) -> None:
    assert counter.count_text("hello world", "claude-3-haiku") == 2
    assert counter.count_text("internationalization", "claude-3-haiku") == 2
    assert counter.count_text("", "claude-3-haiku") == 0
