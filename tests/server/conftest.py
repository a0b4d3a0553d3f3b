"""Fixtures for the HTTP server tests: data directories, engines and a running server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
sys.path.insert(0, str(Path(__file__).parent))

from rag_serving import BEES, KEY, OTHER_KEY, TIDES, extractive_settings, running_server

from localrag.engine import LocalRAG


@pytest.fixture
def secured(tmp_path: Path, fake_embedder) -> Iterator[tuple[str, LocalRAG]]:  # type: ignore[no-untyped-def]
    """A server with two keys, small body/upload limits, CORS for one origin and the JSON request log."""
    settings = extractive_settings(api_keys=f"{KEY},{OTHER_KEY}", max_body_mb=0.01, max_upload_mb=0.02,
                                   cors_origins="http://ui.example", json_log=True)
    rag = LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder)
    rag.add([BEES, TIDES])
    with running_server(tmp_path / "data", rag=rag) as url:
        yield url, rag
    rag.close()
