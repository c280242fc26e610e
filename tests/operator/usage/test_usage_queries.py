"""Queries over the usage store: cost by dimension with day trends, top requests, rates."""

from __future__ import annotations

import random

import pytest

from sidelight_operator.usage.dimensions import guardrail_summary
from sidelight_operator.usage.queries import QueryError, pieces
from sidelight_operator.usage.store import DAY_S, UsageStore
from tests.operator.usage.factory import T0, record

HOUR = 3600.0


@pytest.fixture
def store() -> UsageStore:
    now = T0 + 3 * DAY_S
    store = UsageStore(clock=lambda: now)
    store.ingest(
        [
            record("a", T0 + 10, team="payments", cost_usd=0.25, input_tokens=10, output_tokens=1),
            record("b", T0 + HOUR + 5, team="payments", cost_usd=0.5, input_tokens=20),
            record("c", T0 + DAY_S + 7, team="search", cost_usd=2.0, status=500, fallback=True),
            record(
                "d", T0 + DAY_S + 8, team="search", cost_usd=0.125, verdicts=("pass", "blocked")
            ),
            record("e", T0 + 2 * DAY_S, team="", cost_usd=0.0625, verdicts=("redacted", "pass")),
        ]
    )
    return store


def test_cost_by_team_with_day_trend(store: UsageStore) -> None:
    report = store.cost_by("team", T0, T0 + 3 * DAY_S)
    assert report["days"] == ["2025-03-03", "2025-03-04", "2025-03-05"]
    assert report["total"] == {
        "requests": 5,
        "errors": 1,
        "input_tokens": 330,
        "output_tokens": 201,
        "cost_usd": 2.9375,
    }
    groups = report["groups"]
    assert [(g["key"], g["requests"], g["cost_usd"]) for g in groups] == [
        ("search", 2, 2.125),
        ("payments", 2, 0.75),
        ("", 1, 0.0625),
    ]
    assert [day["cost_usd"] for day in groups[0]["trend"]] == [0.0, 2.125, 0.0]
    assert [day["input_tokens"] for day in groups[1]["trend"]] == [30, 0, 0]
    assert groups[1]["output_tokens"] == 51


def test_partial_hours_at_the_edges_are_exact(store: UsageStore) -> None:
    # [T0+5, T0+HOUR+6): "a" and "b" from records at both ragged edges.
    report = store.cost_by("team", T0 + 5, T0 + HOUR + 6)
    assert report["total"]["requests"] == 2
    # Inside one hour, excluding "a" at T0+10.
    assert store.cost_by("team", T0 + 11, T0 + 100)["total"]["requests"] == 0
    # Whole hours only: the rollups.
    assert store.cost_by("team", T0, T0 + HOUR)["total"]["requests"] == 1


def test_rollups_answer_after_records_are_pruned() -> None:
    now = [T0]
    store = UsageStore(retention_s=DAY_S, clock=lambda: now[0])
    store.ingest([record("a", T0, cost_usd=1.5), record("b", T0 + 30, cost_usd=0.5)])
    now[0] = T0 + 5 * DAY_S
    store.prune()
    assert store.cost_by("served_model", T0, now[0])["total"] == {
        "requests": 2,
        "errors": 0,
        "input_tokens": 200,
        "output_tokens": 100,
        "cost_usd": 2.0,
    }
    assert store.top(10, T0, now[0])["requests"] == []


def test_group_by_fallback_and_guardrail(store: UsageStore) -> None:
    by_fallback = store.cost_by("fallback", T0, T0 + 3 * DAY_S)["groups"]
    assert [(g["key"], g["requests"]) for g in by_fallback] == [("true", 1), ("false", 4)]
    by_verdict = store.cost_by("guardrail", T0, T0 + 3 * DAY_S)["groups"]
    assert {g["key"]: g["requests"] for g in by_verdict} == {
        "none": 3,
        "blocked": 1,
        "redacted": 1,
    }


def test_route_dimension_joins_route_set_and_rule(store: UsageStore) -> None:
    groups = store.cost_by("route", T0, T0 + 3 * DAY_S)["groups"]
    assert [g["key"] for g in groups] == ["shop/assistant#default"]


def test_top_lists_the_most_expensive_with_trace_ids(store: UsageStore) -> None:
    top = store.top(2, T0, T0 + 3 * DAY_S)["requests"]
    assert [(r["id"], r["cost_usd"], r["trace_id"]) for r in top] == [
        ("c", 2.0, record("c").trace_id),
        ("b", 0.5, record("b").trace_id),
    ]
    assert top[0]["time"] == "2025-03-04T00:00:07.000Z"
    assert top[0]["fallback"] is True
    assert top[0]["status"] == 500
    assert top[0]["team"] == "search"


