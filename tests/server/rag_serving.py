"""Helpers for the HTTP server tests: a real uvicorn server on 127.0.0.1 (in a thread), keys, documents."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from localrag.config import Settings
from localrag.server import create_app
from localrag.types import Document


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(data_dir: Path, api_keys: Sequence[str] = (), **kwargs: Any) -> Iterator[str]:
    """Yields the base URL; ``kwargs`` go to ``create_app`` (settings, rag)."""
    port = free_port()
    app = create_app(data_dir, api_keys, **kwargs)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


KEY = "test-key-1"
OTHER_KEY = "test-key-2"

BEES = Document("bees", "Honeybees tell each other where flowers are with the waggle dance. The angle of the "
                "dance shows the direction relative to the sun.", title="Honeybees", metadata={"topic": "bees"})
TIDES = Document("tides", "Tides rise and fall twice a day because the moon pulls on the oceans.", title="Tides",
                 metadata={"topic": "sea"})


def extractive_settings(**server: object) -> Settings:
    """No LLM: the extractive provider (a real component) answers, so these tests stay fast."""
    return Settings().with_overrides({"generate": {"providers": "extractive"}, "server": dict(server)})
