"""The app shell in chromium: every page mounts from the served files alone, nothing leaves the server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from webharness import Served, allowed, wait_ready

PAGES = ["chat", "library", "search", "dashboard", "settings"]


def test_each_page_mounts_and_only_the_server_is_asked(server: Served, page: Any, shot: Any,
                                                       requests_seen: list[str]) -> None:
    page.goto(server.url + "/")
    wait_ready(page)
    assert page.url.endswith("#/chat")
    assert page.title() == "Chat · localrag"
    for name in PAGES:
        page.click(f'nav a[data-page="{name}"]')
        page.wait_for_selector(f"section.page-{name} h1")
        assert page.get_attribute(f'nav a[data-page="{name}"]', "aria-current") == "page"
        assert page.locator('nav a[aria-current="page"]').count() == 1
        assert not page.locator(".page-failed").count(), page.inner_text("main")
        shot(page, f"page-{name}")
    assert page.is_hidden("#forget-key")  # no key stored: nothing to forget
    loaded = {url.removeprefix(server.url) for url in requests_seen}
    assert {"/", "/app/app.css", "/app/js/app.js", "/app/js/api.js", "/app/js/ui.js"} <= loaded
    assert {f"/app/js/pages/{name}.js" for name in PAGES} <= loaded
    assert all(url.startswith(server.url + "/") for url in requests_seen), requests_seen


def test_dark_scheme_follows_the_system(server: Served, page: Any, shot: Any) -> None:
    def background() -> list[int]:
        rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
        return [int(x) for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]

    page.emulate_media(color_scheme="light")
    page.goto(server.url + "/#/chat")
    wait_ready(page)
    assert sum(background()) > 600  # light
    page.emulate_media(color_scheme="dark")
    assert sum(background()) < 150  # dark, without a reload
    shot(page, "page-chat-dark")


def test_phone_width_keeps_the_nav_usable(server: Served, page: Any, shot: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/#/library")
    wait_ready(page)
    nav = page.locator("nav.nav").bounding_box()
    assert nav is not None and nav["x"] >= 0 and nav["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    shot(page, "phone-library")


def test_requests_elsewhere_are_caught(server: Served) -> None:
    assert allowed(server.url + "/app/app.css")
    assert allowed(server.url.replace("http", "ws") + "/v1/events")
    assert allowed("data:image/png;base64,AAAA")
    host, port = server.url.removeprefix("http://").split(":")
    assert not allowed(f"http://{host}:{int(port) + 1}/")
    assert not allowed("https://fonts.googleapis.com/css?family=Inter")
    assert not allowed(f"http://localhost:{port}/")  # another name for the server is another origin


def test_without_chromium_the_browser_tests_fail_naming_the_package() -> None:
    env = {**os.environ, "LOCALRAG_CHROMIUM": "/nonexistent/chromium"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"{__file__}::test_dark_scheme_follows_the_system"],
                         cwd=Path(__file__).parents[2], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0, run.stdout[-2000:]
    assert "apt-get install chromium" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]
