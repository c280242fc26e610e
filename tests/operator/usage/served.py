"""A usage API on a loopback port over a store fed with known records.

The API, the CLI and the browser tests read the same figures: three days
from T0, two teams, two served models, one fallback, one error, guardrail
verdicts. `NOW` is the store's clock, so `since=7d` covers all of them.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from sidelight_operator.usage.api import start_usage_api
from sidelight_operator.usage.metrics import UsageMetrics
from sidelight_operator.usage.store import DAY_S, UsageStore
from sidelight_proto.v1 import usage_pb2
from tests.operator.usage.factory import T0, record

NOW = T0 + 3 * DAY_S - 1
TRACE_C = "c0ffee" * 5 + "00"


def known_records() -> list[usage_pb2.UsageRecord]:
    """Costs per day: payments 0.75 / 0 / 0.125, search 0 / 2.0 / 0."""
    return [
        record("a", T0 + 10, team="payments", cost_usd=0.25, input_tokens=10, output_tokens=1),
        record("b", T0 + 3600, team="payments", served_model="claude-3-5-haiku", cost_usd=0.5),
        record("c", T0 + DAY_S + 7, team="search", cost_usd=2.0, fallback=True,
               requested_model="gpt-4o", served_model="claude-3-5-sonnet", trace_id=TRACE_C),
        record("d", T0 + DAY_S + 8, team="search", cost_usd=0.0, status=429,
               error_type="quota_exceeded", verdicts=("blocked",)),
        record("e", T0 + 2 * DAY_S, team="payments", cost_usd=0.125,
               verdicts=("redacted", "pass")),
    ]  # fmt: skip


class UsageServer:
    """The usage app over `known_records()` on 127.0.0.1; `url` once started."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.store = UsageStore(clock=lambda: NOW)
        self.store.listeners.append(UsageMetrics(self.registry).observe)
        self.store.ingest(known_records())
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner, port = await start_usage_api("127.0.0.1", 0, self.store, self.registry)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.store.close()
