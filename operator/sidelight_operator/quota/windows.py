"""Which window of a quota a moment falls in: calendar day or month in a zone, or rolling.

- Calendar windows start at local midnight (of the first day of the month
  for `month`) in the quota's IANA time zone and end at the next one, so a
  day is 23 or 25 hours long across a daylight-saving change.
- A rolling window of N seconds is one of the back-to-back windows of that
  length counted from the Unix epoch (1h starts on the hour, 24h at 00:00
  UTC): it ends, and the budget is fresh again, at a moment everyone can
  compute. It is not a sliding window.

Times are integer milliseconds since the Unix epoch, as on the wire.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from dataclasses import dataclass

from sidelight_proto.v1 import snapshot_pb2

MS = 1000


@dataclass(frozen=True, order=True)
class Window:
    """One window of a quota: [start_ms, end_ms)."""

    start_ms: int
    end_ms: int

    def contains(self, now_ms: int) -> bool:
        """Whether `now_ms` falls in this window."""
        return self.start_ms <= now_ms < self.end_ms


def window_at(window: snapshot_pb2.QuotaWindow, now_ms: int) -> Window:
    """The window of a quota's `window` spec that holds `now_ms`."""
    kind = window.WhichOneof("kind")
    if kind == "rolling_seconds":
        length = max(1, window.rolling_seconds) * MS
        start = now_ms - now_ms % length
        return Window(start, start + length)
    zone = _zone(window.time_zone or "UTC")
    local = datetime.datetime.fromtimestamp(now_ms / MS, zone)
    if window.calendar == "month":
        first = local.date().replace(day=1)
        after = (first + datetime.timedelta(days=32)).replace(day=1)
    else:
        first = local.date()
        after = first + datetime.timedelta(days=1)
    return Window(_midnight_ms(first, zone), _midnight_ms(after, zone))


def iso(ms: int) -> str:
    """A Kubernetes-style UTC timestamp (seconds, Z) of `ms`."""
    moment = datetime.datetime.fromtimestamp(ms / MS, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _midnight_ms(day: datetime.date, zone: zoneinfo.ZoneInfo) -> int:
    midnight = datetime.datetime.combine(day, datetime.time(), zone)
    return int(midnight.timestamp() * MS)


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)
