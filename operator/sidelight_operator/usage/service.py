"""The usage parts of a running operator: store, metrics, and the HTTP API serving both.

`UsageService(options)` opens the store and binds the metrics to it (a
registry of its own); `start()` serves the API, the page and `/metrics` and
sets `port`; `stop()` ends serving and closes the store. The ControlPlane's
ReportUsage writes into `store`.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CollectorRegistry

from sidelight_operator.usage.api import start_usage_api
from sidelight_operator.usage.metrics import UsageMetrics
from sidelight_operator.usage.options import UsageOptions
from sidelight_operator.usage.store import DAY_S, UsageStore

log = logging.getLogger(__name__)


class UsageService:
    """The store, its metrics and the usage API of one operator process."""

    def __init__(self, options: UsageOptions) -> None:
        self.options = options
        self.registry = CollectorRegistry()
        self.store = UsageStore(options.store_path, retention_s=options.retention_days * DAY_S)
        self.metrics = UsageMetrics(self.registry, options.label_cap)
        self.store.listeners.append(self.metrics.observe)
        self.port = 0
        self._runner: web.AppRunner | None = None
        if options.store_path is None:
            log.warning("usage is kept in memory only and lost when the operator stops")

    async def start(self) -> None:
        """Serve the usage API on the options' address."""
        self._runner, self.port = await start_usage_api(
            self.options.host, self.options.port, self.store, self.registry
        )
        log.info("usage API on %s:%d", self.options.host, self.port)

    async def stop(self) -> None:
        """Stop serving and close the store."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()
