"""The usage HTTP API, the usage web page and `/metrics`, as one aiohttp application.

- `GET /api/v1/usage/cost?by=DIMENSION&since=&until=`: totals per group, per-day trend;
- `GET /api/v1/usage/top?limit=N&since=&until=`: the most expensive requests;
- `GET /api/v1/usage/rates?since=&until=`: error, fallback and guardrail rates;
- `GET /metrics`: the Prometheus registry; `GET /openapi.json`: this API described;
- `GET /`: the web page (web/), which reads the API with relative URLs, so it
  works behind `kubectl port-forward` and under a path prefix alike.

`since` and `until` take a duration back from now (`90s`, `30m`, `24h`, `7d`,
`2w`) or an RFC 3339 time; `since` defaults to 7 days, `until` to now. A bad
parameter is answered 400 with `{"error": ..., "parameter": ...}`. Queries
run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from importlib import resources
from typing import TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sidelight_operator.usage.queries import QueryError
from sidelight_operator.usage.store import UsageStore

DEFAULT_SINCE = "7d"
DEFAULT_TOP_LIMIT = 20
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PACKAGE = resources.files("sidelight_operator.usage")
_STATIC = {
    "/": ("web/index.html", "text/html"),
    "/usage.js": ("web/usage.js", "text/javascript"),
    "/usage.css": ("web/usage.css", "text/css"),
    "/openapi.json": ("openapi.json", "application/json"),
}

T = TypeVar("T")


def parse_time(value: str, now: float, parameter: str) -> float:
    """A duration back from `now` or an RFC 3339 time, as seconds since the epoch."""
    match = _DURATION.match(value)
    if match:
        return now - int(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(
            parameter, f"{parameter}: expected a duration like 7d or an RFC 3339 time"
        ) from None
    if parsed.tzinfo is None:
        raise QueryError(parameter, f"{parameter}: an RFC 3339 time needs a UTC offset or Z")
    return parsed.timestamp()


def time_range(query: Mapping[str, str], now: float) -> tuple[float, float]:
    """[since, until) from the query string."""
    since = parse_time(query.get("since", DEFAULT_SINCE), now, "since")
    until = parse_time(query["until"], now, "until") if "until" in query else now
    return since, until


def parse_limit(query: Mapping[str, str]) -> int:
    """`limit`, a positive integer (range checked by the query)."""
    raw = query.get("limit", str(DEFAULT_TOP_LIMIT))
    if not raw.isdigit():
        raise QueryError("limit", "limit must be an integer")
    return int(raw)


def _bad_request(error: QueryError) -> web.Response:
    return web.json_response({"error": str(error), "parameter": error.parameter}, status=400)


async def _answer(call: Callable[[], T]) -> web.Response:
    try:
        result = await asyncio.to_thread(call)
    except QueryError as error:
        return _bad_request(error)
    return web.json_response(result)


def build_usage_app(store: UsageStore, registry: CollectorRegistry) -> web.Application:
    """The aiohttp application serving the API, `/metrics`, the OpenAPI file and the page."""

    async def cost(request: web.Request) -> web.Response:
        query = request.query
        try:
            if "by" not in query:
                raise QueryError("by", "by is required: the dimension to group by")
            since, until = time_range(query, store.clock())
        except QueryError as error:
            return _bad_request(error)
        return await _answer(lambda: store.cost_by(query["by"], since, until))

    async def top(request: web.Request) -> web.Response:
        try:
            limit = parse_limit(request.query)
            since, until = time_range(request.query, store.clock())
        except QueryError as error:
            return _bad_request(error)
        return await _answer(lambda: store.top(limit, since, until))

    async def rates(request: web.Request) -> web.Response:
        try:
            since, until = time_range(request.query, store.clock())
        except QueryError as error:
            return _bad_request(error)
        return await _answer(lambda: store.rates(since, until))

    async def metrics(_: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/api/v1/usage/cost", cost)
    app.router.add_get("/api/v1/usage/top", top)
    app.router.add_get("/api/v1/usage/rates", rates)
    app.router.add_get("/metrics", metrics)
    for path, (name, content_type) in _STATIC.items():
        app.router.add_get(path, _static(name, content_type))
    return app


def _static(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = _PACKAGE.joinpath(name).read_bytes()

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    return serve


async def start_usage_api(
    host: str, port: int, store: UsageStore, registry: CollectorRegistry
) -> tuple[web.AppRunner, int]:
    """Serve the usage app on host:port (0: any free port); the runner and the bound port."""
    runner = web.AppRunner(build_usage_app(store, registry), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = next(address[1] for address in runner.addresses if isinstance(address, tuple))
    return runner, int(bound)
