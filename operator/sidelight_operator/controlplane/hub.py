"""The control plane's state: connected sidecars, what each was sent and answered.

The `Hub` holds one `Session` per connected pod and knows nothing of sockets:
the servicer feeds it the first message (`connect`), every later message
(`receive`) and the end of the stream (`disconnect`), and writes whatever
`Session.next_response` returns. Tests drive the same methods directly.

- `notify_changed()` may be called from any thread, any number of times; the
  hub waits until no change has come for `debounce_s` (but never longer than
  `max_delay_s` after the first one), then computes each connected pod's
  snapshot once and pushes it only where its version differs from the last
  one sent. Ten applies in a row make one push.
- Versions are content hashes (`Snapshot.version`, set by compile), so an
  unchanged configuration is never pushed again.
- A sidecar ACKs or NACKs a response by its nonce, in order. An answer to a
  response that a newer one has followed still tells what the sidecar
  served then, and counts; an unknown nonce is ignored. A NACKed version
  never counts as acked; an ACK clears the last NACK.
- `listeners` are called on the event loop after every connect, ACK, NACK
  and disconnect; `sidecars()` may be called from any thread.
- The pod's snapshot is computed by `snapshot_for`, on the event loop that
  serves the streams; it must be a pure function of the `PodRef`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidelight_operator.compile import snapshot_version
from sidelight_operator.controlplane.auth import PodRef
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2

log = logging.getLogger(__name__)

SnapshotFor = Callable[[PodRef], snapshot_pb2.Snapshot]


class SnapshotUnavailable(Exception):
    """The pod's snapshot could not be computed; the stream is refused for now."""


@dataclass(frozen=True)
class Nack:
    """A version a sidecar refused, and why."""

    version: str
    reason: str


@dataclass(frozen=True)
class SidecarState:
    """What the hub knows of one sidecar, as of the call to `Hub.sidecars()`."""

    pod: PodRef
    build: str
    connected: bool
    sent_version: str | None
    acked_version: str | None
    # The snapshot of `acked_version`; shared with the hub, do not modify it.
    acked_snapshot: snapshot_pb2.Snapshot | None = field(repr=False, compare=False)
    # The last NACK since the last ACK.
    nack: Nack | None
    # What the sidecar last said it serves (its first message, ACK or NACK).
    serving_version: str | None

    @property
    def synced(self) -> bool:
        """The sidecar acked the last version it was sent."""
        return self.sent_version is not None and self.acked_version == self.sent_version

    @property
    def rejecting(self) -> bool:
        """The sidecar NACKed the last version it was sent."""
        return self.nack is not None and self.nack.version == self.sent_version


class Session:
    """One sidecar's stream: what to send next and what it answered."""

    def __init__(self, pod: PodRef, build: str, serving_version: str) -> None:
        self.pod = pod
        self.build = build
        self.connected = True
        self.disconnected_at: float | None = None
        # Responses written (or about to be) and not answered yet, oldest first.
        self.outstanding: dict[str, snapshot_pb2.Snapshot] = {}
        self.sent_version: str | None = None
        self.acked_version: str | None = None
        self.acked_snapshot: snapshot_pb2.Snapshot | None = None
        self.nack: Nack | None = None
        self.serving_version = serving_version or None
        self._pending: control_plane_pb2.SnapshotResponse | None = None
        self._wake = asyncio.Event()

    async def next_response(self) -> control_plane_pb2.SnapshotResponse | None:
        """The next response to write; None once the stream is to end."""
        while self.connected:
            if self._pending is not None:
                response, self._pending = self._pending, None
                return response
            self._wake.clear()
            await self._wake.wait()
        return None

    def state(self) -> SidecarState:
        """A frozen copy of this session's state."""
        return SidecarState(
            pod=self.pod,
            build=self.build,
            connected=self.connected,
            sent_version=self.sent_version,
            acked_version=self.acked_version,
            acked_snapshot=self.acked_snapshot,
            nack=self.nack,
            serving_version=self.serving_version,
        )

    def _push(self, snapshot: snapshot_pb2.Snapshot, nonce: str) -> None:
        # A response not yet written is replaced: only the newest version matters.
        if self._pending is not None:
            self.outstanding.pop(self._pending.nonce, None)
        self._pending = control_plane_pb2.SnapshotResponse(snapshot=snapshot, nonce=nonce)
        self.outstanding[nonce] = snapshot
        self.sent_version = snapshot.version
        self._wake.set()

    def _answered(self, nonce: str) -> snapshot_pb2.Snapshot | None:
        """The snapshot `nonce` answers (None if unknown); earlier ones are dropped."""
        if nonce not in self.outstanding:
            return None
        while True:  # answers come in order: anything sent before was answered
            sent_nonce, snapshot = next(iter(self.outstanding.items()))
            del self.outstanding[sent_nonce]
            if sent_nonce == nonce:
                return snapshot

    def _close(self, now: float) -> None:
        self.connected = False
        self.disconnected_at = now
        self._wake.set()


