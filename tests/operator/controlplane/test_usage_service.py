"""ReportUsage over real loopback gRPC: authenticated like the config stream, identity from the pod.

An authenticator that maps tokens to pods stands in for the TokenReview one;
`RecordingIngest` stands in for the usage store (it keeps what it was given
and drops ids it has seen, as the store's interface says).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
from grpc import aio

from sidelight_operator.controlplane import (
    Authenticator,
    Hub,
    LoopbackAuthenticator,
    PermissionDenied,
    PodRef,
    Unauthenticated,
    UsageReporting,
    build_identity,
    consistent_workload,
    serve,
)
from sidelight_operator.inject import IdentityLabels
from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc, snapshot_pb2, usage_pb2

LABELS = IdentityLabels(team="corp/team", application="app", environment="corp/env")
POD_LABELS = {"corp/team": "payments", "app": "checkout", "corp/env": "prod", "other": "x"}
UsageCall = aio.StreamStreamCall[control_plane_pb2.UsageReport, control_plane_pb2.UsageAck]
PODS = {
    "token-a": PodRef("shop", "checkout-7d9f8b6c4-x2x9q", "uid-a", "checkout", POD_LABELS),
    "token-b": PodRef("lab", "notebook", "uid-b", "default", {}),
}


class TokenAuthenticator:
    """Token -> pod; a node naming the pod `forbidden` is refused."""

    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        if token is None or token not in PODS:
            raise Unauthenticated("unknown token")
        if node.pod == "forbidden":
            raise PermissionDenied("this pod may not report")
        return PODS[token]


class RecordingIngest:
    """The store's interface: keeps new records, drops ids already seen."""

    def __init__(self, fail: bool = False) -> None:
        self.records: dict[str, usage_pb2.UsageRecord] = {}
        self.calls = 0
        self.fail = fail
        self._lock = threading.Lock()

    def ingest(self, records: Sequence[usage_pb2.UsageRecord]) -> int:
        if self.fail:
            raise OSError("disk full")
        with self._lock:
            self.calls += 1
            new = [r for r in records if r.id not in self.records]
            for record in new:
                copy = usage_pb2.UsageRecord()
                copy.CopyFrom(record)
                self.records[record.id] = copy
            return len(new)


def no_snapshot(pod: PodRef) -> snapshot_pb2.Snapshot:
    raise AssertionError("usage streams compute no snapshot")


@contextlib.asynccontextmanager
async def reporting_server(
    ingest: RecordingIngest,
    authenticator: Authenticator | None = None,
    trust_records: bool = False,
    with_usage: bool = True,
) -> AsyncIterator[control_plane_pb2_grpc.ControlPlaneAsyncStub]:
    usage = UsageReporting(ingest, LABELS, trust_records) if with_usage else None
    auth = authenticator or TokenAuthenticator()
    running = await serve(Hub(no_snapshot), auth, "127.0.0.1:0", usage=usage)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield control_plane_pb2_grpc.ControlPlaneStub(channel)
    finally:
        await running.stop(None)


def record(
    id_: str, namespace: str = "forged", team: str = "someone-else", workload: str = ""
) -> usage_pb2.UsageRecord:
    return usage_pb2.UsageRecord(
        id=id_,
        identity=usage_pb2.Identity(
            namespace=namespace,
            pod="another-pod",
            workload=workload,
            team=team,
            application="stolen",
            environment="dev",
        ),
        requested_model="gpt-4o",
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.25,
    )


def report(*records: usage_pb2.UsageRecord, pod: str = "") -> control_plane_pb2.UsageReport:
    node = control_plane_pb2.Node(namespace="shop", pod=pod) if pod else None
    return control_plane_pb2.UsageReport(records=records, node=node)


async def ack_of(call: UsageCall) -> list[str]:
    ack = await asyncio.wait_for(call.read(), 5)
    assert isinstance(ack, control_plane_pb2.UsageAck)
    return list(ack.ids)


async def test_records_get_the_identity_of_the_authenticated_pod() -> None:
    ingest = RecordingIngest()
    async with reporting_server(ingest) as stub:
        call = stub.ReportUsage(None, metadata=(("authorization", "Bearer token-a"),))
        await call.write(report(pod="checkout-7d9f8b6c4-x2x9q"))
        assert await ack_of(call) == []
        await call.write(report(record("r1"), record("r2", workload="checkout-7d9f8b6c4")))
        assert await ack_of(call) == ["r1", "r2"]
        call.cancel()
    stored = {id_: r.identity for id_, r in ingest.records.items()}
    assert stored["r1"] == usage_pb2.Identity(
        namespace="shop",
        pod="checkout-7d9f8b6c4-x2x9q",
        workload="checkout-7d9f8b6c4-x2x9q",  # none claimed: the pod's name
        team="payments",
        application="checkout",
        environment="prod",
    )
    assert stored["r2"].workload == "checkout-7d9f8b6c4"
    assert ingest.records["r2"].cost_usd == 0.25


