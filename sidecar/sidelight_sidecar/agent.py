"""The sidecar's side of the ControlPlane stream: receive snapshots, ACK or NACK them.

`ControlPlaneAgent` opens a StreamSnapshots stream to the operator, sends the
pod's `Node` and the version its store already holds (a persisted snapshot
after a restart), and answers every snapshot: ACK with the new version once
`ConfigStore.apply` has swapped it in, or NACK with the version it keeps and
the reason. A snapshot the sidecar already serves is ACKed without a rebuild.

The agent runs in its own task and never holds a request up: requests read
`store.current`, which the agent replaces in one assignment, and while the
operator is unreachable the last good snapshot keeps serving. The agent
reconnects forever, with capped exponential backoff and jitter, reading the
projected service-account token again on every connect (it rotates) and
sending it as `authorization: Bearer <token>`. With a CA file the channel is
TLS and the operator's certificate must chain to it; without one it is plain
text, which only standalone mode on loopback uses. Logs name versions,
states and reasons, never the token or a snapshot's content.

`ControlPlaneConnection` is how to reach the operator (target, token, CA);
the usage reporter (usage_report.py) opens its ReportUsage stream with the
same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio

from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc, snapshot_pb2
from sidelight_sidecar.config_store import ConfigStore
from sidelight_sidecar.retry import Backoff

log = logging.getLogger(__name__)

RECONNECT = Backoff(base_s=0.5, max_s=30.0)
MAX_DOUBLINGS = 32  # the backoff's cap is reached long before; 2**n stays a float
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


@dataclass(frozen=True)
class ControlPlaneConnection:
    """How to reach the operator: HOST:PORT, the token file, the CA file (None: plain text)."""

    target: str
    token_path: Path | None = None
    ca_path: Path | None = None

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata: the token, read again now (it rotates)."""
        if self.token_path is None:
            return ()
        token = self.token_path.read_text(encoding="utf-8").strip()
        return (("authorization", f"Bearer {token}"),)

    def channel(self) -> aio.Channel:
        """A new channel: TLS trusting the CA file (read now), or plain text without one."""
        if self.ca_path is None:
            return aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca_path.read_bytes())
        return aio.secure_channel(self.target, credentials, options=CHANNEL_OPTIONS)


class AgentState(enum.Enum):
    """Where the agent is with the control plane."""

    CONNECTING = "connecting"
    CONNECTED = "connected"  # at least one snapshot received on the current stream
    DISCONNECTED = "disconnected"


class ControlPlaneAgent:
    """Keeps `store` in sync with the control plane at `target` (HOST:PORT)."""

    def __init__(
        self,
        store: ConfigStore,
        target: str,
        node: control_plane_pb2.Node,
        *,
        token_path: Path | None = None,
        ca_path: Path | None = None,
        backoff: Backoff = RECONNECT,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.target = target
        self.node = node
        self.connection = ControlPlaneConnection(target, token_path, ca_path)
        self.backoff = backoff
        self.state = AgentState.DISCONNECTED
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self.last_error = ""  # why the last stream ended; "" while connected

    @property
    def token_path(self) -> Path | None:
        """The projected service-account token file, read on every connect."""
        return self.connection.token_path

    def start(self) -> None:
        """Run the agent in a task of the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"control-plane {self.target}")

    async def stop(self) -> None:
        """Close the stream and stop reconnecting; the store keeps what it holds."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Stay connected until cancelled, backing off after each failure."""
        failures = 0
        while True:
            self.state = AgentState.CONNECTING
            try:
                received = await self._stream()
                error = "the control plane closed the stream"
            except aio.AioRpcError as exc:
                received = False
                error = f"{exc.code().name}: {exc.details()}"
            except OSError as exc:
                received = False
                error = f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
            except Exception as exc:  # a bug must not stop the reconnects: log it, go on
                log.exception("control-plane stream failed")
                received = False
                error = type(exc).__name__
            failures = 1 if received else min(failures + 1, MAX_DOUBLINGS)
            delay = self.backoff.delay(failures, self._rng)
            self._disconnected(error, delay)
            await asyncio.sleep(delay)

    def answer(
        self, response: control_plane_pb2.SnapshotResponse
    ) -> control_plane_pb2.SnapshotRequest:
        """Apply the response's snapshot; the ACK or NACK to send back."""
        snapshot = response.snapshot
        held = self.held_version
        if not snapshot.version:
            reason: str | None = "the snapshot has no version"
        elif snapshot.version == held:
            reason = None
        else:
            reason = self._apply(snapshot)
        if reason is None:
            if snapshot.version != held:
                log.info("applied configuration version %s", snapshot.version)
            return control_plane_pb2.SnapshotRequest(
                version_info=snapshot.version, response_nonce=response.nonce
            )
        log.warning(
            "refused configuration version %s: %s; keeping %s",
            snapshot.version or "(none)",
            reason,
            held or "nothing",
        )
        return control_plane_pb2.SnapshotRequest(
            version_info=held,
            response_nonce=response.nonce,
            error_detail=control_plane_pb2.ErrorDetail(message=reason),
        )

    def _apply(self, snapshot: snapshot_pb2.Snapshot) -> str | None:
        try:
            return self.store.apply(snapshot)
        except Exception as exc:  # a snapshot that crashes the build is refused like a bad one
            log.exception("building configuration version %s failed", snapshot.version)
            return f"the sidecar failed to build it ({type(exc).__name__})"

    @property
    def held_version(self) -> str:
        """The version the store serves, or "" before the first snapshot."""
        current = self.store.current
        return current.version if current is not None else ""

    async def _stream(self) -> bool:
        """One stream, until it ends; whether any snapshot came on it."""
        metadata = self.connection.metadata()
        received = False
        async with self.connection.channel() as channel:
            stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
            call = stub.StreamSnapshots(None, metadata=metadata)
            try:
                hello = control_plane_pb2.SnapshotRequest(
                    node=self.node, version_info=self.held_version
                )
                await call.write(hello)
                while True:
                    response = await call.read()
                    if not isinstance(response, control_plane_pb2.SnapshotResponse):
                        break  # grpc.aio.EOF: the operator ended the stream
                    if not received:
                        received = True
                        self._connected()
                    await call.write(self.answer(response))
            finally:
                call.cancel()
        return received

    def _connected(self) -> None:
        self.state = AgentState.CONNECTED
        self.last_error = ""
        log.info(
            "connected to the control plane at %s as %s/%s",
            self.target,
            self.node.namespace,
            self.node.pod,
        )

    def _disconnected(self, error: str, delay: float) -> None:
        was = self.state
        self.state = AgentState.DISCONNECTED
        if was is AgentState.CONNECTED or error != self.last_error:
            log.warning(
                "control plane at %s unavailable (%s); serving %s; retrying in %.1fs",
                self.target,
                error,
                self.held_version or "nothing",
                delay,
            )
        else:
            log.debug("control plane at %s still unavailable (%s)", self.target, error)
        self.last_error = error
