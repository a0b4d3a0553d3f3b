"""The browser test harness: a real localrag server and Debian's chromium driven by Playwright for Python.

- ``server`` / ``keyed_server`` (one per test module): a ``localrag serve`` app (uvicorn, 127.0.0.1, a
  free port, its own data directory) with the real embedder and SmolLM2-135M, one thread each;
  ``keyed_server`` needs ``webharness.KEY``. ``webharness.start_server(data, embedder, keys, **overrides)``
  starts another (e.g. with ``server={"dashboard_interval_s": 0.2}``).
- ``browser`` (one per session): ``/usr/bin/chromium`` headless (``$LOCALRAG_CHROMIUM`` overrides the
  path), never a downloaded browser. Playwright gives each launch a fresh temporary profile.
- ``page``: a new browser context and page; every request and WebSocket URL is recorded in
  ``requests_seen``, and at teardown the test fails if any went anywhere but a server started here,
  or if the page raised an uncaught JavaScript error. The request list is saved beside the screenshots.
- ``shot(page, name)``: a full-page screenshot under ``tests/browser/screenshots/`` (gitignored) or
  ``$LOCALRAG_SCREENSHOTS``.
- ``webharness.wait_ready(page)``: until the app's first page has mounted. The app's CSP forbids eval,
  so ``page.wait_for_function`` fails there: wait on selectors; ``page.evaluate`` is not affected.

A missing chromium or Playwright fails these tests with the package to install: they are part of the
default suite, and a browser test skipped for want of a browser would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from webharness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    KEY,
    SCREENSHOTS,
    SERVED_ORIGINS,
    TIMEOUT_MS,
    Served,
    allowed,
    safe_name,
    save_requests,
    start_server,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for name in ("browser", "server", "model"):
                item.add_marker(getattr(pytest.mark, name))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[Served]:
    with start_server(tmp_path_factory.mktemp("web") / "data", real_embedder) as served:
        yield served


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[Served]:
    with start_server(tmp_path_factory.mktemp("web-keyed") / "data", real_embedder, keys=KEY) as served:
        yield served


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while
# it is started, so every later test that calls asyncio.run() (the server and pipeline tests) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright for Python: pip install -c constraints.txt playwright "
                    "(its pip package carries the driver; no browser download is needed or wanted)")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}"
                    f"{f' (found one at {found}: set LOCALRAG_CHROMIUM)' if found else ''}: "
                    "apt-get install chromium (scripts/setup.sh installs it when run as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def requests_seen() -> list[str]:
    """Every URL the test's pages requested (HTTP and WebSocket), in order."""
    return []


@pytest.fixture
def page(browser: Any, requests_seen: list[str], request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    context.on("request", lambda r: requests_seen.append(r.url))
    context.on("page", lambda p: _watch(p, requests_seen, errors))
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
        save_requests(request.node.name, requests_seen)
    stray = [url for url in requests_seen if not allowed(url)]
    assert not stray, f"the page made requests to other hosts than the test server {sorted(SERVED_ORIGINS)}: {stray}"
    assert not errors, f"uncaught JavaScript errors in the page: {errors}"


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    def save(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{safe_name(name)}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        assert path.stat().st_size > 0
        return path

    return save


def _watch(page: Any, seen: list[str], errors: list[str]) -> None:
    page.on("websocket", lambda ws: seen.append(ws.url))
    page.on("pageerror", lambda e: errors.append(str(e)))


