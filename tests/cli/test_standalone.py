"""Standalone mode: files compiled by the control plane, served by a sidecar connected to it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from sidelight_cli.standalone import FileSource, Standalone
from sidelight_fake_provider.server import FakeProvider
from sidelight_sidecar.server import Sidecar, SidecarOptions

KEY = "sk-standalone-0123456789"

ROUTE = """\
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: assistant, namespace: default}
spec:
  backends:
  - name: main
    provider: openai
    model: gpt-4
    endpoints: [{url: "URL/v1"}]
    credentials: {secretRef: {name: openai, key: api-key}}
  routes:
  - {name: ROUTE, routeTo: main}
"""
BROKEN = ROUTE.replace("routeTo: main", "routeTo: nowhere")


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class Local:
    """A running standalone pair over a directory, its output and an HTTP client."""

    def __init__(self, directory: Path, fake: FakeProvider) -> None:
        self.directory = directory
        self.fake = fake
        self.out = io.StringIO()
        self.source = FileSource([directory], out=self.out, debounce_s=0.01)
        self.standalone = Standalone(self.source, Sidecar(SidecarOptions(port=0)))
        self.http = aiohttp.ClientSession()

    def write(self, text: str, route: str) -> None:
        body = text.replace("URL", self.fake.url).replace("ROUTE", route)
        (self.directory / "route.yaml").write_text(body)

    @property
    def output(self) -> str:
        return self.out.getvalue()

    def served(self) -> int:
        """How many versions the sidecar ACKed, by the lines printed."""
        return sum(line.startswith("serving version") for line in self.output.splitlines())

    async def route(self) -> tuple[int, str]:
        body = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}
        url = f"{self.standalone.sidecar.url}/v1/chat/completions"
        async with self.http.post(url, json=body) as response:
            await response.read()
            return response.status, response.headers.get("x-sidelight-route", "")

    async def ready(self) -> int:
        async with self.http.get(f"{self.standalone.sidecar.url}/readyz") as response:
            return response.status


@pytest.fixture
async def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Local]:
    monkeypatch.setenv("SIDELIGHT_SECRET_OPENAI_API_KEY", KEY)
    async with FakeProvider("openai", api_keys={"openai": KEY}) as fake:
        pair = Local(tmp_path, fake)
        pair.write(ROUTE, "first")
        try:
            yield pair
        finally:
            await pair.http.close()
            await pair.standalone.stop()


async def test_the_files_are_served_once_the_sidecar_acked_them(local: Local) -> None:
    await local.standalone.start()
    assert local.source.snapshot is not None
    version = local.source.snapshot.version
    assert f"serving version {version}: 1 LLMRoute(s), 1 route(s), 0 Guardrail(s)" in local.output
    assert await local.ready() == 200
    assert await local.route() == (200, "first")
    [state] = local.source.hub.sidecars()
    assert (state.pod.namespace, state.pod.name) == ("default", "standalone")
    assert state.synced


async def test_an_edit_with_errors_keeps_the_last_good_version(local: Local) -> None:
    await local.standalone.start()
    assert local.source.snapshot is not None
    good = local.source.snapshot.version
    local.write(BROKEN, "second")
    assert not local.source.load()
    assert (
        "error: LLMRoute default/assistant: spec.routes[0].routeTo: "
        "names no backend in spec.backends: 'nowhere'"
    ) in local.output.splitlines()
    assert f"configuration not applied; still serving version {good}" in local.output
    assert await local.route() == (200, "first")
    local.write(ROUTE, "third")
    assert local.source.load()
    await until(lambda: local.served() == 2)
    assert await local.route() == (200, "third")


async def test_a_file_change_is_picked_up_by_the_watcher(local: Local) -> None:
    await local.standalone.start()
    stop = asyncio.Event()
    watcher = asyncio.create_task(local.source.watch(stop))
    try:
        for attempt in range(100):  # rewrite until the watcher has seen it, bounded
            local.write(ROUTE, f"watched-{attempt}")
            try:
                await until(lambda: local.served() >= 2, timeout=0.5)
                break
            except TimeoutError:
                continue
        status, route = await local.route()
        assert status == 200
        assert route.startswith("watched-")
    finally:
        stop.set()
        await watcher


async def test_broken_files_at_start_still_serve_what_compiles(local: Local) -> None:
    local.write(BROKEN, "first")
    await local.standalone.start()
    assert "serving version" in local.output
    assert "0 LLMRoute(s)" in local.output
    assert await local.ready() == 200


async def test_a_refusal_by_the_sidecar_is_printed(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(snapshot: object) -> str:
        return "the sidecar cannot build it"

    monkeypatch.setattr(local.standalone.sidecar.store, "apply", refuse)
    await local.standalone.start()
    assert "configuration refused by the sidecar: the sidecar cannot build it" in local.output
    assert await local.ready() == 503
