"""Three real sidecars leasing from one real lease server on loopback, against fake providers.

`QuotaRig` runs, in the test's event loop: an OpenAI-format and an
Anthropic-format fake provider, a webhook receiver, the operator's
`QuotaService` served over the ControlPlane's gRPC Leases stream (with the
loopback authenticator, scope checked against the pods' labels), and
`sidecars` sidecars, each with the compiled LLMRoute and LLMQuota and a
`LeaseKeeper` to that server. The lease server can be stopped and started
again on the same port, from the same ledger file, as an operator restart.
The ledger's clock is `time.time() + offset`, so a test can end a window.

`billed_tokens` asks each fake provider's admin API for every request it
received and counts what it billed, with the fake's own counting rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from sidelight_fake_provider.content import count_tokens_like_fake, echo_answer, message_text
from sidelight_fake_provider.server import FakeProvider
from sidelight_operator.controlplane import ControlPlaneServer, Hub, LoopbackAuthenticator, serve
from sidelight_operator.quota.service import QuotaService
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from sidelight_sidecar.agent import ControlPlaneConnection
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.retry import Backoff
from sidelight_sidecar.server import Sidecar, SidecarOptions
from tests.sidecar.harness import ANTHROPIC_KEY, OPENAI_KEY, LoopbackServer, compile_routes

HOOK_PATH = "/hooks/quota"
ROUTES = """
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: assistant, namespace: shop}
spec:
  backends:
  - name: gpt-4o
    provider: openai
    model: gpt-4o
    endpoints: [{url: "OPENAI_URL/v1"}]
    credentials: {secretRef: {name: openai, key: api-key}}
  - name: claude
    provider: anthropic
    model: claude-3-5-haiku-latest
    endpoints: [{url: "ANTHROPIC_URL"}]
    credentials: {secretRef: {name: anthropic, key: api-key}}
  routes:
  - {name: default, routeTo: gpt-4o}
  timeouts: {request: 30s, attempt: 20s, connect: 2s}
---
apiVersion: sidelight.io/v1alpha1
kind: LLMQuota
metadata: {name: payments, namespace: shop}
spec:
  scope: {team: payments}
  window: {rolling: 1h}
  limits: {tokens: LIMIT}
  softThresholdPercent: 80
  notify: {webhookSecretRef: {name: hook, key: url}}
"""


class WebhookReceiver(LoopbackServer):
    """Keeps each notification with the time it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[float, dict[str, Any]]] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(HOOK_PATH, self._post)

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append((time.time(), orjson.loads(await request.read())))
        return web.Response(text="ok")


@dataclass
class QuotaRig:
    """The running pieces; `start` and `stop` them."""

    tmp: Path
    limit: int = 100_000
    sidecar_count: int = 3
    ttl_s: float = 2.0
    offset: float = 0.0
    routes: str = ROUTES
    openai_fake: FakeProvider = field(
        default_factory=lambda: FakeProvider("openai", api_keys={"openai": OPENAI_KEY})
    )
    anthropic_fake: FakeProvider = field(
        default_factory=lambda: FakeProvider("anthropic", api_keys={"anthropic": ANTHROPIC_KEY})
    )
    hook: WebhookReceiver = field(default_factory=WebhookReceiver)
    sidecars: list[Sidecar] = field(default_factory=list)
    snapshot: snapshot_pb2.Snapshot = field(default_factory=snapshot_pb2.Snapshot)
    quotas: QuotaService | None = None
    server: ControlPlaneServer | None = None
    port: int = 0

    def clock(self) -> float:
        return time.time() + self.offset

    async def start(self) -> None:
        await self.openai_fake.start()
        await self.anthropic_fake.start()
        await self.hook.start()
        text = (
            self.routes.replace("OPENAI_URL", self.openai_fake.url)
            .replace("ANTHROPIC_URL", self.anthropic_fake.url)
            .replace("LIMIT", str(self.limit))
        )
        self.snapshot = compile_routes(text)
        await self.start_operator()
        for index in range(self.sidecar_count):
            identity = Identity("shop", f"chat-{index}", "chat", "payments", "chat", "prod")
            sidecar = Sidecar(SidecarOptions(port=0), identity=identity)
            assert sidecar.store.apply(self.snapshot) is None
            node = control_plane_pb2.Node(
                namespace="shop",
                pod=f"chat-{index}",
                uid=f"uid-{index}",
                labels={"sidelight.io/team": "payments", "app.kubernetes.io/name": "chat"},
            )
            connection = ControlPlaneConnection(f"127.0.0.1:{self.port}")
            sidecar.enforce_quotas(connection, node, backoff=Backoff(base_s=0.05, max_s=0.2))
            await sidecar.start()
            self.sidecars.append(sidecar)

    async def start_operator(self) -> None:
        """Start (or start again) the lease server, from the ledger file."""
        self.quotas = QuotaService(
            self.tmp / "quota-ledger.db",
            CollectorRegistry(),
            lambda pod: self.snapshot.quotas,
            lambda namespace, name, key: self.hook.url + HOOK_PATH,
            ttl_s=self.ttl_s,
        )
        self.quotas.ledger.clock = self.clock
        self.server = await serve(
            Hub(lambda pod: self.snapshot),
            LoopbackAuthenticator(),
            f"127.0.0.1:{self.port}",
            leases=self.quotas.lending,
        )
        self.port = self.server.port
        await self.quotas.start()

    async def stop_operator(self) -> None:
        """Stop the lease server as a crash would: streams cut, nothing said."""
        assert self.server is not None
        assert self.quotas is not None
        await self.server.stop(0)
        await self.quotas.stop()
        self.server = None

    async def stop(self) -> None:
        for sidecar in self.sidecars:
            await sidecar.stop()
        if self.server is not None:
            await self.stop_operator()
        await self.hook.stop()
        await self.anthropic_fake.stop()
        await self.openai_fake.stop()

    @property
    def spent(self) -> int:
        """Tokens the ledger knows were spent in the current window."""
        assert self.quotas is not None
        [quota] = self.snapshot.quotas
        return self.quotas.ledger.usage(quota).spent_tokens

    async def billed_tokens(self) -> list[tuple[float, int]]:
        """(arrival time, tokens billed) of every request the fakes received, oldest first."""
        billed = []
        async with aiohttp.ClientSession() as http:
            for fake in (self.openai_fake, self.anthropic_fake):
                async with http.get(f"{fake.url}/_fake/requests") as response:
                    records = (await response.json())["requests"]
                for record in records:
                    billed.append((record["time"], tokens_billed(record["body"])))
        return sorted(billed)


def tokens_billed(body: dict[str, Any]) -> int:
    """Input plus output tokens the fake charges for a chat or messages request body."""
    messages = body["messages"]
    user_text = next(
        (message_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
        "",
    )
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return count_tokens_like_fake(body) + echo_answer(user_text, limit).output_tokens