async def test_a_pod_without_identity_labels_reports_empty_team_application_environment() -> None:
    ingest = RecordingIngest()
    async with reporting_server(ingest) as stub:
        call = stub.ReportUsage(None, metadata=(("authorization", "Bearer token-b"),))
        await call.write(report(record("r1", workload="checkout"), pod="notebook"))
        assert await ack_of(call) == ["r1"]
        call.cancel()
    assert ingest.records["r1"].identity == usage_pb2.Identity(
        namespace="lab", pod="notebook", workload="notebook"
    )


async def test_duplicates_are_acknowledged_and_stored_once() -> None:
    ingest = RecordingIngest()
    async with reporting_server(ingest) as stub:
        metadata = (("authorization", "Bearer token-a"),)
        call = stub.ReportUsage(None, metadata=metadata)
        await call.write(report(record("r1"), record("r2"), pod="p"))
        assert await ack_of(call) == ["r1", "r2"]
        call.cancel()
        again = stub.ReportUsage(None, metadata=metadata)  # a reconnect re-sends
        await again.write(report(record("r2"), record("r3"), pod="p"))
        assert await ack_of(again) == ["r2", "r3"]
        await again.write(report(record("r3")))
        assert await ack_of(again) == ["r3"]
        await again.done_writing()
        assert await again.code() == grpc.StatusCode.OK
    assert sorted(ingest.records) == ["r1", "r2", "r3"]


@pytest.mark.parametrize(
    ("token", "pod", "code"),
    [
        (None, "p", grpc.StatusCode.UNAUTHENTICATED),
        ("token-z", "p", grpc.StatusCode.UNAUTHENTICATED),
        ("token-a", "forbidden", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_a_stream_that_fails_authentication_stores_nothing(
    token: str | None, pod: str, code: grpc.StatusCode
) -> None:
    ingest = RecordingIngest()
    async with reporting_server(ingest) as stub:
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        call = stub.ReportUsage(None, metadata=metadata)
        await call.write(report(record("r1"), pod=pod))
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == code
    assert ingest.records == {}
    assert ingest.calls == 0


async def test_standalone_keeps_the_records_identity() -> None:
    ingest = RecordingIngest()
    async with reporting_server(ingest, LoopbackAuthenticator(), trust_records=True) as stub:
        call = stub.ReportUsage(None)
        await call.write(report(record("r1", namespace="default", team="me"), pod="standalone"))
        assert await ack_of(call) == ["r1"]
        call.cancel()
    assert ingest.records["r1"].identity == record("r1", namespace="default", team="me").identity


async def test_the_loopback_authenticator_needs_a_named_node() -> None:
    ingest = RecordingIngest()
    async with reporting_server(ingest, LoopbackAuthenticator(), trust_records=True) as stub:
        call = stub.ReportUsage(None)
        await call.write(report(record("r1")))
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ingest.records == {}


async def test_a_failing_store_ends_the_stream_unavailable_without_an_ack() -> None:
    async with reporting_server(RecordingIngest(fail=True)) as stub:
        call = stub.ReportUsage(None, metadata=(("authorization", "Bearer token-a"),))
        await call.write(report(record("r1"), pod="p"))
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_without_a_store_usage_reports_are_unimplemented() -> None:
    async with reporting_server(RecordingIngest(), with_usage=False) as stub:
        call = stub.ReportUsage(None)
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(
    ("pod", "workload", "consistent"),
    [
        ("checkout-7d9f8b6c4-x2x9q", "checkout-7d9f8b6c4", True),
        ("checkout-7d9f8b6c4-x2x9q", "checkout", True),  # a prefix of its own name
        ("db-0", "db", True),
        ("notebook", "notebook", True),
        ("notebook", "", False),
        ("checkout-7d9f8b6c4-x2x9q", "payments", False),
        ("checkout-7d9f8b6c4-x2x9q", "checkout-7d9", False),
        ("a" * 58 + "xyz12", "a" * 70, True),  # generateName truncated to 58 characters
        ("a" * 58 + "xyz12", "b" * 70, False),
    ],
)
def test_consistent_workload(pod: str, workload: str, consistent: bool) -> None:
    assert consistent_workload(pod, workload) is consistent


def test_build_identity_takes_nothing_but_the_workload_from_the_claim() -> None:
    pod = PODS["token-a"]
    claimed = record("r", workload="checkout-7d9f8b6c4").identity
    identity = build_identity(pod, claimed, LABELS)
    assert (identity.namespace, identity.pod, identity.team) == ("shop", pod.name, "payments")
    assert identity.workload == "checkout-7d9f8b6c4"
    assert build_identity(pod, claimed, IdentityLabels()).team == ""
