"""Fixtures for the Pinecone layer (skipped as a whole when the server or SDK extras are missing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("pinecone")
pytest.importorskip("uvicorn")

from serving import running_server, sdk_client


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("served")) as url:
        yield url


@pytest.fixture
def sdk(server_url: str) -> Any:
    return sdk_client(server_url)
