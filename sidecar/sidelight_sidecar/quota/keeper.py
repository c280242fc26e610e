"""The Leases stream to the operator: refills and reports, off the request path.

`LeaseKeeper` opens the ControlPlane's Leases stream over the same
`ControlPlaneConnection` as the config stream (the token is read again on
every connect), sends the pod's `Node` in its first request, and then, one
request at a time, sends what `QuotaGate.asks()` says is due and gives the
answer to `QuotaGate.apply`. It looks every `tick_s` and at once when the
gate wakes it (a request waiting for budget, a threshold crossed, a new
configuration). An answer that does not come within `answer_timeout_s`
ends the stream; it is opened again with capped exponential backoff and
jitter. Requests meanwhile spend only what their leases hold.

`close(timeout_s)` is for shutdown, after the server stopped taking
requests: every lease is closed with its final spending, so the operator
takes the unspent budget back at once instead of charging it until the
window ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from grpc import aio

from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc
from sidelight_sidecar.agent import MAX_DOUBLINGS, RECONNECT, ControlPlaneConnection
from sidelight_sidecar.quota.gate import QuotaGate
from sidelight_sidecar.retry import Backoff

log = logging.getLogger(__name__)

TICK_S = 0.25
ANSWER_TIMEOUT_S = 5.0

LeaseCall = aio.StreamStreamCall[control_plane_pb2.LeaseRequest, control_plane_pb2.LeaseResponse]


class LeaseKeeper:
    """Keeps a gate's leases topped up and reported over the Leases stream."""

    def __init__(
        self,
        gate: QuotaGate,
        connection: ControlPlaneConnection,
        node: control_plane_pb2.Node,
        *,
        tick_s: float = TICK_S,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
        backoff: Backoff = RECONNECT,
        rng: random.Random | None = None,
    ) -> None:
        self.gate = gate
        self.connection = connection
        self.node = node
        self.tick_s = tick_s
        self.answer_timeout_s = answer_timeout_s
        self.backoff = backoff
        self.last_error = ""
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Run the keeper in a task of the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="quota leases")

    async def close(self, timeout_s: float) -> None:
        """Close every lease (final spending) within `timeout_s`, then stop."""
        self.gate.close_all()
        self._closing = True
        deadline = time.monotonic() + timeout_s
        while self.gate.open_leases and time.monotonic() < deadline and self._task is not None:
            self.gate.wake.set()
            await asyncio.sleep(0.02)
        if self.gate.open_leases:
            log.warning(
                "%d quota lease(s) not closed: charged in full until their window ends",
                self.gate.open_leases,
            )
        await self.stop()

    async def stop(self) -> None:
        """Stop at once; open leases stay charged at the operator."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        failures = 0
        while True:
            answered = False
            try:
                answered = await self._stream()
                error = "the control plane closed the stream"
            except aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            except TimeoutError:
                error = "no answer in time"
            except asyncio.InvalidStateError:  # written to a call the server already ended
                error = "the control plane ended the stream"
            except OSError as exc:
                error = str(exc)
            except Exception as exc:  # a bug must not stop the leases: log it, go on
                log.exception("quota lease stream failed")
                error = type(exc).__name__
            self.gate.disconnected()
            if error != self.last_error:
                log.warning("quota lease stream: %s; spending only what leases hold", error)
            self.last_error = error
            failures = 1 if answered else min(failures + 1, MAX_DOUBLINGS)
            delay = self.backoff.delay(failures, self._rng)
            if self._closing:
                delay = min(delay, 0.1)
            await asyncio.sleep(delay)

    async def _stream(self) -> bool:
        """One stream until it fails; whether any answer came on it."""
        answered = False
        async with self.connection.channel() as channel:
            stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
            call: LeaseCall = stub.Leases(None, metadata=self.connection.metadata())
            try:
                seq = 0
                request = control_plane_pb2.LeaseRequest(
                    node=self.node, seq=seq, asks=self.gate.asks()
                )
                while True:
                    sent_at = self.gate.clock()
                    await call.write(request)
                    async with asyncio.timeout(self.answer_timeout_s):
                        response = await call.read()
                    if not isinstance(response, control_plane_pb2.LeaseResponse):
                        return answered  # grpc.aio.EOF
                    self.gate.apply(request.asks, response.grants, sent_at)
                    if not answered:
                        answered = True
                        self.gate.connected = True
                        self.last_error = ""
                    asks = await self._next_asks()
                    seq += 1
                    request = control_plane_pb2.LeaseRequest(seq=seq, asks=asks)
            finally:
                call.cancel()

    async def _next_asks(self) -> list[control_plane_pb2.LeaseAsk]:
        """Wait until something is due, then take it."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_s):
                    await self.gate.wake.wait()
            self.gate.wake.clear()
            asks = self.gate.asks()
            if asks:
                return asks