class Hub:
    """Connected sidecars and the versions they were sent, acked and refused."""

    def __init__(
        self,
        snapshot_for: SnapshotFor,
        debounce_s: float = 0.1,
        *,
        max_delay_s: float = 1.0,
        forget_after_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.listeners: list[Callable[[], None]] = []
        self._snapshot_for = snapshot_for
        self._debounce_s = debounce_s
        self._max_delay_s = max(max_delay_s, debounce_s)
        self._forget_after_s = forget_after_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._nonces = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._first_change: float | None = None
        self._changes = 0  # notify_changed calls so far
        self._pushed_changes = 0  # of which the pushes have been computed

    def connect(self, pod: PodRef, first: control_plane_pb2.SnapshotRequest) -> Session:
        """Start a session for `pod` (replacing its older one) and queue its snapshot."""
        self._loop = asyncio.get_running_loop()
        snapshot = self._compute(pod)
        if snapshot is None:
            raise SnapshotUnavailable(f"no snapshot for {pod.namespace}/{pod.name}")
        session = Session(pod, first.node.build, first.version_info)
        with self._lock:
            session._push(snapshot, self._nonce())
            old = self._sessions.get(pod.key)
            self._sessions[pod.key] = session
            if old is not None:
                old._close(self._clock())
            self._forget_old()
        log.info(
            "sidecar %s/%s connected (serving %s)",
            pod.namespace,
            pod.name,
            session.serving_version or "nothing",
        )
        self._notify_listeners()
        return session

    def receive(self, session: Session, request: control_plane_pb2.SnapshotRequest) -> None:
        """Record the ACK or NACK in `request`; ignore answers to older responses."""
        with self._lock:
            sent = session._answered(request.response_nonce)
            if sent is None:
                return
            session.serving_version = request.version_info or None
            if request.HasField("error_detail"):
                session.nack = Nack(sent.version, request.error_detail.message)
                refused: Nack | None = session.nack
            else:
                session.acked_version, session.acked_snapshot = sent.version, sent
                session.nack = refused = None
        pod = session.pod
        if refused is not None:
            log.warning(
                "sidecar %s/%s refused version %s: %s",
                pod.namespace,
                pod.name,
                refused.version,
                refused.reason,
            )
        else:
            log.info("sidecar %s/%s acked version %s", pod.namespace, pod.name, sent.version)
        self._notify_listeners()

    def disconnect(self, session: Session) -> None:
        """The stream of `session` ended (again: nothing happens)."""
        with self._lock:
            if not session.connected:
                return
            session._close(self._clock())
        log.info("sidecar %s/%s disconnected", session.pod.namespace, session.pod.name)
        self._notify_listeners()

    def notify_changed(self) -> None:
        """The resources changed: push new snapshots after the debounce. Any thread."""
        loop = self._loop
        if loop is None:
            return  # nothing ever connected; a connect computes a fresh snapshot
        with self._lock:
            self._changes += 1
        try:
            loop.call_soon_threadsafe(self._on_change)
        except RuntimeError:  # the loop is closed: nothing is served any more
            with self._lock:
                self._changes -= 1

    @property
    def pending_change(self) -> bool:
        """A change was notified and its push has not been computed yet."""
        with self._lock:
            return self._changes != self._pushed_changes

    def sidecars(self) -> list[SidecarState]:
        """Every sidecar connected now or recently. Any thread."""
        with self._lock:
            self._forget_old()
            return [s.state() for s in self._sessions.values()]

    def _on_change(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._first_change is None:
            self._first_change = now
        if self._timer is not None:
            self._timer.cancel()
        due = min(now + self._debounce_s, self._first_change + self._max_delay_s)
        self._timer = loop.call_at(due, self._push_all)

    def _push_all(self) -> None:
        self._timer, self._first_change = None, None
        with self._lock:
            changes = self._changes
            sessions = [s for s in self._sessions.values() if s.connected]
        for session in sessions:
            snapshot = self._compute(session.pod)
            if snapshot is None or snapshot.version == session.sent_version:
                continue
            with self._lock:
                if session.connected:
                    session._push(snapshot, self._nonce())
        with self._lock:
            self._pushed_changes = changes

    def _compute(self, pod: PodRef) -> snapshot_pb2.Snapshot | None:
        try:
            snapshot = self._snapshot_for(pod)
        except Exception:  # a bug in snapshot_for must not stop the other pods' pushes
            log.exception("computing the snapshot of %s/%s failed", pod.namespace, pod.name)
            return None
        if not snapshot.version:
            versioned = snapshot_pb2.Snapshot()
            versioned.CopyFrom(snapshot)
            versioned.version = snapshot_version(snapshot)
            return versioned
        return snapshot

    def _nonce(self) -> str:
        return str(next(self._nonces))

    def _forget_old(self) -> None:
        horizon = self._clock() - self._forget_after_s
        for key, session in list(self._sessions.items()):
            if session.disconnected_at is not None and session.disconnected_at < horizon:
                del self._sessions[key]

    def _notify_listeners(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:  # one broken listener must not silence the others
                log.exception("control-plane listener %r failed", listener)
