"""The operator's budget book: one account per quota and window, lent out as leases.

A sidecar holds at most one open lease per quota; every exchange on it
(`Ledger.exchange`, one `LeaseAsk` in, one `LeaseGrant` out) reports the
lease's cumulative spent, returned and refused counters and may ask for
more. The ledger charges each lease:

- open: what it was granted less what was returned (or what was spent, if
  the sidecar spent more than it was granted: a token count that came out
  low);
- closed: exactly what was spent.

`used` for lending is the sum of those charges, and a grant never exceeds
`limit - used`: the sum of what the sidecars may spend never passes the
limit, whatever they do, whether the operator is reachable or not. A lease
whose sidecar vanished without closing it stays charged in full until the
window ends: the quota loses its unspent part, it never overshoots.

A grant is the smaller of what was asked and a fair share of what is left:
left / (open leases active in the last `2 * ttl`). Each grant also says how
long the sidecar may reserve from the lease (`ttl`, never past the window's
end), what every sidecar spent so far, and what is left to lend.

Thresholds count spending (not lending): the soft threshold is crossed when
the larger of tokens and dollars spent reaches `soft_threshold_percent` of
its limit; the hard one when spending reaches the limit or a sidecar refused
a call for lack of budget. Each is announced once per window to the
`listeners` (and remembered in the store, so a restart does not announce it
again). The clock is a parameter, so tests move time instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidelight_operator.quota.store import LeaseRecord, LedgerStore
from sidelight_operator.quota.windows import Window, window_at
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2

log = logging.getLogger(__name__)

NUSD_PER_USD = 1_000_000_000
DEFAULT_TTL_S = 30.0
SOFT = "soft"
HARD = "hard"


def quota_key(quota: snapshot_pb2.Quota) -> str:
    """`namespace/name` of the LLMQuota a compiled quota came from."""
    return f"{quota.source.namespace}/{quota.source.name}"


def limits_of(quota: snapshot_pb2.Quota) -> tuple[int | None, int | None]:
    """The quota's limits in tokens and nano-dollars (None: not limited)."""
    tokens = quota.limit_tokens if quota.HasField("limit_tokens") else None
    nusd = round(quota.limit_cost_usd * NUSD_PER_USD) if quota.HasField("limit_cost_usd") else None
    return tokens, nusd


@dataclass(frozen=True)
class Usage:
    """A quota's account in one window, as the ledger sees it now."""

    quota: str
    window: Window
    limit_tokens: int | None
    limit_nusd: int | None
    spent_tokens: int = 0
    spent_nusd: int = 0
    charged_tokens: int = 0
    charged_nusd: int = 0
    refused: int = 0
    open_leases: int = 0
    notices: frozenset[str] = frozenset()

    @property
    def percent(self) -> float:
        """The larger of tokens and dollars spent, in percent of its limit."""
        shares = [
            100.0 * spent / limit
            for spent, limit in (
                (self.spent_tokens, self.limit_tokens),
                (self.spent_nusd, self.limit_nusd),
            )
            if limit
        ]
        return max(shares, default=0.0)

    @property
    def available_tokens(self) -> int | None:
        """Tokens left to lend (None: not limited)."""
        return None if self.limit_tokens is None else self.limit_tokens - self.charged_tokens

    @property
    def available_nusd(self) -> int | None:
        """Nano-dollars left to lend (None: not limited)."""
        return None if self.limit_nusd is None else self.limit_nusd - self.charged_nusd


@dataclass(frozen=True)
class Crossing:
    """A threshold crossed, announced once per quota, window and threshold."""

    quota: snapshot_pb2.Quota = field(repr=False)
    threshold: str  # SOFT or HARD
    usage: Usage
    at_ms: int


@dataclass
class _Book:
    """One quota's account in one window."""

    window: Window
    leases: dict[str, LeaseRecord] = field(default_factory=dict)  # by pod/lease id
    notices: set[str] = field(default_factory=set)
    quota: snapshot_pb2.Quota | None = None  # as of the last exchange


