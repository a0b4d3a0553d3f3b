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

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).parent / "data"


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


def sample_texts(n: int) -> list[str]:
    """Built sentences for real embeddings: the same text on every machine, nothing read from outside."""
    import random

    rng = random.Random(0)
    subjects = [
        "the enzyme",
        "a protein",
        "the vaccine",
        "this gene",
        "the patient cohort",
        "a bacterium",
        "the cell line",
    ]
    verbs = ["inhibits", "activates", "reduces", "increases", "binds", "regulates", "predicts"]
    objects = ["tumour growth", "insulin release", "blood pressure", "immune response", "bone density", "viral load"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} in study {i}" for i in range(n)]


def scifact_cases(n: int = 4) -> list[tuple[str, str, list[str]]]:
    """(claim, its relevant abstract, three abstracts no test claim is judged against): ten SciFact
    test-split cases shipped in tests/data (see its README for the licence and how they were drawn)."""
    import json

    rows = [json.loads(line) for line in (TEST_DATA / "scifact_cases.jsonl").read_text(encoding="utf-8").splitlines()]
    assert n <= len(rows), f"tests/data ships {len(rows)} SciFact cases, {n} asked for"
    return [(row["claim"], row["relevant"], list(row["unjudged"])) for row in rows[:n]]
