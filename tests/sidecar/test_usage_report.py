"""GrpcUsageSink against the operator's real ReportUsage server and usage store, on loopback.

The operator side is `serve` with an in-memory `UsageStore`; it is stopped
and started on the same port to play an operator that goes away.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from sidelight_operator.controlplane import (
    ControlPlaneServer,
    Hub,
    PodRef,
    Unauthenticated,
    UsageReporting,
    serve,
)
from sidelight_operator.usage import UsageStore
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2, usage_pb2
from sidelight_sidecar.agent import ControlPlaneConnection
from sidelight_sidecar.retry import Backoff
from sidelight_sidecar.usage_report import GrpcUsageSink
from sidelight_sidecar.usage_spool import SUFFIX, UsageSpool

FAST = Backoff(base_s=0.01, max_s=0.05)
POD = PodRef("shop", "chat-1", "uid-1", "chat", {"app.kubernetes.io/name": "chat"})
NODE = control_plane_pb2.Node(namespace="shop", pod="chat-1")


class TokenAuthenticator:
    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        if token != "good":
            raise Unauthenticated("unknown token")
        return POD


def no_snapshot(pod: PodRef) -> snapshot_pb2.Snapshot:
    raise AssertionError("usage streams compute no snapshot")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored_ids(store: UsageStore) -> list[str]:
    with store.reading() as conn:
        return sorted(row[0] for row in conn.execute("SELECT id FROM records"))


def hourly_requests(store: UsageStore) -> int:
    with store.reading() as conn:
        (total,) = conn.execute("SELECT COALESCE(SUM(requests), 0) FROM hourly").fetchone()
        return int(total)


def records(first: int, count: int) -> list[usage_pb2.UsageRecord]:
    now = time.time()
    return [
        usage_pb2.UsageRecord(
            id=f"r{n:05d}",
            time=Timestamp(seconds=int(now)),
            requested_model="gpt-4o",
            input_tokens=n,
            output_tokens=1,
        )
        for n in range(first, first + count)
    ]


def ids(first: int, count: int) -> list[str]:
    return [r.id for r in records(first, count)]


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class Operator:
    """ReportUsage on a fixed port, with a store that outlives its restarts."""

    def __init__(self) -> None:
        self.store = UsageStore()
        self.port = free_port()
        self.server: ControlPlaneServer | None = None

    async def start(self) -> None:
        reporting = UsageReporting(self.store)
        self.server = await serve(
            Hub(no_snapshot), TokenAuthenticator(), f"127.0.0.1:{self.port}", usage=reporting
        )

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None


@pytest.fixture
async def operator() -> AsyncIterator[Operator]:
    op = Operator()
    yield op
    await op.stop()
    op.store.close()


def sink_for(
    operator: Operator, spool_dir: Path, token: Path, batch_records: int = 500, window: int = 4
) -> GrpcUsageSink:
    connection = ControlPlaneConnection(f"127.0.0.1:{operator.port}", token_path=token)
    spool = UsageSpool(spool_dir)
    return GrpcUsageSink(
        spool, connection, NODE, backoff=FAST, batch_records=batch_records, window=window
    )


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("good\n")
    return path


async def test_records_reach_the_store_and_leave_the_spool(
    operator: Operator, tmp_path: Path, token: Path
) -> None:
    await operator.start()
    sink = sink_for(operator, tmp_path / "spool", token, batch_records=100, window=2)
    await sink.start()
    for first in range(0, 1200, 300):
        await sink.write(records(first, 300))
    await until(lambda: len(stored_ids(operator.store)) == 1200)
    await until(lambda: not sink.spool.pending())
    assert stored_ids(operator.store) == ids(0, 1200)
    assert list((tmp_path / "spool").glob(f"*{SUFFIX}")) == []
    assert sink.connected
    await sink.close(1.0)


async def test_records_wait_on_disk_while_the_operator_is_away(
    operator: Operator, tmp_path: Path, token: Path
) -> None:
    sink = sink_for(operator, tmp_path / "spool", token)
    await sink.start()
    await sink.write(records(0, 50))
    await until(lambda: "UNAVAILABLE" in sink.last_error)
    assert sink.spool.pending()
    await operator.start()
    await until(lambda: len(stored_ids(operator.store)) == 50)
    await sink.write(records(50, 50))
    await until(lambda: len(stored_ids(operator.store)) == 100)
    assert hourly_requests(operator.store) == 100
    await sink.close(1.0)


async def test_a_restarted_sidecar_sends_what_its_spool_holds(
    operator: Operator, tmp_path: Path, token: Path
) -> None:
    before = sink_for(operator, tmp_path / "spool", token)
    await before.start()
    await before.write(records(0, 40))
    started = time.monotonic()
    await before.close(0.2)  # the operator is away: the records stay
    assert time.monotonic() - started < 2
    assert list((tmp_path / "spool").glob(f"*{SUFFIX}"))
    await operator.start()
    after = sink_for(operator, tmp_path / "spool", token)
    await after.start()
    await until(lambda: len(stored_ids(operator.store)) == 40)
    await after.close(1.0)
    assert stored_ids(operator.store) == ids(0, 40)


async def test_close_sends_everything_before_it_returns(
    operator: Operator, tmp_path: Path, token: Path
) -> None:
    await operator.start()
    sink = sink_for(operator, tmp_path / "spool", token)
    await sink.start()
    await sink.write(records(0, 700))
    await sink.close(5.0)
    assert stored_ids(operator.store) == ids(0, 700)
    assert list((tmp_path / "spool").glob(f"*{SUFFIX}")) == []


async def test_a_refused_token_stores_nothing_until_the_token_is_good(
    operator: Operator, tmp_path: Path, token: Path
) -> None:
    await asyncio.to_thread(token.write_text, "stolen")
    await operator.start()
    sink = sink_for(operator, tmp_path / "spool", token)
    await sink.start()
    await sink.write(records(0, 5))
    await until(lambda: "UNAUTHENTICATED" in sink.last_error)
    assert stored_ids(operator.store) == []
    await asyncio.to_thread(token.write_text, "good")  # the kubelet rotated the token
    await until(lambda: len(stored_ids(operator.store)) == 5)
    await sink.close(1.0)


async def test_the_operator_stamps_the_pods_identity(
    operator: Operator, tmp_path: Path, token: Path
) -> None:
    await operator.start()
    sink = sink_for(operator, tmp_path / "spool", token)
    await sink.start()
    forged = records(0, 1)
    forged[0].identity.namespace = "someone-else"
    await sink.write(forged)
    await sink.close(5.0)
    with operator.store.reading() as conn:
        row = conn.execute("SELECT namespace, application, pod FROM records").fetchone()
    assert row == ("shop", "chat", "chat-1")
