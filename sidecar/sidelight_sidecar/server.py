"""The sidecar's HTTP server on loopback, and its lifecycle.

Routes: the OpenAI API (`/v1/chat/completions`, `/v1/embeddings`,
`/v1/responses`, `/v1/models`), the Anthropic Messages API (`/v1/messages`),
`/healthz` (the process is up), `/readyz` (a configuration is loaded) and
`/metrics` (what became of the usage records, usage_metrics.py).
Anything else gets a 404 in the API format the caller seems to speak.

Usage records go to every sink of `Sidecar.usage`: the JSON-lines file of
`usage_path`, and the operator once `report_usage` was called (before
`start`). `stop` stops accepting requests, drains the queue into the sinks,
then gives the reporter up to `usage_flush_timeout_s` to have the spool
acknowledged; what is left stays on disk for the next start.

Quotas: `Sidecar.quota` is the request path's `QuotaGate`; `enforce_quotas`
(before `start`) adds the `LeaseKeeper` that leases budget from the operator.
Without it a quota in the configuration refuses every call it covers (no
budget was lent). `stop` closes the leases, returning what was not spent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from aiohttp.typedefs import Handler as MetricsHandler
from opentelemetry.sdk.trace import TracerProvider

from sidelight_proto.v1 import control_plane_pb2
from sidelight_sidecar.agent import RECONNECT, ControlPlaneConnection
from sidelight_sidecar.config_store import ConfigStore
from sidelight_sidecar.errors import ApiFormat
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.inbound import error_response
from sidelight_sidecar.proxy import Proxy, Settings
from sidelight_sidecar.quota import QuotaGate
from sidelight_sidecar.quota.keeper import LeaseKeeper
from sidelight_sidecar.retry import Backoff
from sidelight_sidecar.runtime import RuntimeConfig
from sidelight_sidecar.telemetry import build_tracer_provider, tracer_of
from sidelight_sidecar.tokens import TokenCounter
from sidelight_sidecar.upstream import Operation
from sidelight_sidecar.usage import JsonLinesSink, UsageQueue, UsageSink
from sidelight_sidecar.usage_metrics import build_metrics_handler
from sidelight_sidecar.usage_report import GrpcUsageSink
from sidelight_sidecar.usage_spool import DEFAULT_MAX_BYTES, UsageSpool

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _api(proxy: Proxy, op: Operation) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await proxy.handle(request, op)

    return handler


def build_app(proxy: Proxy, metrics: MetricsHandler | None = None) -> web.Application:
    """The aiohttp application that serves `proxy` (and `metrics` on /metrics)."""
    app = web.Application(client_max_size=proxy.settings.max_body_bytes)

    async def models(request: web.Request) -> web.Response:
        config = proxy.store.current
        names = config.models if config else ()
        if "anthropic-version" in request.headers:
            data = [
                {"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"}
                for n in names
            ]
            body = {
                "data": data,
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        else:
            body = {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "created": 0, "owned_by": "sidelight"}
                    for n in names
                ],
            }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        config = proxy.store.current
        if config is None:
            return web.Response(status=503, text="no configuration loaded")
        return web.Response(text=f"ready {config.version}")

    async def not_found(request: web.Request) -> web.Response:
        fmt: ApiFormat = "anthropic" if "anthropic-version" in request.headers else "openai"
        return error_response(fmt, 404, f"no such endpoint: {request.method} {request.path}")

    app.router.add_post("/v1/chat/completions", _api(proxy, Operation.CHAT))
    app.router.add_post("/v1/embeddings", _api(proxy, Operation.EMBEDDINGS))
    app.router.add_post("/v1/responses", _api(proxy, Operation.RESPONSES))
    app.router.add_post("/v1/messages", _api(proxy, Operation.MESSAGES))
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


@dataclass
class SidecarOptions:
    """How to run a sidecar."""

    host: str = "127.0.0.1"
    port: int = 4000
    otlp_endpoint: str | None = None
    usage_path: Path | None = None
    snapshot_path: Path | None = None
    usage_spool_bytes: int = DEFAULT_MAX_BYTES
    usage_flush_timeout_s: float = 10.0
    settings: Settings = field(default_factory=Settings)


class Sidecar:
    """A running sidecar: config store, upstream session, telemetry, HTTP server."""

    def __init__(
        self,
        options: SidecarOptions,
        identity: Identity | None = None,
        usage_sink: UsageSink | None = None,
    ) -> None:
        self.options = options
        self.identity = identity or Identity.from_env()
        self.store = ConfigStore(options.snapshot_path)
        self.counter = TokenCounter()
        sinks: list[UsageSink] = [] if usage_sink is None else [usage_sink]
        if options.usage_path is not None:
            sinks.append(JsonLinesSink(options.usage_path))
        self.usage = UsageQueue(sinks)
        self.reporter: GrpcUsageSink | None = None
        self.tracer_provider: TracerProvider = build_tracer_provider(
            self.identity, options.otlp_endpoint
        )
        self.quota = QuotaGate(self.identity)
        self.keeper: LeaseKeeper | None = None
        self.store.listeners.append(self._warm_tokenizers)
        self.store.listeners.append(lambda config: self.quota.configure(config.quotas))
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = options.port

    def _warm_tokenizers(self, config: RuntimeConfig) -> None:
        """Load, off the loop, the encodings a version needs: none if nothing counts tokens."""
        if not config.quotas and not any(route.counts_tokens for route in config.routes):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # applied before the server started; counted lazily then
            return
        loop.run_in_executor(None, self.counter.warm, config.backend_models + config.models)

    def report_usage(
        self,
        connection: ControlPlaneConnection,
        node: control_plane_pb2.Node,
        spool_dir: Path,
        backoff: Backoff = RECONNECT,
    ) -> GrpcUsageSink:
        """Send usage records to the operator too, spooled in `spool_dir`; before `start`."""
        spool = UsageSpool(spool_dir, self.options.usage_spool_bytes)
        self.reporter = GrpcUsageSink(spool, connection, node, backoff=backoff)
        self.usage.sinks.append(self.reporter)
        return self.reporter

    def enforce_quotas(
        self,
        connection: ControlPlaneConnection,
        node: control_plane_pb2.Node,
        backoff: Backoff = RECONNECT,
    ) -> LeaseKeeper:
        """Lease quota budget from the operator at `connection`; before `start`."""
        self.keeper = LeaseKeeper(self.quota, connection, node, backoff=backoff)
        return self.keeper

    async def start(self) -> None:
        """Start serving on the configured address (port 0 picks a free port)."""
        self.store.load_persisted()
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        proxy = Proxy(
            store=self.store,
            counter=self.counter,
            session=self._session,
            usage=self.usage,
            identity=self.identity,
            tracer=tracer_of(self.tracer_provider),
            settings=self.options.settings,
            quota=self.quota,
        )
        if self.keeper is not None:
            self.keeper.start()
        if self.reporter is not None:
            await self.reporter.start()
        self.usage.start()
        app = build_app(proxy, build_metrics_handler(self.usage, self.reporter))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port, backlog=1024)
        await site.start()
        if self.options.port == 0:
            self.port = _bound_port(self._runner)

    @property
    def url(self) -> str:
        """Base URL of the sidecar (without /v1)."""
        return f"http://{self.options.host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving; flush usage records (to the operator: with a deadline) and spans."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.keeper is not None:
            await self.keeper.close(self.options.usage_flush_timeout_s)
        await self.usage.stop()
        if self.reporter is not None:
            await self.reporter.close(self.options.usage_flush_timeout_s)
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.to_thread(self.tracer_provider.shutdown)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the sidecar did not bind a TCP port")
