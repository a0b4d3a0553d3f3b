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
SHARED_DATA = REPO.parent / "shared" / "data"


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
    """Real text for real embeddings: SciFact abstracts when ../shared is beside the repo, else built sentences."""
    import json
    import random

    corpus = SHARED_DATA / "scifact" / "corpus.jsonl"
    if corpus.is_file():
        texts = []
        with corpus.open(encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                texts.append(f"{record['title']}. {record['text']}"[:300])
                if len(texts) == n:
                    return texts
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
    """(claim, its relevant abstract, three abstracts no test claim is judged against) from the test
    split; the irrelevant ones are drawn with a fixed seed."""
    import json
    import random

    scifact = SHARED_DATA / "scifact"
    corpus = {}
    with (scifact / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            corpus[record["_id"]] = f"{record['title']}\n{record['text']}"
    queries = {}
    with (scifact / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            queries[record["_id"]] = record["text"]
    rows = [line.split("\t") for line in (scifact / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    relevant: dict[str, str] = {}
    for qid, doc, _ in rows:
        relevant.setdefault(qid, doc)
    rng = random.Random(0)
    unjudged = sorted(set(corpus) - {doc for _, doc, _ in rows})
    return [(queries[q], corpus[relevant[q]], [corpus[d] for d in rng.sample(unjudged, 3)])
            for q in sorted(relevant)[:n]]
