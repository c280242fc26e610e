"""The ControlPlane gRPC service: streams between sidecars and the `Hub`.

The handler is plumbing only: read the bearer token and the first message,
authenticate, bind the stream to the `PodRef` the authenticator returns, then
write what the hub queues and pass every answer back to it. The hub never
sees a socket, and a stream can only ever carry its own pod's snapshot.
ReportUsage is authenticated the same way and handed to `serve_reports`
(usage.py) with the pod; without `UsageReporting` it is UNIMPLEMENTED.
Leases (quota budget leases) likewise goes to `quota.lending.serve_leases`;
without `QuotaLending` it is UNIMPLEMENTED.

`serve` starts a grpc.aio server in the running event loop: with TLS (the
operator's serving certificate and key, PEM) in a cluster, or in plain text
on loopback for standalone mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc import aio

from sidelight_operator.controlplane.auth import (
    Authenticator,
    PermissionDenied,
    PodRef,
    Unauthenticated,
    bearer_token,
)
from sidelight_operator.controlplane.hub import Hub, Session, SnapshotUnavailable
from sidelight_operator.controlplane.usage import UsageReporting, serve_reports
from sidelight_operator.quota.lending import QuotaLending, serve_leases
from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc

log = logging.getLogger(__name__)

FIRST_MESSAGE_TIMEOUT_S = 30.0
# Keepalive: find dead sidecars, and let sidecars ping a quiet stream.
SERVER_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)

Requests = AsyncIterator[control_plane_pb2.SnapshotRequest]
_Opening = TypeVar(
    "_Opening",
    control_plane_pb2.SnapshotRequest,
    control_plane_pb2.UsageReport,
    control_plane_pb2.LeaseRequest,
)


class ControlPlaneService(control_plane_pb2_grpc.ControlPlaneServicer):
    """StreamSnapshots over a `Hub` and ReportUsage, each stream bound to its authenticated pod."""

    def __init__(
        self,
        hub: Hub,
        authenticator: Authenticator,
        usage: UsageReporting | None = None,
        leases: QuotaLending | None = None,
    ) -> None:
        self.hub = hub
        self.authenticator = authenticator
        self.usage = usage
        self.leases = leases

    async def StreamSnapshots(
        self, request_iterator: Requests, context: aio.ServicerContext[object, object]
    ) -> AsyncIterator[control_plane_pb2.SnapshotResponse]:
        """Authenticate, then write the pod's snapshots and record its answers."""
        opened = await self._open(request_iterator, context)
        if opened is None:
            return
        first, pod = opened
        try:
            session = self.hub.connect(pod, first)
        except SnapshotUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        reader = asyncio.create_task(self._read(request_iterator, session))
        try:
            while (response := await session.next_response()) is not None:
                yield response
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.hub.disconnect(session)

    async def ReportUsage(
        self,
        request_iterator: AsyncIterator[control_plane_pb2.UsageReport],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[control_plane_pb2.UsageAck]:
        """Authenticate, then store each report's records as the pod's and acknowledge them."""
        if self.usage is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this operator stores no usage")
        opened = await self._open(request_iterator, context)
        if opened is None:
            return
        first, pod = opened
        acks = serve_reports(self.usage, pod, first, request_iterator)
        try:
            async for ack in acks:
                yield ack
        except aio.AioRpcError as exc:
            log.debug("usage stream of %s ended: %s", pod.name, exc.code())
        except Exception:  # the store failed: the sidecar keeps its records and re-sends
            log.exception("storing usage of %s/%s failed", pod.namespace, pod.name)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the usage store failed")
        finally:
            await acks.aclose()

    async def Leases(
        self,
        request_iterator: AsyncIterator[control_plane_pb2.LeaseRequest],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[control_plane_pb2.LeaseResponse]:
        """Authenticate, then answer the pod's quota lease asks from the ledger."""
        if self.leases is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this operator lends no quota")
        opened = await self._open(request_iterator, context)
        if opened is None:
            return
        first, pod = opened
        responses = serve_leases(self.leases, pod, first, request_iterator)
        try:
            async for response in responses:
                yield response
        except aio.AioRpcError as exc:
            log.debug("lease stream of %s ended: %s", pod.name, exc.code())
        finally:
            await responses.aclose()

    async def _open(
        self, requests: AsyncIterator[_Opening], context: aio.ServicerContext[object, object]
    ) -> tuple[_Opening, PodRef] | None:
        """A stream's first message and the pod it authenticates; None if it ended first."""
        try:
            first = await asyncio.wait_for(anext(requests), FIRST_MESSAGE_TIMEOUT_S)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no first message")
        return first, await self._authenticate(first.node, context)

    async def _authenticate(
        self, node: control_plane_pb2.Node, context: aio.ServicerContext[object, object]
    ) -> PodRef:
        token = bearer_token(context.invocation_metadata() or ())
        peer = context.peer()
        try:
            return await self.authenticator.authenticate(token, node, peer)
        except Unauthenticated as exc:
            log.warning("stream from %s refused: %s", peer, exc.reason)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.reason)
        except PermissionDenied as exc:
            log.warning("stream from %s refused: %s", peer, exc.reason)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.reason)

    async def _read(self, requests: Requests, session: Session) -> None:
        try:
            async for request in requests:
                self.hub.receive(session, request)
        except aio.AioRpcError as exc:
            log.debug("stream of %s ended: %s", session.pod.name, exc.code())
        finally:
            self.hub.disconnect(session)


@dataclass
class ControlPlaneServer:
    """A running ControlPlane server and the port it listens on."""

    server: aio.Server
    port: int

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting streams, end the open ones after `grace` seconds."""
        await self.server.stop(grace)


async def serve(
    hub: Hub,
    authenticator: Authenticator,
    address: str,
    tls: tuple[bytes, bytes] | None = None,
    usage: UsageReporting | None = None,
    leases: QuotaLending | None = None,
) -> ControlPlaneServer:
    """Serve the ControlPlane on `address` (port 0: a free one); `tls` is (cert, key) PEM.

    Without `usage` ReportUsage answers UNIMPLEMENTED, without `leases` Leases does.
    """
    server = aio.server(options=SERVER_OPTIONS)
    control_plane_pb2_grpc.add_ControlPlaneServicer_to_server(
        ControlPlaneService(hub, authenticator, usage, leases), server
    )
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        cert, key = tls
        port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    await server.start()
    log.info("control plane listening on %s (%s)", address, "TLS" if tls else "plain text")
    return ControlPlaneServer(server, port)
