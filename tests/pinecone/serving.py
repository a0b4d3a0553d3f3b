"""Helpers for the Pinecone tests: a real uvicorn server on 127.0.0.1, official-SDK clients on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pinecone
from threaded_server import app_in_thread, free_port  # noqa: F401  (free_port: re-exported)

from localrag.pinecone.server import create_app


@contextmanager
def running_server(data_dir: Path, api_keys: Sequence[str] = ()) -> Iterator[str]:
    """``localrag serve``'s app in a thread; yields its base URL."""
    with app_in_thread(create_app(data_dir, api_keys)) as url:
        yield url


def sdk_client(url: str, api_key: str = "test-key", **kwargs: Any) -> Any:
    # No retries: a refused request should surface at once, and nothing here is flaky by design.
    from pinecone import RetryConfig

    return pinecone.Pinecone(api_key=api_key, host=url, retry_config=RetryConfig(max_retries=0), **kwargs)
