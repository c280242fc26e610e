"""A real sidecar kept in sync by its agent over loopback gRPC with a real hub.

The operator side is the control-plane hub with the pure compile step behind
it; the sidecar is the one that runs in a pod, answering real HTTP requests
that go to the fake provider (or to a gated backend that holds a request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sidelight_fake_provider.server import FakeProvider
from sidelight_operator.compile import compile_snapshot, select_for_pod
from sidelight_operator.controlplane import (
    ControlPlaneServer,
    Hub,
    LoopbackAuthenticator,
    PodRef,
    SidecarState,
    serve,
)
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from sidelight_sidecar.agent import AgentState, ControlPlaneAgent
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.retry import Backoff
from sidelight_sidecar.server import Sidecar, SidecarOptions
from tests.sidecar.harness import LoopbackServer

KEY = "sk-test-agent-0123456789"
NODE = control_plane_pb2.Node(pod="app-1", namespace="shop", uid="uid-1", build="test")
FAST = Backoff(base_s=0.01, max_s=0.05)


def llmroute(name: str, url: str, route: str, model: str = "gpt-4") -> dict[str, Any]:
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"namespace": "shop", "name": name, "generation": 1},
        "spec": {
            "backends": [
                {
                    "name": "main",
                    "provider": "openai",
                    "model": model,
                    "endpoints": [{"url": f"{url}/v1"}],
                    "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
                }
            ],
            "routes": [{"name": route, "routeTo": "main"}],
        },
    }


SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"namespace": "shop", "name": "openai"},
    "stringData": {"api-key": KEY},
}


class Operator:
    """The control-plane side: resources, a hub over them, a gRPC server."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources = resources
        self.override: snapshot_pb2.Snapshot | None = None
        self.hub = Hub(self.snapshot_for, debounce_s=0.01)
        self.server: ControlPlaneServer | None = None
        self.port = 0

    def snapshot_for(self, pod: PodRef) -> snapshot_pb2.Snapshot:
        if self.override is not None:
            return self.override
        return compile_snapshot(select_for_pod(self.resources, pod.namespace, pod.labels)).snapshot

    def apply(self, resources: list[dict[str, Any]]) -> str:
        """Change the resources; return the version they compile to."""
        self.resources = resources
        self.hub.notify_changed()
        return compile_snapshot(resources).snapshot.version

    async def start(self) -> None:
        self.server = await serve(self.hub, LoopbackAuthenticator(), f"127.0.0.1:{self.port}")
        self.port = self.server.port

    async def kill(self) -> None:
        assert self.server is not None
        await self.server.stop(None)
        self.server = None

    async def restart(self) -> None:
        """A new operator process: a fresh hub, the same address."""
        self.hub = Hub(self.snapshot_for, debounce_s=0.01)
        await self.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def sidecar(self) -> SidecarState:
        [state] = self.hub.sidecars()
        return state


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class Pod:
    """A sidecar with its agent, and an HTTP client for it."""

    def __init__(self, snapshot_path: Path, target: str) -> None:
        self.sidecar = Sidecar(
            SidecarOptions(port=0, snapshot_path=snapshot_path), identity=Identity("shop", "app-1")
        )
        self.agent = ControlPlaneAgent(self.sidecar.store, target, NODE, backoff=FAST)
        self.http = aiohttp.ClientSession()

    async def start(self) -> None:
        await self.sidecar.start()
        self.agent.start()

    async def stop(self) -> None:
        await self.agent.stop()
        await self.http.close()
        await self.sidecar.stop()

    async def ready(self) -> tuple[int, str]:
        async with self.http.get(f"{self.sidecar.url}/readyz") as response:
            return response.status, await response.text()

    async def chat(self) -> tuple[int, Mapping[str, str]]:
        body = {"model": "gpt-4", "messages": [{"role": "user", "content": "hello"}]}
        async with self.http.post(f"{self.sidecar.url}/v1/chat/completions", json=body) as r:
            await r.read()
            return r.status, r.headers

    def serving(self) -> str:
        return self.agent.held_version


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("openai", api_keys={"openai": KEY}) as provider:
        yield provider


@pytest.fixture
async def operator(fake: FakeProvider) -> AsyncIterator[Operator]:
    op = Operator([llmroute("assistant", fake.url, "first"), SECRET])
    await op.start()
    yield op
    if op.server is not None:
        await op.kill()


@pytest.fixture
async def pod(operator: Operator, tmp_path: Path) -> AsyncIterator[Pod]:
    p = Pod(tmp_path / "snapshot.pb", operator.target)
    await p.start()
    yield p
    await p.stop()


