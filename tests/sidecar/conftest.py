"""Fixtures for driving a real sidecar with the official SDKs against fake providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import openai
import pytest

from sidelight_fake_provider.server import FakeProvider
from sidelight_sidecar.server import Sidecar, SidecarOptions
from tests.sidecar.harness import ANTHROPIC_KEY, IDENTITY, OPENAI_KEY, Harness, OtlpReceiver


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    openai_fake = FakeProvider("openai", api_keys={"openai": OPENAI_KEY})
    anthropic_fake = FakeProvider("anthropic", api_keys={"anthropic": ANTHROPIC_KEY})
    otlp = OtlpReceiver()
    await openai_fake.start()
    await anthropic_fake.start()
    await otlp.start()
    usage_path = tmp_path / "usage.jsonl"
    sidecar = Sidecar(
        SidecarOptions(port=0, otlp_endpoint=otlp.url, usage_path=usage_path),
        identity=IDENTITY,
    )
    await sidecar.start()
    oai = openai.AsyncOpenAI(base_url=f"{sidecar.url}/v1", api_key="placeholder", max_retries=0)
    ant = anthropic.AsyncAnthropic(base_url=sidecar.url, api_key="placeholder", max_retries=0)
    h = Harness(sidecar, openai_fake, anthropic_fake, otlp, usage_path, oai, ant)
    try:
        yield h
    finally:
        await oai.close()
        await ant.close()
        await sidecar.stop()
        await otlp.stop()
        await openai_fake.stop()
        await anthropic_fake.stop()
