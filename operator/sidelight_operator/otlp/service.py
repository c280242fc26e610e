"""The trace relay of one operator process: receiver, queue, forwarder, metrics.

    relay = TraceRelay(options, authenticator, registry)
    await relay.start(tls)   # listens on options.host:options.port; sets `port`
    ...
    await relay.stop()       # stops listening, sends what is queued for a moment

`tls` is the operator's serving certificate (an `ssl.SSLContext`): sidecars
send their tokens on this port, so in a cluster it is HTTPS. Without it
(tests) the receiver speaks plain HTTP.
"""

from __future__ import annotations

import logging
import ssl

from aiohttp import web
from prometheus_client import CollectorRegistry

from sidelight_operator.controlplane.auth import Authenticator
from sidelight_operator.otlp.auth import CachedAuthenticator
from sidelight_operator.otlp.forwarder import Forwarder, RetryPolicy
from sidelight_operator.otlp.metrics import RelayMetrics
from sidelight_operator.otlp.options import TracingOptions
from sidelight_operator.otlp.queue import ExportQueue
from sidelight_operator.otlp.receiver import Receiver, build_receiver_app

log = logging.getLogger(__name__)

STOP_GRACE_S = 2.0


class TraceRelay:
    """Receives the sidecars' spans and forwards them to `options.forward_endpoint`."""

    def __init__(
        self,
        options: TracingOptions,
        authenticator: Authenticator,
        registry: CollectorRegistry,
        policy: RetryPolicy | None = None,
    ) -> None:
        if not options.forward_endpoint:
            raise ValueError("the trace relay needs a forward endpoint")
        self.options = options
        self.queue = ExportQueue(options.queue_bytes, options.queue_batches)
        self.metrics = RelayMetrics(registry, self.queue)
        self.receiver = Receiver(self.queue, self.metrics, CachedAuthenticator(authenticator))
        self.forwarder = Forwarder(
            self.queue, options.forward_endpoint, options.headers, self.metrics, policy
        )
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, tls: ssl.SSLContext | None) -> None:
        """Start forwarding, then listen (HTTPS with `tls`)."""
        self.forwarder.start()
        # The receiver decodes gzip itself, within its size bound (receiver.decode_body).
        runner = web.AppRunner(
            build_receiver_app(self.receiver),
            access_log=None,
            handle_signals=False,
            auto_decompress=False,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port, ssl_context=tls)
        await site.start()
        self._runner = runner
        self.port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        log.info(
            "OTLP receiver on %s:%d, forwarding to %s",
            self.options.host,
            self.port,
            self.forwarder.shown_url,
        )

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop listening; forward what is queued for up to `grace_s` seconds."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.forwarder.stop(grace_s)
