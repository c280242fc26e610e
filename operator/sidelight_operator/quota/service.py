"""The quota parts of a running operator (in a cluster or standalone), wired together.

`QuotaService` holds the ledger (its SQLite file next to the usage store:
`quota-ledger.db`, or nothing kept without a store), the lending that the
ControlPlane's Leases stream serves, the metrics (in the usage API's
registry, so `/metrics` shows them), and the notifier. `start` runs the
upkeep: the status writer is woken every `refresh_s` while quotas are lent
from (usage numbers move; the writer patches only what changed), and
windows that ended more than `KEEP_MS` ago are forgotten hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from sidelight_operator.inject.config import IdentityLabels
from sidelight_operator.quota.ledger import DEFAULT_TTL_S, Ledger
from sidelight_operator.quota.lending import QuotaLending, QuotasFor
from sidelight_operator.quota.metrics import QuotaMetrics
from sidelight_operator.quota.notify import EventPoster, QuotaNotifier, SecretLookup
from sidelight_operator.quota.store import LedgerStore

log = logging.getLogger(__name__)

LEDGER_FILE = "quota-ledger.db"
REFRESH_S = 10.0
PRUNE_EVERY_S = 3600.0
KEEP_MS = 40 * 86_400_000  # a month's window and some


def ledger_path(usage_store: Path | None) -> Path | None:
    """Where the ledger lives: next to the usage store, or nowhere."""
    return None if usage_store is None else usage_store.parent / LEDGER_FILE


class QuotaService:
    """Ledger, lending, metrics and notifications of one operator process."""

    def __init__(
        self,
        store_path: Path | None,
        registry: CollectorRegistry,
        quotas_for: QuotasFor,
        secrets: SecretLookup,
        *,
        identity_labels: IdentityLabels | None = None,
        trust_scope: bool = False,
        post_event: EventPoster | None = None,
        print_line: Callable[[str], None] | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        refresh_s: float = REFRESH_S,
    ) -> None:
        if store_path is None:
            log.warning("quota leases are kept in memory only: a restart starts windows over")
        self.ledger = Ledger(LedgerStore(store_path), ttl_s=ttl_s)
        self.lending = QuotaLending(
            self.ledger, quotas_for, identity_labels or IdentityLabels(), trust_scope
        )
        self.metrics = QuotaMetrics(registry, self.ledger)
        self.status_listeners: list[Callable[[], None]] = []
        self.notifier = QuotaNotifier(
            secrets,
            post_event=post_event,
            on_crossing=(self.metrics.crossed, lambda _: self._refresh()),
            print_line=print_line,
        )
        self.ledger.listeners.append(self.notifier)
        self.refresh_s = refresh_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the upkeep in a task of the running loop."""
        self._task = asyncio.create_task(self._upkeep(), name="quota upkeep")

    async def stop(self) -> None:
        """Stop the upkeep, finish the notifications under way, close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.notifier.drain()
        self.ledger.store.close()

    def _refresh(self) -> None:
        for listener in self.status_listeners:
            listener()

    async def _upkeep(self) -> None:
        since_prune = 0.0
        while True:
            await asyncio.sleep(self.refresh_s)
            if self.ledger.current():
                self._refresh()
            since_prune += self.refresh_s
            if since_prune >= PRUNE_EVERY_S:
                since_prune = 0.0
                await asyncio.to_thread(self.ledger.prune, KEEP_MS)
