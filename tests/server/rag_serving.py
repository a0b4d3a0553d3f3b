"""Helpers for the HTTP server tests: a real uvicorn server on 127.0.0.1 (in a thread), keys, documents."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from threaded_server import app_in_thread

from localrag.config import Settings
from localrag.server import create_app
from localrag.server.app import render_error
from localrag.server.connections import uvicorn_options
from localrag.types import Document


@contextmanager
def running_server(data_dir: Path, api_keys: Sequence[str] = (), *, guarded: bool = False,
                   **kwargs: Any) -> Iterator[str]:
    """Yields the base URL; ``kwargs`` go to ``create_app`` (settings, rag). ``guarded``: with the
    connection limits of ``server`` settings (timeouts, connections per address), as ``serve`` runs."""
    app = create_app(data_dir, api_keys, **kwargs)
    options: dict[str, Any] = {}
    if guarded:
        settings = kwargs.get("settings") or kwargs["rag"].settings
        options = uvicorn_options(settings.server, render_error)
    with app_in_thread(app, **options) as url:
        yield url


KEY = "test-key-1-abcdefghij"  # keys must be 16 characters or more
OTHER_KEY = "test-key-2-abcdefghij"

BEES = Document("bees", "Honeybees tell each other where flowers are with the waggle dance. The angle of the "
                "dance shows the direction relative to the sun.", title="Honeybees", metadata={"topic": "bees"})
TIDES = Document("tides", "Tides rise and fall twice a day because the moon pulls on the oceans.", title="Tides",
                 metadata={"topic": "sea"})


def extractive_settings(**server: object) -> Settings:
    """No LLM: the extractive provider (a real component) answers, so these tests stay fast."""
    return Settings().with_overrides({"generate": {"providers": "extractive"}, "server": dict(server)})
