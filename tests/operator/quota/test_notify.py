"""Threshold notifications (webhook bodies, a real receiver), status fields and metrics."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from sidelight_operator.quota import Ledger, Usage, Window
from sidelight_operator.quota.ledger import Crossing
from sidelight_operator.quota.metrics import QuotaMetrics
from sidelight_operator.quota.notify import QuotaNotifier, build_webhook_body
from sidelight_operator.quota.status import build_quota_status, quota_status_source
from sidelight_proto.v1 import snapshot_pb2
from tests.operator.quota.test_ledger import Clock, ask, quota
from tests.sidecar.harness import LoopbackServer

SECRET_URL_PATH = "/hooks/T000-secret-path"


class Receiver(LoopbackServer):
    """A webhook receiver that keeps what it was sent; fails the first `fail` posts."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.bodies: list[dict[str, object]] = []
        self.fail = fail

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(SECRET_URL_PATH, self._post)

    async def _post(self, request: web.Request) -> web.Response:
        if self.fail:
            self.fail -= 1
            return web.Response(status=503)
        self.bodies.append(orjson.loads(await request.read()))
        return web.Response(text="ok")


def with_webhook(
    q: snapshot_pb2.Quota,
    fmt: snapshot_pb2.NotifyFormat.ValueType = snapshot_pb2.NOTIFY_FORMAT_JSON,
) -> snapshot_pb2.Quota:
    q.notify.webhook_secret_ref.name = "hook"
    q.notify.webhook_secret_ref.key = "url"
    q.notify.format = fmt
    return q


def test_the_json_body_carries_the_numbers() -> None:
    usage = Usage(
        "shop/q", Window(0, 86_400_000), 1000, 2_000_000_000, 800, 500_000_000, notices=frozenset()
    )
    body = build_webhook_body(
        Crossing(quota(), "soft", usage, 3_600_000), snapshot_pb2.NOTIFY_FORMAT_JSON
    )
    assert body == {
        "kind": "LLMQuotaThreshold",
        "threshold": "soft",
        "quota": {"namespace": "shop", "name": "q"},
        "window": {"start": "1970-01-01T00:00:00Z", "end": "1970-01-02T00:00:00Z"},
        "used": {"tokens": 800, "costUSD": 0.5, "percent": 80.0},
        "limits": {"tokens": 1000, "costUSD": 2.0},
        "softThresholdPercent": 80.0,
        "at": "1970-01-01T01:00:00Z",
        "message": "LLMQuota shop/q crossed its soft threshold (80%): 800/1,000 tokens, "
        "$0.50/$2.00 (80.0%) in the window ending 1970-01-02T00:00:00Z",
    }
    slack = build_webhook_body(
        Crossing(quota(), "hard", usage, 0), snapshot_pb2.NOTIFY_FORMAT_SLACK
    )
    assert slack == {
        "text": ":warning: LLMQuota shop/q reached its hard limit: 800/1,000 tokens, "
        "$0.50/$2.00 (80.0%) in the window ending 1970-01-02T00:00:00Z"
    }


async def test_a_crossing_reaches_the_webhook_event_and_metrics_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = Receiver(fail=1)
    await receiver.start()
    try:
        url = receiver.url + SECRET_URL_PATH
        ledger = Ledger(clock=Clock())
        registry = CollectorRegistry()
        metrics = QuotaMetrics(registry, ledger)
        events: list[tuple[tuple[str, str, str], str, str]] = []
        lookups: list[tuple[str, str, str]] = []

        def secret(namespace: str, name: str, key: str) -> str:
            lookups.append((namespace, name, key))
            return url + "\n"

        notifier = QuotaNotifier(
            secret,
            post_event=lambda key, reason, message: events.append((key, reason, message)),
            on_crossing=(metrics.crossed,),
        )
        ledger.listeners.append(notifier)
        q = with_webhook(quota(tokens=1000))
        caplog.set_level(logging.DEBUG)
        for spent in (700, 850, 900, 950):
            ledger.exchange("a", q, ask("a", want_tokens=1000, spent_tokens=spent))
        await asyncio.wait_for(notifier.drain(), 10)
        assert [b["threshold"] for b in receiver.bodies] == ["soft"]
        assert receiver.bodies[0]["used"] == {"tokens": 850, "costUSD": 0.0, "percent": 85.0}
        assert lookups == [("shop", "hook", "url")]
        assert events == [
            (
                ("LLMQuota", "shop", "q"),
                "SoftLimitReached",
                "LLMQuota shop/q crossed its soft threshold (80%): 850/1,000 tokens (85.0%) "
                "in the window ending 2023-11-14T22:14:00Z",
            )
        ]
        assert notifier.sent == [("shop/q", "soft")]
        text = generate_latest(registry).decode()
        crossings = "sidelight_quota_threshold_crossings_total"
        assert f'{crossings}{{namespace="shop",quota="q",threshold="soft"}} 1.0' in text
        assert 'sidelight_quota_soft_limit_reached{namespace="shop",quota="q"} 1.0' in text
        assert 'sidelight_quota_hard_limit_reached{namespace="shop",quota="q"} 0.0' in text
        assert 'sidelight_quota_used_ratio{namespace="shop",quota="q"} 0.95' in text
        assert 'sidelight_quota_used_tokens{namespace="shop",quota="q"} 950.0' in text
        assert "HTTP 503" in caplog.text  # the first attempt failed, and says so
        assert "secret-path" not in caplog.text  # never the URL
        assert "127.0.0.1" not in caplog.text
    finally:
        await receiver.stop()


def test_the_status_tells_usage_window_and_conditions() -> None:
    clock = Clock()
    ledger = Ledger(clock=clock)
    q = quota(tokens=100_000, cost=50.0)
    ledger.exchange(
        "a", q, ask("a", want_tokens=100_000, spent_tokens=41_200, spent_nusd=12_400_000_000)
    )
    fields, conditions = build_quota_status(ledger.usage(q), 80)
    assert fields == {
        "used": "41,200/100,000 tokens, $12.40/$50.00",
        "usedTokens": 41_200,
        "usedCostUSD": 12.4,
        "percent": 41,
        "windowStart": "2023-11-14T22:13:00Z",
        "windowEnd": "2023-11-14T22:14:00Z",
    }
    assert [(c.type, c.status, c.reason) for c in conditions] == [
        ("SoftLimitReached", "False", "BelowThreshold"),
        ("HardLimitReached", "False", "WithinLimit"),
    ]
    ledger.exchange("a", q, ask("a", spent_tokens=99_000, refused=2))
    snapshot = snapshot_pb2.Snapshot(quotas=[q])
    extra = quota_status_source(ledger)
    found = extra(("LLMQuota", "shop", "q"), snapshot)
    assert found is not None
    fields, conditions = found
    assert [(c.type, c.status, c.reason) for c in conditions] == [
        ("SoftLimitReached", "True", "ThresholdCrossed"),
        ("HardLimitReached", "True", "LimitReached"),
    ]
    assert conditions[1].message.endswith("; 2 call(s) refused or downgraded")
    assert extra(("LLMRoute", "shop", "q"), snapshot) is None
    assert extra(("LLMQuota", "shop", "gone"), snapshot) is None
    clock.now += 60  # a new window: fresh numbers, conditions back to False
    fields, conditions = build_quota_status(ledger.usage(q), 80)
    assert (fields["usedTokens"], fields["percent"]) == (0, 0)
    assert [c.status for c in conditions] == ["False", "False"]
