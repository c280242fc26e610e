"""Health endpoints of the operator: `/healthz` (alive) and `/readyz` (serving).

`/readyz` answers 200 only once the index holds every resource (the first
list is done) and the control plane listens: a Service that sends sidecars
here sends them to an operator that gives full snapshots. kopf ends the
process when its watches fail for good, so a live process is a watching one.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def build_health_app(ready: Callable[[], bool]) -> web.Application:
    """The aiohttp application with the two probes."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ready")
        return web.Response(status=503, text="starting")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_health(host: str, port: int, ready: Callable[[], bool]) -> web.AppRunner:
    """Serve the probes on host:port; cleanup() the returned runner to stop."""
    runner = web.AppRunner(build_health_app(ready), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
