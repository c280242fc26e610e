"""The usage page in a real headless browser (Debian's chromium, driven by playwright).

The browser is installed by `make browser` (a dependency of `make test`);
playwright's own browser download is not used.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.operator.usage.served import TRACE_C, UsageServer

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def server() -> AsyncIterator[UsageServer]:
    server = UsageServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run `make browser`"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        await browser.close()


async def series(page: Page, chart: str) -> dict[str, list[tuple[str, float]]]:
    """Per series of a line chart: (day, value) of each point, as drawn."""
    drawn: dict[str, list[tuple[str, float]]] = await page.eval_on_selector_all(
        f"#{chart} g.series",
        """groups => Object.fromEntries(groups.map(g => [g.dataset.series, [
            ...g.querySelectorAll('circle')].map(c => [c.dataset.day, Number(c.dataset.value)])
        ]))""",
    )
    return {name: [(day, value) for day, value in points] for name, points in drawn.items()}


async def open_page(page: Page, url: str) -> list[str]:
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    await page.wait_for_selector("body[data-state=ready]", timeout=10_000)
    return errors


async def test_charts_show_cost_by_team_and_model(server: UsageServer, browser: Browser) -> None:
    page = await browser.new_page()
    errors = await open_page(page, server.url + "/?since=7d")
    by_team = await series(page, "cost-by-team")
    assert list(by_team) == ["search", "payments"]
    assert by_team["payments"][-3:] == [
        ("2025-03-03", 0.75),
        ("2025-03-04", 0),
        ("2025-03-05", 0.125),
    ]
    assert by_team["search"][-3:] == [("2025-03-03", 0), ("2025-03-04", 2), ("2025-03-05", 0)]
    assert len(by_team["search"]) == 8
    by_model = await series(page, "cost-by-model")
    assert list(by_model) == ["claude-3-5-sonnet", "claude-3-5-haiku", "gpt-4o"]
    assert by_model["gpt-4o"][-3:] == [
        ("2025-03-03", 0.25),
        ("2025-03-04", 0),
        ("2025-03-05", 0.125),
    ]
    legend = await page.locator("#cost-by-team li").all_inner_texts()
    assert legend == ["search $2.00", "payments $0.88"]
    # The highest point is drawn highest: SVG y grows downwards.
    heights = await page.eval_on_selector_all(
        "#cost-by-team g[data-series=search] circle",
        "cs => cs.map(c => Number(c.getAttribute('cy')))",
    )
    assert min(heights) == heights[-2]
    assert errors == []


async def test_rates_and_most_expensive_requests(server: UsageServer, browser: Browser) -> None:
    page = await browser.new_page()
    errors = await open_page(page, server.url + "/")
    rates = await page.eval_on_selector_all(
        "#rates g.rate",
        "rs => Object.fromEntries(rs.map(r => [r.dataset.series, Number(r.dataset.rate)]))",
    )
    assert rates == {
        "fallback": 0.2,
        "error": 0.2,
        "guardrail blocked": 0.2,
        "guardrail redacted": 0.2,
        "guardrail flagged": 0,
        "guardrail pass": 0,
    }
    rows = page.locator("#top tbody tr")
    assert await rows.count() == 5
    assert await rows.first.get_attribute("data-trace-id") == TRACE_C
    first = await rows.first.locator("td").all_inner_texts()
    assert first[1:4] == ["search", "checkout", "gpt-4o → claude-3-5-sonnet"]
    assert first[-2:] == ["$2.00", TRACE_C]
    assert errors == []


async def test_changing_the_range_redraws(server: UsageServer, browser: Browser) -> None:
    page = await browser.new_page()
    await open_page(page, server.url + "/")
    await page.select_option("#range", "1d")
    await page.wait_for_function(
        "document.querySelectorAll('#cost-by-team g.series').length === 1"
        " && document.body.dataset.state === 'ready'"
    )
    assert await series(page, "cost-by-team") == {
        "payments": [("2025-03-04", 0), ("2025-03-05", 0.125)]
    }
    assert await page.locator("#top tbody tr").count() == 1
