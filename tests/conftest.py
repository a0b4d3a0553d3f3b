"""Shared fixtures: offline environment, the network guard, a fake embedder for unit tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import netguard

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
netguard.install()



@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Fail a test that tried to reach a non-loopback address, even if it swallowed the error."""
    before = len(netguard.violations)
    yield
    new = netguard.violations[before:]
    assert not new, f"test opened non-loopback sockets: {new}"


@pytest.fixture
def fake_embedder():  # type: ignore[no-untyped-def]
    from fakes import HashingEmbedder

    return HashingEmbedder()


@pytest.fixture
def fake_rag(tmp_path: Path, fake_embedder):  # type: ignore[no-untyped-def]
    """A LocalRAG on a real SQLite file and real FAISS/BM25, with the fake embedder (unit tests only)."""
    from localrag.engine import LocalRAG

    rag = LocalRAG(tmp_path / "data", embedder=fake_embedder)
    yield rag
    rag.close()


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The default embedder from its model package, loaded once per test session."""
    from localrag.config import Settings
    from localrag.embed.factory import load_embedder

    embed = Settings().embed
    return load_embedder(embed.model, threads=1, batch_size=embed.batch_size, max_tokens=embed.max_tokens)
