"""Canary: planted secrets and PII, through every path, never reach our telemetry.

Each value below travels through success, redaction, restoration, blocks in
both API formats, streaming, an upstream error, a retry and a fallback.
Afterwards every span (as OTLP bytes), every log record of any level and
every usage record is searched for each value and its digit-only form:
zero hits.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import anthropic
import openai
import pytest

from sidelight_fake_provider.faults import FaultRule
from tests.sidecar.harness import SEED_ROUTES, Harness

PLANTED = {
    "email": "canary.person@example.org",
    "card": "5555 5555 5555 4444",
    "ssn": "SSN 123-45-6789",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "phone": "+44 20 7946 0958",
    "aws": "AKIA4HKXQ7Z3NB2LRT5W",
    "openai_key": "sk-proj-CanaryCanaryCanary0123456789abcdefABCDEF",
}
# Loggers of the test's own clients and fakes, which see the prompts by design.
CALLER_SIDE = ("sidelight_fake_provider", "openai", "anthropic", "httpx", "httpcore")
PROMPT = "Please handle: " + "; ".join(PLANTED.values())
SECRET_PROMPT = f"deploy with key {PLANTED['aws']} for {PLANTED['email']}"

GUARDRAILS = """
---
apiVersion: sidelight.io/v1alpha1
kind: Guardrail
metadata: {name: canary, namespace: shop, generation: 1}
spec:
  stage: input
  restoreRedactions: true
  rules:
  - name: keys
    pii: {entities: [SECRET]}
    action: block
  - name: pii
    pii: {entities: [EMAIL, PHONE, CREDIT_CARD, US_SSN, IBAN]}
    action: redact
---
apiVersion: sidelight.io/v1alpha1
kind: Guardrail
metadata: {name: answers, namespace: shop, generation: 1}
spec:
  stage: output
  rules:
  - name: cards
    pii: {entities: [CREDIT_CARD]}
    action: redact
"""


def needles() -> list[str]:
    out: list[str] = []
    for value in PLANTED.values():
        out.append(value)
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 9:
            out.append(digits)
    return out


PII_PROMPT = "Please handle: " + "; ".join(
    v for k, v in PLANTED.items() if k not in ("aws", "openai_key")
)


async def drive_every_path(harness: Harness) -> None:
    user: list[Any] = [{"role": "user", "content": PII_PROMPT}]
    await harness.oai.chat.completions.create(model="gpt-4", messages=user)
    stream = await harness.oai.chat.completions.create(model="gpt-4", messages=user, stream=True)
    async for _ in stream:
        pass
    astream = await harness.ant.messages.create(
        model="claude-3-haiku", max_tokens=200, messages=user, stream=True
    )
    async for _ in astream:
        pass
    for secret_prompt in (SECRET_PROMPT, PROMPT):
        secret: list[Any] = [{"role": "user", "content": secret_prompt}]
        with pytest.raises(openai.BadRequestError):
            await harness.oai.chat.completions.create(model="gpt-4", messages=secret)
        with pytest.raises(anthropic.BadRequestError):
            await harness.ant.messages.create(
                model="claude-3-haiku",
                max_tokens=50,
                messages=secret,
                stream=True,
            )
    harness.openai_fake.add_fault(FaultRule(status=500, times=2))
    with pytest.raises(openai.InternalServerError):
        await harness.oai.chat.completions.create(model="gpt-4", messages=user)
    harness.anthropic_fake.add_fault(FaultRule(status=529, times=1))
    await harness.oai.chat.completions.create(
        model="gpt-4", messages=user, extra_headers={"x-sidelight-task-type": "summarization"}
    )
    harness.anthropic_fake.add_fault(FaultRule(status=529, times=2))
    await harness.ant.messages.create(
        model="claude-3-haiku",
        max_tokens=200,
        messages=user,
        extra_headers={"x-sidelight-task-type": "summarization"},
    )


async def test_no_planted_value_reaches_spans_logs_or_usage(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.apply(SEED_ROUTES + GUARDRAILS)
    await drive_every_path(harness)
    spans = await harness.spans(30)
    usage = await harness.usage(10)
    assert any(r.get("fallback") for r in usage), "the fallback path was not taken"
    assert any(r.get("error_type") == "guardrail_blocked" for r in usage)
    assert any(r.get("status") == 500 for r in usage)
    sent = repr([r.body for r in harness.openai_fake.requests + harness.anthropic_fake.requests])
    span_bytes = b"".join(s.SerializeToString() for s in spans)
    logs = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith(CALLER_SIDE)
    )
    usage_bytes = harness.usage_path.read_bytes()
    hits = [
        (needle, where)
        for needle in needles()
        for where, haystack in (
            ("spans", span_bytes),
            ("logs", logs.encode()),
            ("usage", usage_bytes),
            ("provider", sent.encode()),
        )
        if needle.encode() in haystack
    ]
    assert hits == []