class Ledger:
    """Budgets per quota and window, lent to sidecars as leases; thread-safe."""

    def __init__(
        self,
        store: LedgerStore | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store or LedgerStore(None)
        self.ttl_ms = int(ttl_s * 1000)
        self.clock = clock
        self.listeners: list[Callable[[Crossing], None]] = []
        self._lock = threading.Lock()
        self._books: dict[tuple[str, Window], _Book] = {}
        self._leases: dict[tuple[str, str], LeaseRecord] = {}  # by (pod, lease id)
        leases, notices = self.store.load()
        for record in leases:
            self._book(record.quota, record.window).leases[_lease_key(record)] = record
            self._leases[(record.pod, record.lease_id)] = record
        for quota, window, threshold in notices:
            self._book(quota, window).notices.add(threshold)

    def now_ms(self) -> int:
        """The ledger's clock in milliseconds since the epoch."""
        return int(self.clock() * 1000)

    def exchange(
        self, pod: str, quota: snapshot_pb2.Quota, ask: control_plane_pb2.LeaseAsk
    ) -> control_plane_pb2.LeaseGrant:
        """Record what `ask` reports about its lease and grant what it may have."""
        key = quota_key(quota)
        if not ask.lease_id:
            return control_plane_pb2.LeaseGrant(quota=key, error="an ask must name its lease_id")
        now = self.now_ms()
        with self._lock:
            record = self._leases.get((pod, ask.lease_id))
            if record is not None and record.quota != key:
                return control_plane_pb2.LeaseGrant(
                    quota=key, lease_id=ask.lease_id, error="the lease belongs to another quota"
                )
            if record is None:
                record = LeaseRecord(ask.lease_id, pod, key, window_at(quota.window, now))
                self._leases[(pod, ask.lease_id)] = record
            book = self._book(key, record.window)
            book.leases[_lease_key(record)] = record
            book.quota = quota
            _report(record, ask)
            if not record.closed and record.window.contains(now):
                self._lend(book, record, quota, ask, now)
            record.updated_ms = now
            self.store.save_lease(record)
            usage = self._usage(book, quota)
            crossings = self._crossings(book, quota, usage, now)
        for crossing in crossings:
            self._announce(crossing)
        return _grant(record, usage, min(self.ttl_ms, record.window.end_ms - now))

    def usage(self, quota: snapshot_pb2.Quota) -> Usage:
        """The quota's account in its current window."""
        now = self.now_ms()
        window = window_at(quota.window, now)
        with self._lock:
            book = self._books.get((quota_key(quota), window))
            if book is None:
                return Usage(quota_key(quota), window, *limits_of(quota))
            return self._usage(book, quota)

    def current(self) -> list[Usage]:
        """The account of every quota lent from in its current window (for metrics)."""
        now = self.now_ms()
        with self._lock:
            return [
                self._usage(book, book.quota)
                for book in self._books.values()
                if book.quota is not None and book.window.contains(now)
            ]

    def prune(self, keep_ms: int) -> None:
        """Forget windows that ended more than `keep_ms` ago."""
        horizon = self.now_ms() - keep_ms
        with self._lock:
            for (quota, window), book in list(self._books.items()):
                if window.end_ms < horizon:
                    del self._books[(quota, window)]
                    for record in book.leases.values():
                        self._leases.pop((record.pod, record.lease_id), None)
        self.store.prune(horizon)

    def _book(self, quota: str, window: Window) -> _Book:
        book = self._books.get((quota, window))
        if book is None:
            book = self._books[(quota, window)] = _Book(window)
        return book

    def _lend(
        self,
        book: _Book,
        record: LeaseRecord,
        quota: snapshot_pb2.Quota,
        ask: control_plane_pb2.LeaseAsk,
        now: int,
    ) -> None:
        limit_tokens, limit_nusd = limits_of(quota)
        charged_tokens, charged_nusd = _charged(book)
        horizon = now - 2 * self.ttl_ms
        active = 1 + sum(
            1
            for other in book.leases.values()
            if other is not record and not other.closed and other.updated_ms >= horizon
        )
        # Spending past the grant is charged already: granting it costs nothing more.
        debt_tokens, debt_nusd = record.debt()
        if limit_tokens is not None:
            share = _share(ask.want_tokens, limit_tokens - charged_tokens, active)
            record.granted_tokens += debt_tokens + share
        if limit_nusd is not None:
            record.granted_nusd += debt_nusd + _share(
                ask.want_nusd, limit_nusd - charged_nusd, active
            )

    def _usage(self, book: _Book, quota: snapshot_pb2.Quota) -> Usage:
        charged_tokens, charged_nusd = _charged(book)
        leases = book.leases.values()
        return Usage(
            quota=quota_key(quota),
            window=book.window,
            limit_tokens=limits_of(quota)[0],
            limit_nusd=limits_of(quota)[1],
            spent_tokens=sum(r.spent_tokens for r in leases),
            spent_nusd=sum(r.spent_nusd for r in leases),
            charged_tokens=charged_tokens,
            charged_nusd=charged_nusd,
            refused=sum(r.refused for r in leases),
            open_leases=sum(1 for r in leases if not r.closed),
            notices=frozenset(book.notices),
        )

    def _crossings(
        self, book: _Book, quota: snapshot_pb2.Quota, usage: Usage, now: int
    ) -> list[Crossing]:
        reached = []
        if usage.percent >= quota.soft_threshold_percent:
            reached.append(SOFT)
        if usage.percent >= 100.0 or usage.refused:
            reached.append(HARD)
        crossings = []
        for threshold in reached:
            if threshold in book.notices:
                continue
            book.notices.add(threshold)
            self.store.save_notice(usage.quota, book.window, threshold, now)
            crossings.append(Crossing(quota, threshold, usage, now))
        return crossings

    def _announce(self, crossing: Crossing) -> None:
        for listener in list(self.listeners):
            try:
                listener(crossing)
            except Exception:  # one broken listener must not silence the others
                log.exception("quota listener %r failed", listener)


def _lease_key(record: LeaseRecord) -> str:
    return f"{record.pod}/{record.lease_id}"


def _report(record: LeaseRecord, ask: control_plane_pb2.LeaseAsk) -> None:
    """Take the ask's counters: cumulative ones only grow, held is as reported."""
    record.spent_tokens = max(record.spent_tokens, ask.spent_tokens)
    record.spent_nusd = max(record.spent_nusd, ask.spent_nusd)
    record.returned_tokens = min(
        max(record.returned_tokens, ask.returned_tokens), record.granted_tokens
    )
    record.returned_nusd = min(max(record.returned_nusd, ask.returned_nusd), record.granted_nusd)
    record.refused = max(record.refused, ask.refused)
    record.held_tokens, record.held_nusd = max(ask.held_tokens, 0), max(ask.held_nusd, 0)
    record.closed = record.closed or ask.close


def _charged(book: _Book) -> tuple[int, int]:
    tokens = nusd = 0
    for record in book.leases.values():
        t, n = record.charged()
        tokens += t
        nusd += n
    return tokens, nusd


def _share(want: int, available: int, active: int) -> int:
    """What to grant: at most `want`, and a fair share of what is `available`."""
    if want <= 0 or available <= 0:
        return 0
    share = available if active <= 1 else max(available // active, 1)
    return min(want, share)


def _grant(record: LeaseRecord, usage: Usage, ttl_ms: int) -> control_plane_pb2.LeaseGrant:
    grant = control_plane_pb2.LeaseGrant(
        quota=record.quota,
        lease_id=record.lease_id,
        granted_tokens=record.granted_tokens,
        granted_nusd=record.granted_nusd,
        ttl_ms=max(0, ttl_ms) if not record.closed else 0,
        window_start_unix_ms=record.window.start_ms,
        window_end_unix_ms=record.window.end_ms,
    )
    if usage.limit_tokens is not None:
        grant.used_tokens = usage.spent_tokens
        grant.available_tokens = max(0, usage.available_tokens or 0)
    if usage.limit_nusd is not None:
        grant.used_nusd = usage.spent_nusd
        grant.available_nusd = max(0, usage.available_nusd or 0)
    return grant
