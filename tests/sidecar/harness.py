"""A real sidecar driven with the official SDKs against fake providers.

The sidecar, the fake providers and an OTLP/HTTP receiver all run in the
test's event loop on loopback ports. Configuration goes the user's way: LLMRoute
YAML compiled by the operator's pure compile step.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import yaml
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from sidelight_fake_provider.server import FakeProvider
from sidelight_operator.compile import compile_snapshot
from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.server import Sidecar

OPENAI_KEY = "sk-test-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
IDENTITY = Identity("shop", "chat-7d9f-abcde", "chat", "payments", "chat", "prod")


class LoopbackServer:
    """An aiohttp app on a free loopback port, for the peers tests need."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add_routes(self, app: web.Application) -> None:
        """Register the peer's handlers."""
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in self._runner.addresses if isinstance(a, tuple))
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class OtlpReceiver(LoopbackServer):
    """An OTLP/HTTP trace receiver that keeps the raw protobuf requests."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.raw: list[bytes] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/traces", self._traces)

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert request.content_type == "application/x-protobuf"
        self.raw.append(body)
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.requests.append(message)
        return web.Response(
            body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def spans(self) -> list[trace_pb2.Span]:
        return [
            span
            for req in self.requests
            for rs in req.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]


@dataclass
class Harness:
    """A running sidecar with its fake providers, clients and receivers."""

    sidecar: Sidecar
    openai_fake: FakeProvider
    anthropic_fake: FakeProvider
    otlp: OtlpReceiver
    usage_path: Path
    oai: openai.AsyncOpenAI
    ant: anthropic.AsyncAnthropic
    extra_fakes: dict[str, FakeProvider] = field(default_factory=dict)

    def apply(self, yaml_text: str) -> str:
        """Compile LLMRoute YAML (fake URLs substituted) and swap it in; return the version."""
        text = yaml_text.replace("OPENAI_URL", self.openai_fake.url).replace(
            "ANTHROPIC_URL", self.anthropic_fake.url
        )
        for name, fake in self.extra_fakes.items():
            text = text.replace(f"{name.upper()}_URL", fake.url)
        snapshot = compile_routes(text)
        reason = self.sidecar.store.apply(snapshot)
        assert reason is None, reason
        return snapshot.version

    async def spans(self, min_count: int = 1) -> list[trace_pb2.Span]:
        """Flush the sidecar's spans and return what the receiver got."""
        await asyncio.to_thread(self.sidecar.tracer_provider.force_flush)
        deadline = time.monotonic() + 5
        while len(self.otlp.spans()) < min_count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.otlp.spans()

    async def usage(self, count: int) -> list[dict[str, Any]]:
        """The usage records written so far (waits for `count`)."""
        await self.sidecar.usage.flush()
        records: list[dict[str, Any]] = []
        if self.usage_path.exists():
            records = [orjson.loads(x) for x in self.usage_path.read_bytes().splitlines()]
        assert len(records) >= count, records
        return records


def compile_routes(text: str) -> snapshot_pb2.Snapshot:
    """Compile LLMRoute YAML plus the test secrets; fail on any error."""
    resources = [d for d in yaml.safe_load_all(text) if d]
    result = compile_snapshot([*resources, *secrets()])
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert not errors, errors
    return result.snapshot


def secrets() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": "shop"},
            "stringData": {"api-key": key},
        }
        for name, key in (("openai", OPENAI_KEY), ("anthropic", ANTHROPIC_KEY))
    ]


SEED_ROUTES = """
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: assistant, namespace: shop, generation: 1}
spec:
  backends:
  - name: claude-3-haiku
    provider: anthropic
    model: claude-3-haiku-20240307
    endpoints: [{url: "ANTHROPIC_URL"}]
    credentials: {secretRef: {name: anthropic, key: api-key}}
  - name: gpt-3.5-turbo
    provider: openai
    model: gpt-3.5-turbo
    endpoints: [{url: "OPENAI_URL/v1"}]
    credentials: {secretRef: {name: openai, key: api-key}}
  - name: gpt-4
    provider: openai
    model: gpt-4
    endpoints: [{url: "OPENAI_URL/v1", weight: 1}]
    credentials: {secretRef: {name: openai, key: api-key}}
    pricing: {inputPerMillionTokens: 30, outputPerMillionTokens: 60}
  routes:
  - name: cheap-summaries
    match: {taskType: summarization, inputTokensLt: 1000}
    routeTo: claude-3-haiku
    fallbacks: [gpt-4]
  - name: low-chat
    match: {taskType: general_chat, userPriority: low}
    routeTo: gpt-3.5-turbo
  - name: premium
    match: {taskType: general_chat, userPriority: high, inputTokensGt: 2000}
    routeTo: gpt-4
  - name: default
    routeTo: gpt-4
  retry: {attempts: 2, backoff: {base: 1ms, max: 5ms}}
  timeouts: {request: 10s, attempt: 5s, connect: 1s}
"""
