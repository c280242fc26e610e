"""The operator's usage service: its options, its API on a port, its store across restarts."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import aiohttp
import pytest

from sidelight_operator.inject.options import WebhookOptions
from sidelight_operator.kube.operator import identity_labels
from sidelight_operator.usage.options import UsageOptions, add_usage_arguments, build_usage_options
from sidelight_operator.usage.service import UsageService
from tests.operator.usage.factory import record


def parse(*argv: str) -> UsageOptions:
    parser = argparse.ArgumentParser()
    add_usage_arguments(parser)
    return build_usage_options(parser.parse_args(list(argv)))


def test_option_defaults() -> None:
    assert parse() == UsageOptions("0.0.0.0", 8080, None, 30, 100)


def test_options() -> None:
    options = parse(
        "--usage-listen", "127.0.0.1:9090", "--usage-store", "/data/usage.db",
        "--usage-retention-days", "7.5", "--metrics-label-cap", "20",
    )  # fmt: skip
    assert options == UsageOptions("127.0.0.1", 9090, Path("/data/usage.db"), 7.5, 20)


@pytest.mark.parametrize(
    "argv",
    [
        ("--usage-listen", "9090"),
        ("--usage-retention-days", "0"),
        ("--metrics-label-cap", "0"),
        ("--metrics-label-cap", "ten"),
    ],
)
def test_bad_options(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)


async def cost_by_team(port: int) -> dict[str, object]:
    url = f"http://127.0.0.1:{port}/api/v1/usage/cost?by=team&since=1h"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        body: dict[str, object] = await response.json()
        return body


async def test_usage_survives_a_restart(tmp_path: Path) -> None:
    options = UsageOptions("127.0.0.1", 0, tmp_path / "usage.db")
    now = time.time()
    first = UsageService(options)
    await first.start()
    assert first.store.ingest([record("a", now - 60, cost_usd=1.25)]) == 1
    assert (await cost_by_team(first.port))["total"] == {
        "requests": 1, "errors": 0, "input_tokens": 100, "output_tokens": 50, "cost_usd": 1.25,
    }  # fmt: skip
    await first.stop()
    second = UsageService(options)
    await second.start()
    assert second.store.ingest([record("a", now - 60), record("b", now - 30)]) == 1
    total = (await cost_by_team(second.port))["total"]
    assert isinstance(total, dict)
    assert (total["requests"], total["cost_usd"]) == (2, 1.26)
    metrics = second.registry.get_sample_value(
        "sidelight_usage_requests_total",
        {"namespace": "shop", "team": "payments", "application": "checkout",
         "environment": "prod", "model": "gpt-4o", "backend": "openai"},
    )  # fmt: skip
    assert metrics == 1
    await second.stop()


def test_identity_labels_come_from_the_injection_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("image: x\ncontrolPlane: y\nidentityLabels:\n  team: example.com/team\n")
    webhook = WebhookOptions("0.0.0.0", 9443, config, None, tmp_path / "c", tmp_path / "k")
    labels = identity_labels(webhook)
    assert (labels.team, labels.application) == ("example.com/team", "app.kubernetes.io/name")
    assert identity_labels(None) == type(labels)()
