"""The seed routes, driven with the official SDKs, reach the backends they name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sidecar.harness import ANTHROPIC_KEY, OPENAI_KEY, SEED_ROUTES, Harness

LONG = "word " * 2500


def hdrs(task: str | None, priority: str | None = None) -> dict[str, str]:
    headers = {}
    if task:
        headers["x-sidelight-task-type"] = task
    if priority:
        headers["x-sidelight-priority"] = priority
    return headers


@pytest.mark.parametrize(
    ("task", "priority", "text", "route", "backend", "fake", "model"),
    [
        (
            "summarization",
            None,
            "short text",
            "cheap-summaries",
            "claude-3-haiku",
            "anthropic",
            "claude-3-haiku-20240307",
        ),
        ("general_chat", "low", "hi", "low-chat", "gpt-3.5-turbo", "openai", "gpt-3.5-turbo"),
        ("general_chat", "high", LONG, "premium", "gpt-4", "openai", "gpt-4"),
        ("general_chat", "high", "short", "default", "gpt-4", "openai", "gpt-4"),
        ("summarization", None, LONG, "default", "gpt-4", "openai", "gpt-4"),
    ],
)
async def test_seed_routes_with_openai_sdk(
    harness: Harness,
    task: str,
    priority: str | None,
    text: str,
    route: str,
    backend: str,
    fake: str,
    model: str,
) -> None:
    harness.apply(SEED_ROUTES)
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="assistant",
        messages=[{"role": "user", "content": text}],
        extra_headers=hdrs(task, priority),
    )
    completion = raw.parse()
    assert raw.headers["x-sidelight-route"] == route
    assert raw.headers["x-sidelight-backend"] == backend
    assert raw.headers["x-sidelight-model"] == model
    assert raw.headers["x-sidelight-fallback"] == "false"
    assert completion.choices[0].message.content
    target = harness.anthropic_fake if fake == "anthropic" else harness.openai_fake
    other = harness.openai_fake if fake == "anthropic" else harness.anthropic_fake
    assert len(target.requests) == 1
    assert other.requests == []
    sent = target.requests[0]
    assert sent.body["model"] == model
    if fake == "anthropic":
        assert sent.path == "/v1/messages"
        assert sent.credentials == {"x-api-key": ANTHROPIC_KEY}
    else:
        assert sent.path == "/v1/chat/completions"
        assert sent.credentials == {"authorization": f"Bearer {OPENAI_KEY}"}


async def test_metadata_hints_and_header_wins(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "hi"}],
        metadata={"sidelight_task_type": "general_chat", "sidelight_priority": "low", "x": "1"},
    )
    assert raw.headers["x-sidelight-route"] == "low-chat"
    assert harness.openai_fake.requests[0].body["metadata"] == {"x": "1"}
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "hi"}],
        metadata={"sidelight_task_type": "general_chat", "sidelight_priority": "low"},
        extra_headers=hdrs("summarization"),
    )
    assert raw.headers["x-sidelight-route"] == "cheap-summaries"
    assert "metadata" not in harness.anthropic_fake.requests[0].body


async def test_caller_credentials_never_go_upstream(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    await harness.oai.chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-api-key": "caller-secret", "api-key": "caller-secret-2"},
    )
    sent = harness.openai_fake.requests[0]
    assert sent.credentials == {"authorization": f"Bearer {OPENAI_KEY}"}
    assert "caller-secret" not in str(sent.headers)
    assert "placeholder" not in str(sent.headers)


async def test_models_list(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    models = [m.id async for m in harness.oai.models.list()]
    assert models == ["claude-3-haiku", "gpt-3.5-turbo", "gpt-4"]
    page = await harness.ant.models.list()
    assert [m.id for m in page.data] == models


async def test_unknown_model_without_default_is_404_in_both_formats(harness: Harness) -> None:
    import anthropic
    import openai

    harness.apply(SEED_ROUTES.replace("  - name: default\n    routeTo: gpt-4\n", ""))
    with pytest.raises(openai.NotFoundError) as oe:
        await harness.oai.chat.completions.create(
            model="gpt-9", messages=[{"role": "user", "content": "hi"}]
        )
    body: Any = oe.value.body
    assert body["code"] == "model_not_found"
    with pytest.raises(anthropic.NotFoundError) as ae:
        await harness.ant.messages.create(
            model="gpt-9", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert ae.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert harness.openai_fake.requests == []
