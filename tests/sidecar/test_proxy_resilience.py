"""Retries, fallbacks and their limits, upstream errors in the caller's format."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import openai
import pytest

from sidelight_fake_provider.faults import FaultRule
from tests.sidecar.harness import OPENAI_KEY, SEED_ROUTES, Harness

SUMMARY = {"x-sidelight-task-type": "summarization"}
MESSAGES: Any = [{"role": "user", "content": "hello"}]


async def test_retry_then_success_on_the_same_backend(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.anthropic_fake.add_fault(FaultRule(status=529, times=1))
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="gpt-4", messages=MESSAGES, extra_headers=SUMMARY
    )
    assert raw.headers["x-sidelight-backend"] == "claude-3-haiku"
    assert raw.headers["x-sidelight-attempts"] == "2"
    assert raw.headers["x-sidelight-fallback"] == "false"
    assert len(harness.anthropic_fake.requests) == 2


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(status=429),
        FaultRule(status=500),
        FaultRule(status=503),
        FaultRule(context_length_exceeded=True),
        FaultRule(cut_after_chunks=0),
        FaultRule(malformed_chunk_at=1),
    ],
    ids=["429", "500", "503", "context-length", "cut-before-first-byte", "malformed-first"],
)
async def test_fallback_to_the_next_backend(harness: Harness, fault: FaultRule) -> None:
    harness.apply(SEED_ROUTES)
    harness.anthropic_fake.add_fault(fault)
    stream = fault.cut_after_chunks is not None or fault.malformed_chunk_at is not None
    if stream:
        async with harness.oai.chat.completions.with_streaming_response.create(
            model="gpt-4", messages=MESSAGES, extra_headers=SUMMARY, stream=True
        ) as raw:
            text = "".join(
                [c.choices[0].delta.content or "" async for c in await raw.parse() if c.choices]
            )
            headers = raw.headers
        assert text == "Echo: hello"
    else:
        result = await harness.oai.chat.completions.with_raw_response.create(
            model="gpt-4", messages=MESSAGES, extra_headers=SUMMARY
        )
        headers = result.headers
    assert headers["x-sidelight-backend"] == "gpt-4"
    assert headers["x-sidelight-fallback"] == "true"
    expected_attempts = 1 if fault.context_length_exceeded else 2
    assert len(harness.anthropic_fake.requests) == expected_attempts
    assert len(harness.openai_fake.requests) == 1
    spans = await harness.spans(3)
    request_span = next(s for s in spans if s.kind == s.SPAN_KIND_SERVER)
    assert [e.name for e in request_span.events].count("sidelight.fallback") == 1
    records = await harness.usage(1)
    assert records[-1]["fallback"] is True
    assert records[-1]["requested_model"] == "gpt-4"
    assert records[-1]["served_model"] == "gpt-4"


async def test_stream_failing_after_first_byte_ends_with_in_band_error(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.anthropic_fake.add_fault(FaultRule(cut_after_chunks=4))
    stream = await harness.oai.chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "a b c d e f"}],
        extra_headers=SUMMARY,
        stream=True,
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    assert harness.openai_fake.requests == []  # never a fallback after the first byte


async def test_anthropic_caller_gets_in_band_error_event(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.openai_fake.add_fault(FaultRule(cut_after_chunks=3))

    async def consume() -> None:
        async with harness.ant.messages.stream(
            model="gpt-4", max_tokens=100, messages=[{"role": "user", "content": "a b c d e"}]
        ) as stream:
            async for _ in stream:
                pass

    with pytest.raises(anthropic.APIStatusError):
        await consume()


async def test_client_error_passes_through_in_caller_format(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.anthropic_fake.add_fault(FaultRule(status=400))
    with pytest.raises(openai.BadRequestError) as err:
        await harness.oai.chat.completions.create(
            model="gpt-4", messages=MESSAGES, extra_headers=SUMMARY
        )
    assert err.value.response.headers["x-sidelight-backend"] == "claude-3-haiku"
    assert err.value.response.headers["x-sidelight-error-source"] == "upstream"
    assert len(harness.anthropic_fake.requests) == 1
    assert harness.openai_fake.requests == []


async def test_exhausted_fallbacks_return_the_last_error(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.anthropic_fake.add_fault(FaultRule(status=503))
    harness.openai_fake.add_fault(FaultRule(status=429, retry_after="0"))
    with pytest.raises(anthropic.RateLimitError):
        await harness.ant.messages.create(
            model="claude-3-haiku", max_tokens=10, messages=MESSAGES, extra_headers=SUMMARY
        )
    assert len(harness.anthropic_fake.requests) == 2
    assert len(harness.openai_fake.requests) == 2


async def test_retry_after_is_honoured(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.openai_fake.add_fault(FaultRule(status=429, retry_after="1", times=1))
    started = time.monotonic()
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="gpt-4", messages=MESSAGES
    )
    assert raw.headers["x-sidelight-attempts"] == "2"
    assert time.monotonic() - started >= 1.0
    first, second = harness.openai_fake.requests
    assert second.time - first.time >= 1.0


async def test_attempt_timeout_then_fallback(harness: Harness) -> None:
    harness.apply(
        SEED_ROUTES.replace("attempt: 5s", "attempt: 200ms").replace("attempts: 2", "attempts: 1")
    )
    harness.anthropic_fake.add_fault(FaultRule(latency_ms=2000))
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="gpt-4", messages=MESSAGES, extra_headers=SUMMARY
    )
    assert raw.headers["x-sidelight-backend"] == "gpt-4"
    records = await harness.usage(1)
    assert records[-1]["attempts"] == 2


async def test_unreachable_endpoint_is_a_502_in_caller_format(harness: Harness) -> None:
    harness.apply(SEED_ROUTES.replace("OPENAI_URL/v1", "http://127.0.0.1:9/v1"))
    with pytest.raises(openai.APIStatusError) as err:
        await harness.oai.chat.completions.create(model="gpt-4", messages=MESSAGES)
    assert err.value.status_code == 502
    assert err.value.response.headers["x-sidelight-attempts"] == "2"


async def test_upstream_401_never_echoes_the_key(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.openai_fake.state.api_keys = {"openai": "sk-a-different-key"}
    with pytest.raises(openai.AuthenticationError) as err:
        await harness.oai.chat.completions.create(model="gpt-4", messages=MESSAGES)
    # OpenAI's own 401 message shows the key's first 3 and last 4 characters.
    assert OPENAI_KEY[-4:] not in err.value.response.text
    assert "credentials" in err.value.message
