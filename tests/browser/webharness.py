"""Helpers of the browser tests (tests/browser/conftest.py has the fixtures): servers, allowed origins."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from threaded_server import app_in_thread

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.server import create_app
from localrag.server.app import render_error
from localrag.server.connections import uvicorn_options

KEY = "browser-test-key-0123456789"  # keys must be 16 characters or more
CHROMIUM = os.environ.get("LOCALRAG_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("LOCALRAG_SCREENSHOTS") or Path(__file__).parent / "screenshots")
# the answers of a 135M model on one thread of a busy 2-core machine can take a while
TIMEOUT_MS = 120_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
                 "--no-default-browser-check", "--disable-domain-reliability",
                 # a name other than localhost resolves to nothing, so a stray request cannot leave
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]

# origins of the servers the tests started: the only places a page may talk to
SERVED_ORIGINS: set[str] = set()
LOCAL_SCHEMES = ("data:", "blob:", "about:")


@dataclass(frozen=True)
class Served:
    url: str
    rag: LocalRAG
    data: Path
    key: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def web_settings(keys: str = "", **overrides: dict[str, Any]) -> Settings:
    """What the browser tests serve with: real models, one thread each, short answers."""
    base: dict[str, dict[str, Any]] = {
        "embed": {"threads": 1},
        "generate": {"model": "smollm2-135m", "threads": 1, "providers": "llamacpp", "max_tokens": 48},
        "answer": {"k": 3},
        "server": {"api_keys": keys, "metrics_flush_s": 0},
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return Settings().with_overrides(base)


@contextmanager
def start_server(data: Path, embedder: Any, keys: str = "", **overrides: dict[str, Any]) -> Iterator[Served]:
    """A real server over ``data`` as ``localrag serve`` runs it (its connection limits included)."""
    settings = web_settings(keys, **overrides)
    rag = LocalRAG(data, settings=settings, embedder=embedder)
    app = create_app(data, rag=rag)
    try:
        with app_in_thread(app, **uvicorn_options(settings.server, render_error)) as url:
            served_origin = origin(url)
            SERVED_ORIGINS.add(served_origin)
            try:
                yield Served(url, rag, data, keys)
            finally:
                SERVED_ORIGINS.discard(served_origin)
    finally:
        rag.close()


def wait_ready(page: Any) -> None:
    """Until the app's first page has mounted. (The app's CSP forbids eval, which page.wait_for_function
    needs: wait on selectors, or read values with page.evaluate, which the CSP does not cover.)"""
    page.wait_for_selector("body[data-ready]", state="attached")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def allowed(url: str) -> bool:
    if url.startswith(LOCAL_SCHEMES):
        return True
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}" in SERVED_ORIGINS


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "page"


def save_requests(test: str, seen: list[str]) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{safe_name(test)}.requests.txt").write_text("\n".join(seen) + "\n", encoding="utf-8")
