"""GrpcUsageSink against the operator's real ReportUsage server and usage store, on loopback.

The operator side is `serve` with an in-memory `UsageStore`; it is stopped
and started on the same port to play an operator that goes away. The last
test drives a real sidecar with the openai SDK against the fake provider
while that happens.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import openai
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from sidelight_fake_provider.server import FakeProvider
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
from sidelight_sidecar.server import Sidecar, SidecarOptions
from sidelight_sidecar.usage_report import GrpcUsageSink
from sidelight_sidecar.usage_spool import SUFFIX, UsageSpool
from tests.sidecar.harness import IDENTITY, OPENAI_KEY, compile_routes

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
    pricing: {inputPerMillionTokens: 2.5, outputPerMillionTokens: 10}
  routes:
  - name: default
    routeTo: gpt-4o
"""


class Traffic:
    """Chat completions through the sidecar, four at a time, until stopped."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self.client = client
        self.tokens: list[tuple[int, int]] = []  # (input, output) the provider reported
        self.failed = 0
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(n)) for n in range(4)]

    async def _run(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                completion = await self.client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": f"w{worker} n{n}"}]
                )
            except openai.APIError:
                self.failed += 1
                continue
            assert completion.usage is not None
            self.tokens.append((completion.usage.prompt_tokens, completion.usage.completion_tokens))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def test_an_operator_away_under_traffic_loses_and_doubles_nothing(
    operator: Operator, tmp_path: Path, token: Path
) -> None:
    fake = FakeProvider("openai", api_keys={"openai": OPENAI_KEY})
    await fake.start()
    delivered: list[str] = []
    operator.store.listeners.append(lambda new: delivered.extend(r.id for r in new))
    await operator.start()
    sidecar = Sidecar(SidecarOptions(port=0, usage_path=tmp_path / "usage.jsonl"), IDENTITY)
    connection = ControlPlaneConnection(f"127.0.0.1:{operator.port}", token_path=token)
    sidecar.report_usage(connection, NODE, tmp_path / "spool", backoff=FAST)
    await sidecar.start()
    assert sidecar.store.apply(compile_routes(ROUTES.replace("OPENAI_URL", fake.url))) is None
    client = openai.AsyncOpenAI(base_url=f"{sidecar.url}/v1", api_key="placeholder", max_retries=0)
    try:
        traffic = Traffic(client)
        await until(lambda: len(delivered) >= 20)
        await operator.stop()  # acknowledgements in flight are lost with it
        answered = len(traffic.tokens)
        await until(lambda: len(traffic.tokens) >= answered + 40)
        assert sidecar.reporter is not None
        assert sidecar.reporter.spool.pending()
        await operator.start()
        stored = len(delivered)
        await until(lambda: len(delivered) >= stored + 40)
        await traffic.stop()
    finally:
        await client.close()
        await sidecar.stop()
        await fake.stop()
    produced = [
        orjson.loads(line)["id"] for line in (tmp_path / "usage.jsonl").read_bytes().splitlines()
    ]
    assert traffic.failed == 0
    assert len(produced) == len(traffic.tokens) == len(fake.requests)
    assert sorted(delivered) == stored_ids(operator.store) == sorted(produced)
    assert hourly_requests(operator.store) == len(produced)
    with operator.store.reading() as conn:
        sums = conn.execute("SELECT SUM(input_tokens), SUM(output_tokens) FROM hourly").fetchone()
    assert sums == tuple(map(sum, zip(*traffic.tokens, strict=True)))
