"""`sidelight sidecar`: the injected command, connected to a control plane on loopback."""

from __future__ import annotations

import argparse
import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from sidelight_cli.sidecar_cmd import add_sidecar_command, host_port, run_sidecar
from sidelight_operator.compile import compile_snapshot
from sidelight_operator.controlplane import Hub, LoopbackAuthenticator, PodRef, serve
from sidelight_proto.v1 import snapshot_pb2

RESOURCES = [
    {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"namespace": "shop", "name": "assistant"},
        "spec": {
            "backends": [
                {
                    "name": "local",
                    "provider": "openai-compatible",
                    "model": "m",
                    "endpoints": [{"url": "http://127.0.0.1:9/v1"}],
                }
            ],
            "routes": [{"name": "default", "routeTo": "local"}],
        },
    }
]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sidelight")
    add_sidecar_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["sidecar", *argv])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_the_arguments_parse() -> None:
    args = parse("--control-plane", "op.sidelight-system.svc:8443", "--ca", "/ca.crt")
    assert args.control_plane == ("op.sidelight-system.svc", 8443)
    assert args.ca == Path("/ca.crt")
    assert args.listen == ("127.0.0.1", 4000)
    assert host_port("[::1]:9") == ("::1", 9)
    with pytest.raises(SystemExit):
        parse("--control-plane", "no-port")


async def test_plain_text_off_loopback_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--control-plane", "10.0.0.1:8443", "--token-file", "/token")
    assert await run_sidecar(args, asyncio.Event()) == 2
    assert "--ca is required" in capsys.readouterr().err


async def test_the_sidecar_gets_its_pods_snapshot_and_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIDELIGHT_POD_NAME", "chat-1")
    monkeypatch.setenv("SIDELIGHT_POD_NAMESPACE", "shop")
    monkeypatch.setenv("SIDELIGHT_POD_UID", "uid-1")
    labels = tmp_path / "labels"
    labels.write_text('app="chat"\n')
    seen: list[PodRef] = []

    def snapshot_for(pod: PodRef) -> snapshot_pb2.Snapshot:
        seen.append(pod)
        return compile_snapshot(RESOURCES).snapshot

    hub = Hub(snapshot_for)
    server = await serve(hub, LoopbackAuthenticator(), "127.0.0.1:0")
    port = free_port()
    args = parse(
        "--control-plane",
        f"localhost:{server.port}",
        "--listen",
        f"127.0.0.1:{port}",
        "--snapshot-path",
        str(tmp_path / "snapshot.pb"),
        "--labels-file",
        str(labels),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_sidecar(args, stop))
    try:
        await until(lambda: hub.sidecars() and hub.sidecars()[0].synced)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            assert response.status == 200
        assert seen[0] == PodRef("shop", "chat-1", "uid-1", "", {"app": "chat"})
        assert (tmp_path / "snapshot.pb").exists()
    finally:
        stop.set()
        assert await running == 0
        await server.stop(None)
