"""Helpers for the Pinecone tests: a real uvicorn server on 127.0.0.1, official-SDK clients on it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pinecone
import uvicorn

from localrag.pinecone.server import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(data_dir: Path, api_keys: Sequence[str] = ()) -> Iterator[str]:
    """``localrag serve``'s app in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(data_dir, api_keys), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def sdk_client(url: str, api_key: str = "test-key", **kwargs: Any) -> Any:
    # No retries: a refused request should surface at once, and nothing here is flaky by design.
    from pinecone import RetryConfig

    return pinecone.Pinecone(api_key=api_key, host=url, retry_config=RetryConfig(max_retries=0), **kwargs)
