"""Standalone mode serves the usage views: ReportUsage on loopback feeds `sidelight cost`."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpc import aio

from sidelight_cli.main import main
from sidelight_cli.standalone import FileSource, Standalone
from sidelight_operator.usage import UsageOptions, UsageService
from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc
from sidelight_sidecar.server import Sidecar, SidecarOptions
from tests.operator.usage.factory import record


@pytest.fixture
async def standalone(tmp_path: Path) -> AsyncIterator[Standalone]:
    routes = tmp_path / "routes"
    routes.mkdir()
    usage = UsageService(UsageOptions("127.0.0.1", 0, tmp_path / "usage.db"))
    local = Standalone(
        FileSource([routes], out=io.StringIO()),
        Sidecar(SidecarOptions(port=0)),
        usage,
    )
    await local.start()
    try:
        yield local
    finally:
        await local.stop()


async def report(target: str, records: list[control_plane_pb2.UsageReport]) -> list[str]:
    """Send reports on one ReportUsage stream; the ids acknowledged."""
    async with aio.insecure_channel(target) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        acks = [ack async for ack in stub.ReportUsage(iter(records))]
    return [id_ for ack in acks for id_ in ack.ids]


async def test_reported_usage_reaches_sidelight_cost(
    standalone: Standalone, capsys: pytest.CaptureFixture[str]
) -> None:
    assert standalone.agent is not None
    assert standalone.usage is not None
    node = control_plane_pb2.Node(namespace="default", pod="standalone")
    now = time.time()
    first = control_plane_pb2.UsageReport(node=node, records=[record("a", now - 5, cost_usd=0.5)])
    again = control_plane_pb2.UsageReport(
        records=[record("a", now - 5), record("b", now - 1, application="search", cost_usd=0.25)]
    )
    assert await report(standalone.agent.target, [first, again]) == ["a", "a", "b"]
    url = f"http://127.0.0.1:{standalone.usage.port}"
    argv = ["cost", "--by", "application", "--since", "1h", "--json", "--url", url]
    assert await asyncio.to_thread(main, argv) == 0
    body = json.loads(capsys.readouterr().out)
    assert {g["key"]: g["cost_usd"] for g in body["groups"]} == {"checkout": 0.5, "search": 0.25}
