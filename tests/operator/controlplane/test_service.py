"""The ControlPlane service over real loopback gRPC, spoken to with a raw stub.

An authenticator that maps tokens to namespaces stands in for the TokenReview
one: whatever a sidecar claims, its stream carries the snapshot of the pod
its token proves, and only that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from grpc import aio

from sidelight_operator.compile import compile_snapshot, select_for_pod
from sidelight_operator.controlplane import (
    Authenticator,
    ControlPlaneServer,
    Hub,
    LoopbackAuthenticator,
    PermissionDenied,
    PodRef,
    Unauthenticated,
    serve,
)
from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc, snapshot_pb2

SnapshotResponse = control_plane_pb2.SnapshotResponse

TOKENS = {"token-a": "team-a", "token-b": "team-b"}


def llmroute(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"namespace": namespace, "name": f"{namespace}-route"},
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


RESOURCES = [llmroute("team-a"), llmroute("team-b")]


def snapshot_for(pod: PodRef) -> snapshot_pb2.Snapshot:
    return compile_snapshot(select_for_pod(RESOURCES, pod.namespace, pod.labels)).snapshot


class TokenAuthenticator:
    """Token -> namespace; the node's own namespace claim is ignored."""

    async def authenticate(
        self, token: str | None, node: control_plane_pb2.Node, peer: str
    ) -> PodRef:
        if token is None or token not in TOKENS:
            raise Unauthenticated("unknown token")
        if node.pod == "forbidden":
            raise PermissionDenied("this pod may not connect")
        return PodRef(TOKENS[token], node.pod, f"uid-{node.pod}", "app", dict(node.labels))


@pytest.fixture
async def hub() -> Hub:
    return Hub(snapshot_for, debounce_s=0.01)


@pytest.fixture
async def server(hub: Hub) -> AsyncIterator[ControlPlaneServer]:
    running = await serve(hub, TokenAuthenticator(), "127.0.0.1:0")
    yield running
    await running.stop(None)


@pytest.fixture
async def channel(server: ControlPlaneServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@contextlib.asynccontextmanager
async def connected(hub: Hub, authenticator: Authenticator) -> AsyncIterator[aio.Channel]:
    """A server of its own, and a channel to it (closed before the server stops)."""
    running = await serve(hub, authenticator, "127.0.0.1:0")
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            yield ch
    finally:
        await running.stop(None)


Call = aio.StreamStreamCall[control_plane_pb2.SnapshotRequest, control_plane_pb2.SnapshotResponse]


def open_stream(channel: aio.Channel, token: str | None) -> Call:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
    return stub.StreamSnapshots(None, metadata=metadata)


def hello(namespace: str = "team-a", pod: str = "app-1") -> control_plane_pb2.SnapshotRequest:
    return control_plane_pb2.SnapshotRequest(
        node=control_plane_pb2.Node(pod=pod, namespace=namespace, build="raw/1")
    )


async def read(call: Call) -> control_plane_pb2.SnapshotResponse:
    response = await asyncio.wait_for(call.read(), 5)
    assert isinstance(response, control_plane_pb2.SnapshotResponse)
    return response


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_stream_is_bound_to_the_namespace_its_token_proves(
    channel: aio.Channel, hub: Hub
) -> None:
    call = open_stream(channel, "token-b")
    await call.write(hello(namespace="team-a"))  # claims team-a, holds team-b's token
    response = await read(call)
    sources = [rs.source for rs in response.snapshot.route_sets]
    assert [(s.namespace, s.name) for s in sources] == [("team-b", "team-b-route")]
    assert b"team-a" not in response.snapshot.SerializeToString()
    [state] = hub.sidecars()
    assert state.pod.namespace == "team-b"
    await call.write(
        control_plane_pb2.SnapshotRequest(
            version_info=response.snapshot.version, response_nonce=response.nonce
        )
    )
    await until(lambda: hub.sidecars()[0].synced)
    await call.done_writing()
    assert not isinstance(await asyncio.wait_for(call.read(), 5), SnapshotResponse)
    assert await call.code() == grpc.StatusCode.OK
    await until(lambda: not hub.sidecars()[0].connected)


@pytest.mark.parametrize("token", [None, "token-z"])
async def test_without_a_valid_token_the_stream_is_unauthenticated(
    channel: aio.Channel, hub: Hub, token: str | None
) -> None:
    call = open_stream(channel, token)
    await call.write(hello())
    with pytest.raises(aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "unknown token"
    assert hub.sidecars() == []


async def test_a_pod_refused_by_the_authenticator_gets_permission_denied(
    channel: aio.Channel,
) -> None:
    call = open_stream(channel, "token-a")
    await call.write(hello(pod="forbidden"))
    with pytest.raises(aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_stream_closed_before_its_first_message_ends_quietly(
    channel: aio.Channel, hub: Hub
) -> None:
    call = open_stream(channel, "token-a")
    await call.done_writing()
    assert not isinstance(await asyncio.wait_for(call.read(), 5), SnapshotResponse)
    assert await call.code() == grpc.StatusCode.OK
    assert hub.sidecars() == []


async def test_a_failing_snapshot_is_unavailable() -> None:
    def broken(pod: PodRef) -> snapshot_pb2.Snapshot:
        raise RuntimeError("cache not warm")

    async with connected(Hub(broken), TokenAuthenticator()) as ch:
        call = open_stream(ch, "token-a")
        await call.write(hello())
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_loopback_authenticator_needs_a_named_node() -> None:
    async with connected(Hub(snapshot_for), LoopbackAuthenticator()) as ch:
        call = open_stream(ch, None)
        await call.write(control_plane_pb2.SnapshotRequest(node=control_plane_pb2.Node()))
        with pytest.raises(aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        call = open_stream(ch, None)
        await call.write(hello())
        assert (await read(call)).snapshot.route_sets[0].source.namespace == "team-a"
        call.cancel()
