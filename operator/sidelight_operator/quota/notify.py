"""What happens when a quota crosses a threshold: an Event, a metric, a webhook, a status.

`QuotaNotifier` is a ledger listener. The ledger announces each threshold
once per quota and window (and remembers it across restarts); for each
announcement the notifier, off the ledger's lock and off the sidecars'
streams (a task of its own):

1. counts it (`QuotaMetrics.crossed`) and wakes the status writer, which
   sets the `SoftLimitReached` / `HardLimitReached` condition;
2. posts a Kubernetes Event on the LLMQuota (reason `SoftLimitReached` or
   `HardLimitReached`), or prints the line in standalone mode;
3. if the quota has `notify.webhookSecretRef`, reads the URL from that
   Secret now and POSTs a JSON body (`build_webhook_body`) or a
   Slack-compatible `{"text": ...}`; up to `WEBHOOK_ATTEMPTS` attempts, each
   with a timeout. The URL is never logged (it is often a credential: a
   Slack hook's path is its key): failures name the quota and the status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from sidelight_operator.quota.ledger import HARD, NUSD_PER_USD, SOFT, Crossing
from sidelight_operator.quota.status import (
    HARD_LIMIT_REACHED,
    SOFT_LIMIT_REACHED,
    describe_usage,
)
from sidelight_operator.quota.windows import iso
from sidelight_proto.v1 import snapshot_pb2

log = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_BACKOFF_S = 1.0
REASONS = {SOFT: SOFT_LIMIT_REACHED, HARD: HARD_LIMIT_REACHED}

SecretLookup = Callable[[str, str, str], str | None]
"""(namespace, name, key) -> the Secret's value, or None; may block (called in a thread)."""
EventPoster = Callable[[tuple[str, str, str], str, str], None]
"""(resource key, reason, message): post an Event; may block (called in a thread)."""


def describe_crossing(crossing: Crossing) -> str:
    """One line for people: which quota, which threshold, how much, until when."""
    usage, quota = crossing.usage, crossing.quota
    what = (
        f"crossed its soft threshold ({quota.soft_threshold_percent:g}%)"
        if crossing.threshold == SOFT
        else "reached its hard limit"
    )
    return (
        f"LLMQuota {usage.quota} {what}: {describe_usage(usage)} ({usage.percent:.1f}%) "
        f"in the window ending {iso(usage.window.end_ms)}"
    )


def build_webhook_body(crossing: Crossing, fmt: int) -> dict[str, Any]:
    """The webhook's JSON body: the full record, or Slack's `{"text": ...}`."""
    if fmt == snapshot_pb2.NOTIFY_FORMAT_SLACK:
        return {"text": f":warning: {describe_crossing(crossing)}"}
    usage, quota = crossing.usage, crossing.quota
    namespace, name = usage.quota.split("/", 1)
    return {
        "kind": "LLMQuotaThreshold",
        "threshold": crossing.threshold,
        "quota": {"namespace": namespace, "name": name},
        "window": {"start": iso(usage.window.start_ms), "end": iso(usage.window.end_ms)},
        "used": {
            "tokens": usage.spent_tokens,
            "costUSD": usage.spent_nusd / NUSD_PER_USD,
            "percent": round(usage.percent, 2),
        },
        "limits": {
            "tokens": usage.limit_tokens,
            "costUSD": None if usage.limit_nusd is None else usage.limit_nusd / NUSD_PER_USD,
        },
        "softThresholdPercent": quota.soft_threshold_percent,
        "at": iso(crossing.at_ms),
        "message": describe_crossing(crossing),
    }


class QuotaNotifier:
    """Tells the world about the ledger's crossings; call it from the event loop."""

    def __init__(
        self,
        secrets: SecretLookup,
        *,
        post_event: EventPoster | None = None,
        on_crossing: tuple[Callable[[Crossing], None], ...] = (),
        print_line: Callable[[str], None] | None = None,
    ) -> None:
        self.secrets = secrets
        self.post_event = post_event
        self.on_crossing = on_crossing
        self.print_line = print_line
        self.sent: list[tuple[str, str]] = []  # (quota, threshold) webhooks delivered
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, crossing: Crossing) -> None:
        """A ledger listener: act now for what is cheap, in a task for the rest."""
        for hear in self.on_crossing:
            hear(crossing)
        if self.print_line is not None:
            self.print_line(describe_crossing(crossing))
        task = asyncio.get_running_loop().create_task(self._notify(crossing))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the notifications under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _notify(self, crossing: Crossing) -> None:
        key = ("LLMQuota", *crossing.usage.quota.split("/", 1))
        if self.post_event is not None:
            try:
                reason = REASONS[crossing.threshold]
                await asyncio.to_thread(
                    self.post_event, (key[0], key[1], key[2]), reason, describe_crossing(crossing)
                )
            except Exception as exc:  # an unreachable API server must not stop the webhook
                log.warning("event for %s not posted: %s", crossing.usage.quota, exc)
        ref = crossing.quota.notify.webhook_secret_ref
        if ref.name:
            await self._webhook(crossing, ref)

    async def _webhook(self, crossing: Crossing, ref: snapshot_pb2.SecretKeyRef) -> None:
        quota = crossing.usage.quota
        namespace = quota.split("/", 1)[0]
        try:
            url = await asyncio.to_thread(self.secrets, namespace, ref.name, ref.key)
        except Exception as exc:
            log.warning("webhook of %s: Secret %s not readable: %s", quota, ref.name, exc)
            return
        if not url:
            log.warning("webhook of %s: Secret %s has no key %s", quota, ref.name, ref.key)
            return
        body = build_webhook_body(crossing, crossing.quota.notify.format)
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_S)
        for attempt in range(WEBHOOK_ATTEMPTS):
            if attempt:
                await asyncio.sleep(WEBHOOK_BACKOFF_S * 2 ** (attempt - 1))
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as session,
                    session.post(url.strip(), json=body) as response,
                ):
                    if response.status < 300:
                        self.sent.append((quota, crossing.threshold))
                        return
                    error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                error = type(exc).__name__  # the message may quote the URL
            log.warning("webhook of %s (%s) failed: %s", quota, crossing.threshold, error)
