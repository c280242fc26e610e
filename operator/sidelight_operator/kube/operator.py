"""The operator in a cluster: kopf, the index, the control plane, status, probes.

`Operator` wires the parts; `Operator.run` starts them in this order:

1. list every resource into the index (`Reconciler.apply_prime`), so that
   no sidecar is ever sent the empty snapshot of an operator that has not
   read the cluster yet (after a restart, every sidecar reconnects at once);
2. serve the ControlPlane (gRPC, TLS; ReportUsage writes into the usage
   store, Leases lends quota budget from the ledger next to it), the usage
   API with `/metrics`, the trace relay (OTLP/HTTP over
   TLS, when `--otlp-forward-endpoint` is given), and the health probes;
3. run kopf (its watches keep the index current, in a thread of its own)
   and the status writer, until `stop` is set or kopf stops.

Sidecars keep serving their last snapshot while the operator is away; when
it is back they reconnect, get the snapshot computed from the fresh index,
and the status writer brings every `status` up to date.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import kopf
import yaml
from kubernetes import client

from sidelight_operator.controlplane import Hub, UsageReporting, serve
from sidelight_operator.inject.config import IdentityLabels
from sidelight_operator.inject.options import WebhookOptions
from sidelight_operator.inject.server import WebhookServer
from sidelight_operator.kube.auth import AUDIENCE, TokenReviewAuthenticator
from sidelight_operator.kube.handlers import build_registry, build_settings
from sidelight_operator.kube.health import start_health
from sidelight_operator.kube.index import ResourceIndex
from sidelight_operator.kube.kinds import KINDS, CrdKind
from sidelight_operator.kube.reconcile import Reconciler
from sidelight_operator.kube.snapshots import SnapshotSource
from sidelight_operator.kube.status import StatusWriter
from sidelight_operator.otlp.options import TracingOptions
from sidelight_operator.otlp.service import TraceRelay
from sidelight_operator.quota.service import QuotaService, ledger_path
from sidelight_operator.quota.status import quota_status_source
from sidelight_operator.usage.options import UsageOptions
from sidelight_operator.usage.service import UsageService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorOptions:
    """How to run the operator."""

    tls_cert: Path
    tls_key: Path
    grpc_address: str = "0.0.0.0:8443"
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    namespaces: tuple[str, ...] = ()
    """Watch only these namespaces; empty: the whole cluster."""
    audience: str = AUDIENCE
    debounce_s: float = 0.1
    status_debounce_s: float = 0.2
    webhook: WebhookOptions | None = None
    """Serve the sidecar injection webhook too."""
    usage: UsageOptions = field(default_factory=UsageOptions)
    tracing: TracingOptions = field(default_factory=TracingOptions)
    """The trace relay; off without a forward endpoint."""


class Operator:
    """The operator's parts, wired together."""

    def __init__(
        self,
        api: client.ApiClient,
        options: OperatorOptions,
        kinds: tuple[CrdKind, ...] = KINDS,
    ) -> None:
        self.options = options
        self.kinds = kinds
        self.index = ResourceIndex([k.kind for k in kinds])
        self.source = SnapshotSource(self.index)
        self.hub = Hub(self.source.snapshot_for_pod, options.debounce_s)
        self.status = StatusWriter(
            self.source, self.hub.sidecars, api, kinds, debounce_s=options.status_debounce_s
        )
        self.hub.listeners.append(self.status.trigger)
        self.reconciler = Reconciler(self.index, api, kinds, self._changed, options.namespaces)
        self.authenticator = TokenReviewAuthenticator(
            api, audience=options.audience, on_pod=self.index.put_pod
        )
        self.webhook = WebhookServer(api, options.webhook) if options.webhook else None
        self.usage = UsageService(options.usage)
        self.quotas = QuotaService(
            ledger_path(options.usage.store_path),
            self.usage.registry,
            lambda pod: self.source.snapshot_for_pod(pod).quotas,
            build_secret_lookup(api),
            identity_labels=identity_labels(options.webhook),
            post_event=self.status.apply_event,
        )
        self.quotas.status_listeners.append(self.status.trigger)
        self.status.extra = quota_status_source(self.quotas.ledger)
        self.traces = (
            TraceRelay(options.tracing, self.authenticator, self.usage.registry)
            if options.tracing.enabled
            else None
        )
        self.serving = False

    def _server_tls(self) -> ssl.SSLContext:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        return tls

    def _ready(self) -> bool:
        return self.serving and (self.webhook is None or self.webhook.ready)

    def _changed(self) -> None:
        self.hub.notify_changed()
        self.status.trigger()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set (the caller's SIGTERM) or kopf ends; raise if kopf failed."""
        count = await asyncio.to_thread(self.reconciler.apply_prime)
        log.info("indexed %d resources", count)
        tls = (self.options.tls_cert.read_bytes(), self.options.tls_key.read_bytes())
        reporting = UsageReporting(self.usage.store, identity_labels(self.options.webhook))
        server = await serve(
            self.hub,
            self.authenticator,
            self.options.grpc_address,
            tls,
            usage=reporting,
            leases=self.quotas.lending,
        )
        await self.quotas.start()
        if self.webhook is not None:
            await self.webhook.start()
        await self.usage.start()
        if self.traces is not None:
            await self.traces.start(self._server_tls())
        health = await start_health(self.options.health_host, self.options.health_port, self._ready)
        self.serving = True
        status = asyncio.create_task(self.status.run(), name="status writer")
        # kopf gets a thread and an event loop of its own: when it stops, it cancels
        # every task of its loop that it did not start with (the gRPC streams here).
        kopf_stop = threading.Event()
        watching = asyncio.create_task(
            asyncio.to_thread(
                kopf.run,
                registry=build_registry(self.reconciler, self.kinds),
                settings=build_settings(),
                clusterwide=not self.options.namespaces,
                namespaces=self.options.namespaces,
                standalone=True,
                stop_flag=kopf_stop,
            ),
            name="kopf",
        )
        stopping = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({watching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.serving = False
            kopf_stop.set()
            stopping.cancel()
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status
            await server.stop(grace=1.0)
            await self.quotas.stop()
            if self.webhook is not None:
                await self.webhook.stop()
            await self.usage.stop()
            if self.traces is not None:
                await self.traces.stop()
            await health.cleanup()
            await watching


def identity_labels(webhook: WebhookOptions | None) -> IdentityLabels:
    """The pod labels naming team, application and environment: the injection config's."""
    if webhook is None:
        return IdentityLabels()
    document = yaml.safe_load(webhook.config_path.read_text()) or {}
    labels = document.get("identityLabels") or {}
    names = ("team", "application", "environment")
    return IdentityLabels(**{name: str(labels[name]) for name in names if name in labels})


def build_secret_lookup(api: client.ApiClient) -> Callable[[str, str, str], str | None]:
    """(namespace, name, key) -> the value of a Secret's key, read from the API (blocking)."""
    core = client.CoreV1Api(api)

    def lookup(namespace: str, name: str, key: str) -> str | None:
        secret = core.read_namespaced_secret(name, namespace, _request_timeout=10.0)
        value = (secret.data or {}).get(key)
        return base64.b64decode(value).decode("utf-8") if value else None

    return lookup