def test_rates(store: UsageStore) -> None:
    rates = store.rates(T0, T0 + 3 * DAY_S)
    assert rates["requests"] == 5
    assert rates["fallbacks"] == 1
    assert rates["fallback_rate"] == 0.2
    assert rates["error_rate"] == 0.2
    assert rates["guardrails"] == {
        "blocked": {"requests": 1, "rate": 0.2},
        "redacted": {"requests": 1, "rate": 0.2},
        "flagged": {"requests": 0, "rate": 0.0},
        "pass": {"requests": 0, "rate": 0.0},
        "none": {"requests": 3, "rate": 0.6},
    }


def test_empty_range_has_zero_rates(store: UsageStore) -> None:
    rates = store.rates(T0 - DAY_S, T0)
    assert rates["requests"] == 0
    assert rates["fallback_rate"] == 0.0


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda s: s.cost_by("colour", T0, T0 + 1), "by"),
        (lambda s: s.cost_by("team", T0, T0), "until"),
        (lambda s: s.top(0, T0, T0 + 1), "limit"),
        (lambda s: s.rates(T0 + 1, T0), "until"),
    ],
)
def test_bad_queries_name_the_parameter(store: UsageStore, call: object, parameter: str) -> None:
    with pytest.raises(QueryError) as caught:
        call(store)  # type: ignore[operator]
    assert caught.value.parameter == parameter


@pytest.mark.parametrize(
    ("verdicts", "summary"),
    [
        ((), "none"),
        (("pass",), "pass"),
        (("pass", "flagged"), "flagged"),
        (("flagged", "redacted"), "redacted"),
        (("redacted", "blocked", "pass"), "blocked"),
    ],
)
def test_guardrail_summary_is_the_most_severe_verdict(
    verdicts: tuple[str, ...], summary: str
) -> None:
    assert guardrail_summary(record("x", verdicts=verdicts)) == summary


def test_pieces_cut_a_range_into_days_hours_and_seconds() -> None:
    since = T0 - DAY_S - HOUR - 30  # 22:59:30 two days before T0's day
    until = T0 + DAY_S + 2 * HOUR + 5
    hour0, day0 = int(T0 // HOUR), int(T0 // DAY_S)
    assert pieces(since, until) == [
        ("records", since, T0 - DAY_S - HOUR),
        ("records", T0 + DAY_S + 2 * HOUR, until),
        ("hourly", hour0 - 25, hour0 - 24),
        ("hourly", hour0 + 24, hour0 + 26),
        ("daily", day0 - 1, day0 + 1),
    ]
    assert pieces(T0 + 5, T0 + 50) == [("records", T0 + 5, T0 + 50)]
    assert pieces(T0, T0 + 2 * HOUR) == [("hourly", hour0, hour0 + 2)]


def test_any_range_is_exact_while_records_are_kept() -> None:
    rng = random.Random(3)
    store = UsageStore(clock=lambda: T0 + 10 * DAY_S)
    times = sorted(T0 + rng.uniform(0, 6 * DAY_S) for _ in range(400))
    costs = [rng.randint(1, 10**6) / 10**6 for _ in times]
    teams = [rng.choice(["a", "b", "c"]) for _ in times]
    store.ingest(
        [
            record(f"r{i}", ts, team=team, cost_usd=cost)
            for i, (ts, team, cost) in enumerate(zip(times, teams, costs, strict=True))
        ]
    )
    for _ in range(60):
        since, until = sorted(T0 + rng.uniform(-DAY_S, 7 * DAY_S) for _ in range(2))
        inside = [i for i, ts in enumerate(times) if since <= ts < until]
        report = store.cost_by("team", since, until)
        assert report["total"]["requests"] == len(inside)
        expected = sum(round(costs[i] * 10**9) for i in inside) / 10**9
        assert report["total"]["cost_usd"] == expected
        for group in report["groups"]:
            members = [i for i in inside if teams[i] == group["key"]]
            assert group["requests"] == len(members)
            assert sum(day["requests"] for day in group["trend"]) == len(members)
        assert store.rates(since, until)["requests"] == len(inside)


@pytest.mark.parametrize("hours", [1, 24 * 9])
def test_top_over_narrow_and_wide_ranges(hours: int) -> None:
    store = UsageStore(clock=lambda: T0 + 10 * DAY_S)
    store.ingest(
        [record(f"r{i}", T0 + i * 600, cost_usd=(i * 7919 % 1000) / 1000) for i in range(1440)]
    )
    since, until = T0 + DAY_S, T0 + DAY_S + hours * HOUR
    expected = sorted(
        (i for i in range(1440) if since <= T0 + i * 600 < until),
        key=lambda i: (-(i * 7919 % 1000), -i),
    )[:5]
    assert [r["id"] for r in store.top(5, since, until)["requests"]] == [f"r{i}" for i in expected]
