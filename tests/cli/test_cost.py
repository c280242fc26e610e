"""`sidelight cost` and `sidelight top` against a real usage API on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from sidelight_cli.cost import sparkline, usd
from sidelight_cli.main import main
from tests.operator.usage.served import TRACE_C, UsageServer


@pytest.fixture
async def server() -> AsyncIterator[UsageServer]:
    server = UsageServer()
    await server.start()
    yield server
    await server.stop()


async def sidelight(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in a thread (the API answers on this loop); code, stdout, stderr."""
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_cost_by_team_table(server: UsageServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await sidelight(capsys, "cost", "--by", "team", "--url", server.url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("per day 2025-02-26 .. 2025-03-05")
    assert lines[1].split() == [
        "team",
        "requests",
        "errors",
        "input",
        "output",
        "cost",
        "per",
        "day",
    ]
    assert lines[2].split() == ["search", "2", "1", "200", "100", "$2.00", "▁▁▁▁▁▁█▁"]
    assert lines[3].split() == ["payments", "3", "0", "210", "101", "$0.88", "▁▁▁▁▁█▁▂"]
    assert lines[4].split() == ["total", "5", "1", "410", "201", "$2.88"]


async def test_cost_json_is_the_api_answer(
    server: UsageServer, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("cost", "--by", "served_model", "--since", "2025-03-04T00:00:00Z", "--json")
    code, out, _ = await sidelight(
        capsys, *argv, "--until", "2025-03-05T00:00:00Z", "--url", server.url
    )
    assert code == 0
    report = json.loads(out)
    assert report["days"] == ["2025-03-04"]
    assert {g["key"]: g["cost_usd"] for g in report["groups"]} == {
        "claude-3-5-sonnet": 2.0,
        "gpt-4o": 0.0,
    }


async def test_top_lists_trace_ids(server: UsageServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await sidelight(capsys, "top", "--limit", "2", "--url", server.url)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[-2:] == ["trace", "id"]
    first = lines[2].split()
    assert first[:4] == ["2025-03-04", "00:00:07", "search", "checkout"]
    assert first[4:7] == ["gpt-4o", "->", "claude-3-5-sonnet"]
    assert first[-2:] == ["$2.00", TRACE_C]
    assert len(lines) == 4


async def test_top_json(server: UsageServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await sidelight(capsys, "top", "--json", "--url", server.url)
    assert code == 0
    assert [r["id"] for r in json.loads(out)["requests"]] == ["c", "b", "a", "e", "d"]


async def test_a_refused_query_says_why(
    server: UsageServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await sidelight(capsys, "top", "--since", "soon", "--url", server.url)
    assert code == 1
    assert out == ""
    assert "since: expected a duration like 7d or an RFC 3339 time (HTTP 400)" in err


async def test_an_unreachable_api_says_how_to_reach_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = UsageServer()
    await server.start()
    url = server.url
    await server.stop()
    code, _, err = await sidelight(capsys, "cost", "--by", "team", "--url", url)
    assert code == 1
    assert f"cannot reach the usage API at {url}" in err
    assert "kubectl -n <namespace> port-forward" in err


def test_formatting_helpers() -> None:
    assert sparkline([0.0, 1.0, 2.0, 4.0]) == "▁▃▅█"
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert (usd(0), usd(0.005), usd(1234.5)) == ("$0.00", "$0.005", "$1,234.50")
