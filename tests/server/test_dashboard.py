"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright (never a browser Playwright
downloads). It loads without console errors, shows queues created over RESP, follows LPUSH / XREADGROUP / XACK,
sorts and filters, and leaves a screenshot in test-artifacts/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conftest import ServerProcess, require_tool

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 15_000  # the page refreshes every 2 s; a loaded machine may take a few turns


def sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("the playwright package is not installed (pip install '.[test]')")
        pytest.skip("the playwright package is not installed")
    return start


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    """A fresh headless chromium page and the console errors and uncaught exceptions it reports."""
    chromium = require_tool("chromium")  # Debian's, from scripts/test; /usr/bin/chromium on Debian
    errors: list[str] = []
    with sync_playwright()() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_default_timeout(WAIT_MS)
            yield page, errors
        finally:
            context.close()


def cell(page: Any, key: str, column: str) -> Any:
    return page.locator(f'#queues tbody tr[data-key="{key}"] td.{column}')


def test_the_dashboard_in_chromium(served: tuple[ServerProcess, int], browser_page: tuple[Any, list[str]]) -> None:
    from playwright.sync_api import expect

    server, port = served
    page, errors = browser_page
    client = redis.Redis(port=server.port, socket_timeout=10)
    for n in range(3):
        client.rpush(f"jobs:{n}", *["x"] * (n + 1))

    page.goto(f"http://127.0.0.1:{port}/")
    expect(cell(page, "jobs:2", "depth")).to_have_text("3")
    expect(page.get_by_test_id("tile-lists")).to_have_text("3")

    # A queue created over RESP shows up; its depth follows LPUSH.
    client.lpush("created-later", "a")
    expect(cell(page, "created-later", "depth")).to_have_text("1")
    client.lpush("created-later", "b", "c")
    expect(cell(page, "created-later", "depth")).to_have_text("3")

    # Sorting: by depth, deepest first, then shallowest first.
    page.locator('#queues th[data-sort="depth"]').click()
    expect(page.locator("#queues tbody tr").first).to_have_attribute("data-key", "jobs:2")
    expect(page.locator('#queues th[data-sort="depth"]')).to_have_class("num sorted-desc")
    page.locator('#queues th[data-sort="depth"]').click()
    expect(page.locator("#queues tbody tr").first).to_have_attribute("data-key", "jobs:0")

    # Filtering: by glob, then by type.
    page.get_by_test_id("match").fill("jobs:*")
    expect(page.locator("#queues tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("range")).to_have_text("1\u20133 of 3")
    page.get_by_test_id("match").fill("")
    client.xadd("events", {"kind": "a"})
    page.get_by_test_id("type").select_option("stream")
    expect(page.locator("#queues tbody tr")).to_have_count(1)
    expect(page.locator("#queues tbody tr").first).to_have_attribute("data-key", "events")

    # A stream's pending entries follow XREADGROUP and XACK, in the table and on the queue's page.
    for kind in "bc":
        client.xadd("events", {"kind": kind})
    client.xgroup_create("events", "workers", id="0")
    expect(cell(page, "events", "pending")).to_have_text("0")
    read = client.xreadgroup("workers", "w1", {"events": ">"}, count=2)
    expect(cell(page, "events", "pending")).to_have_text("2")
    page.locator('#queues tbody tr[data-key="events"] td.key a').click()
    expect(page.get_by_test_id("queue-title")).to_contain_text("events")
    group = page.locator('#groups tbody tr[data-group="workers"] td.pending')
    expect(group).to_have_text("2")
    client.xack("events", "workers", read[0][1][0][0])
    expect(group).to_have_text("1")
    expect(page.get_by_test_id("q-pending")).to_have_text("1")
    expect(page.get_by_test_id("peek").locator("li")).to_have_count(3)
    expect(page.locator("#groups tbody tr")).to_contain_text("w1 (1,")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-queue.png"), full_page=True)
    page.get_by_text("all queues").click()
    page.get_by_test_id("type").select_option("")
    expect(page.locator("#queues tbody tr")).to_have_count(5)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert errors == []


def test_the_dashboard_pages_through_queues_and_sorts_lists_by_age(
    served: tuple[ServerProcess, int], browser_page: tuple[Any, list[str]]
) -> None:
    """120 lists, 50 to a page: next and previous walk the pages the API serves; sorting by oldest puts the list
    pushed first on top (lists have ages from their push times)."""
    from playwright.sync_api import expect

    from conftest import wait_until
    from tests.server.test_http_api import call

    server, port = served
    page, errors = browser_page
    client = redis.Redis(port=server.port, socket_timeout=10)
    client.rpush("p:aged", "first")
    wait_until(lambda: call(port, "GET", "/api/queues/0/p:aged")[2]["oldest_seconds"] >= 0.5)
    with client.pipeline(transaction=False) as pipe:
        for n in range(119):
            pipe.rpush(f"p:{n:03d}", "x")
        pipe.rpush("other", "x")  # filtered out: the filter shows in the count before the pages are walked
        pipe.execute()
    rows = page.locator("#queues tbody tr")

    page.goto(f"http://127.0.0.1:{port}/")
    page.get_by_test_id("match").fill("p:*")
    expect(page.get_by_test_id("range")).to_have_text("1\u201350 of 120")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-key", "p:000")
    expect(page.get_by_test_id("prev")).to_be_disabled()
    page.get_by_test_id("next").click()
    expect(page.get_by_test_id("range")).to_have_text("51\u2013100 of 120")
    expect(rows.first).to_have_attribute("data-key", "p:050")
    page.get_by_test_id("next").click()
    expect(page.get_by_test_id("range")).to_have_text("101\u2013120 of 120")
    expect(rows).to_have_count(20)
    expect(rows.last).to_have_attribute("data-key", "p:aged")
    expect(page.get_by_test_id("next")).to_be_disabled()
    page.get_by_test_id("prev").click()
    expect(page.get_by_test_id("range")).to_have_text("51\u2013100 of 120")

    # Sorting by the oldest message starts again from the first page, the list pushed first on top.
    page.locator('#queues th[data-sort="oldest"]').click()
    expect(page.get_by_test_id("range")).to_have_text("1\u201350 of 120")
    expect(rows.first).to_have_attribute("data-key", "p:aged")
    expect(cell(page, "p:aged", "oldest")).not_to_have_text("\u2013")  # an age, not the unknown mark
    assert errors == []