async def test_the_snapshot_is_delivered_acked_and_served(
    operator: Operator, pod: Pod, fake: FakeProvider
) -> None:
    version = compile_snapshot(operator.resources).snapshot.version
    await until(lambda: operator.hub.sidecars() and operator.sidecar().synced)
    state = operator.sidecar()
    assert state.acked_version == version
    assert state.pod == PodRef("shop", "app-1", "uid-1", "", {})
    assert pod.agent.state is AgentState.CONNECTED
    assert await pod.ready() == (200, f"ready {version}")
    status, headers = await pod.chat()
    assert status == 200
    assert headers["x-sidelight-route"] == "first"
    assert headers["x-sidelight-config-version"] == version
    assert len(fake.requests) == 1


async def test_a_sidecar_is_not_ready_until_it_holds_a_snapshot(
    operator: Operator, tmp_path: Path
) -> None:
    await operator.kill()
    p = Pod(tmp_path / "snapshot.pb", operator.target)
    await p.start()
    try:
        await until(lambda: p.agent.last_error)
        assert p.agent.state is not AgentState.CONNECTED
        assert (await p.ready())[0] == 503
        await operator.restart()
        await until(p.serving)
        assert (await p.ready())[0] == 200
    finally:
        await p.stop()


async def test_an_edit_is_pushed_and_acked(
    operator: Operator, pod: Pod, fake: FakeProvider
) -> None:
    await until(pod.serving)
    version = operator.apply([llmroute("assistant", fake.url, "second"), SECRET])
    await until(lambda: operator.sidecar().acked_version == version)
    assert pod.serving() == version
    assert (await pod.chat())[1]["x-sidelight-route"] == "second"


async def test_a_bad_snapshot_is_nacked_and_the_old_version_keeps_serving(
    operator: Operator, pod: Pod
) -> None:
    await until(pod.serving)
    good = pod.serving()
    bad = compile_snapshot(operator.resources).snapshot
    bad.route_sets[0].routes[0].route_to = "nowhere"
    bad.version = "bad-version"
    operator.override = bad
    operator.hub.notify_changed()
    await until(lambda: operator.sidecar().nack is not None)
    state = operator.sidecar()
    assert state.nack is not None
    assert state.nack.version == "bad-version"
    assert "unknown backends ['nowhere']" in state.nack.reason
    assert state.acked_version == good
    assert state.serving_version == good
    assert state.rejecting
    assert pod.serving() == good
    status, headers = await pod.chat()
    assert (status, headers["x-sidelight-config-version"]) == (200, good)


async def test_without_the_operator_the_sidecar_serves_and_a_restarted_one_reads_its_copy(
    operator: Operator, pod: Pod, fake: FakeProvider, tmp_path: Path
) -> None:
    await until(pod.serving)
    first = pod.serving()
    await operator.kill()
    await until(lambda: pod.agent.state is not AgentState.CONNECTED)
    assert (await pod.chat())[0] == 200
    await pod.stop()

    restarted = Pod(tmp_path / "snapshot.pb", operator.target)
    await restarted.start()
    try:
        assert await restarted.ready() == (200, f"ready {first}")
        status, headers = await restarted.chat()
        assert (status, headers["x-sidelight-route"]) == (200, "first")

        operator.resources = [llmroute("assistant", fake.url, "after-restart"), SECRET]
        await operator.restart()
        await until(lambda: operator.hub.sidecars() and operator.sidecar().synced)
        assert operator.sidecar().acked_version == restarted.serving() != first
        assert (await restarted.chat())[1]["x-sidelight-route"] == "after-restart"
    finally:
        await restarted.stop()


async def test_the_operator_back_with_the_same_resources_resyncs_without_a_rebuild(
    operator: Operator, pod: Pod
) -> None:
    await until(pod.serving)
    runtime = pod.sidecar.store.current
    await operator.kill()
    await operator.restart()
    await until(lambda: operator.hub.sidecars() and operator.sidecar().synced)
    assert operator.sidecar().serving_version == pod.serving()
    assert pod.sidecar.store.current is runtime


class GatedBackend(LoopbackServer):
    """An OpenAI-compatible backend that holds every request until released."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = 0
        self.gate = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.Response:
        self.arrived += 1
        await self.gate.wait()
        return web.json_response(
            {
                "id": "chatcmpl-gated",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "held"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )


async def test_a_request_in_flight_finishes_on_the_version_it_started_with(
    operator: Operator, pod: Pod, fake: FakeProvider
) -> None:
    gated = GatedBackend()
    await gated.start()
    try:
        old = operator.apply([llmroute("assistant", gated.url, "old-route"), SECRET])
        await until(lambda: pod.serving() == old)
        in_flight = asyncio.create_task(pod.chat())
        await until(lambda: gated.arrived == 1)
        new = operator.apply([llmroute("assistant", fake.url, "new-route"), SECRET])
        await until(lambda: operator.sidecar().acked_version == new)
        status, headers = await pod.chat()
        assert (status, headers["x-sidelight-route"]) == (200, "new-route")
        gated.gate.set()
        status, headers = await in_flight
        assert status == 200
        assert headers["x-sidelight-route"] == "old-route"
        assert headers["x-sidelight-config-version"] == old
    finally:
        await gated.stop()
