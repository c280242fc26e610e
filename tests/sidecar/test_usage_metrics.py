"""The sidecar's /metrics: records dropped by a full spool are counted where a person can look."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from sidelight_proto.v1 import control_plane_pb2, usage_pb2
from sidelight_sidecar.agent import ControlPlaneConnection
from sidelight_sidecar.server import Sidecar, SidecarOptions
from sidelight_sidecar.usage_spool import SUFFIX, frame


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def record(n: int) -> usage_pb2.UsageRecord:
    return usage_pb2.UsageRecord(id=f"trace{n:04d}-span", requested_model="m", input_tokens=1000)


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_full_spool_is_counted_on_metrics(tmp_path: Path) -> None:
    size = len(frame(record(0)))
    sidecar = Sidecar(SidecarOptions(port=0, usage_spool_bytes=size * 3, usage_flush_timeout_s=0))
    connection = ControlPlaneConnection(f"127.0.0.1:{closed_port()}")  # the operator is away
    sidecar.report_usage(connection, control_plane_pb2.Node(), tmp_path / "spool")
    await sidecar.start()
    try:
        for n in range(5):
            sidecar.usage.submit(record(n))
        await sidecar.usage.flush()
        metrics = await scrape(sidecar.url)
    finally:
        await sidecar.stop()
    dropped = "sidelight_usage_records_dropped_total"
    assert metrics[(dropped, (("reason", "spool_full"),))] == 2
    assert metrics[(dropped, (("reason", "queue_full"),))] == 0
    assert metrics[("sidelight_usage_spool_bytes", ())] == size * 3
    assert metrics[("sidelight_usage_reporting_connected", ())] == 0
    assert len(list((tmp_path / "spool").glob(f"*{SUFFIX}"))) == 1  # kept for the next start
