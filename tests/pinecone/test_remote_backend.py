"""vector.backend = "pinecone": the pipeline's own engine tests, re-run with the dense side on a
Pinecone index reached through the official SDK (our server on 127.0.0.1 stands in for hosted Pinecone),
plus the VectorIndex contract of PineconeVectorIndex itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving import running_server, sdk_client
from suites import collect_pipeline_suites

from localrag.config import VectorSettings
from localrag.engine import LocalRAG
from localrag.errors import ConfigError
from localrag.pinecone.remote import PineconeVectorIndex, connect
from localrag.types import Document

pytestmark = pytest.mark.server
DIM = 64  # the fake embedder's

collect_pipeline_suites(globals(), "pinecone")


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our server as the hosted service; yields the host of a cosine index for the pipeline."""
    with running_server(tmp_path_factory.mktemp("hosted")) as url:
        pc = sdk_client(url)
        pc.create_index(name="rag", dimension=DIM, metric="cosine")
        pc.create_index(name="rag-l2", dimension=DIM, metric="euclidean")
        yield pc.describe_index("rag").host


@pytest.fixture(autouse=True)
def pinecone_backend(hosted: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Switching needs no code change: settings (here from the environment) pick the backend."""
    monkeypatch.setenv("PINECONE_API_KEY", "test-key")
    monkeypatch.setenv("LOCALRAG_VECTOR__BACKEND", "pinecone")
    monkeypatch.setenv("LOCALRAG_VECTOR__HOST", hosted)


def test_the_dense_side_really_is_on_pinecone(fake_rag: LocalRAG, hosted: str) -> None:
    fake_rag.add([Document("p1", "pinecone hosted vectors text", metadata={"topic": "x"}),
                  Document("p2", "another document entirely", metadata={"topic": "y"})])
    namespace = fake_rag.stats()["namespaces"][""]
    assert namespace["vector_index"] == "pinecone" and namespace["vectors"] == 2
    remote = sdk_client(hosted.rsplit("/data/", 1)[0]).Index(host=hosted)
    counts = remote.describe_index_stats().namespaces
    assert sum(ns.vector_count for ns in counts.values()) >= 2
    hits = fake_rag.search("pinecone hosted vectors", k=1, mode="dense", filter={"topic": "x"})
    assert hits[0].doc_id == "p1"
    assert fake_rag.search("pinecone hosted vectors", k=2, mode="dense", filter={"topic": "y"})[0].doc_id == "p2"


def _index(hosted: str) -> PineconeVectorIndex:
    settings = VectorSettings(backend="pinecone", host=hosted, namespace_prefix="contract-")
    return PineconeVectorIndex.create(settings, DIM, 7)


def test_vector_index_contract(hosted: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(50, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = np.arange(100, 150, dtype=np.int64)
    index = _index(hosted)
    index.add(keys, vectors)
    assert len(index) == 50 and np.array_equal(index.keys(), keys)
    exact = vectors @ vectors[0]
    hits = index.search(vectors[:1], 5)[0]
    assert [k for k, _ in hits] == (keys[np.argsort(-exact)[:5]]).tolist()
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    allow = keys[30:33]
    assert {k for k, _ in index.search(vectors[:1], 10, allow)[0]} == set(allow.tolist())  # exactly the allowed
    index.remove(keys[:10])
    assert len(index) == 40 and 100 not in {k for k, _ in index.search(vectors[:1], 50)[0]}
    index.save(tmp_path / "dense.npz", 17)
    again, stamp = PineconeVectorIndex.load(tmp_path / "dense.npz", VectorSettings(
        backend="pinecone", host=hosted, namespace_prefix="contract-"), 7)
    assert stamp == 17 and np.array_equal(again.keys(), index.keys())
    assert again.search(vectors[10:11], 1)[0][0][0] == 110
    fresh = _index(hosted)  # a rebuild starts from an empty remote namespace
    assert len(fresh) == 0 and fresh.search(vectors[:1], 3) == [[]]


def test_misconfiguration_is_a_clear_error(hosted: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINECONE_API_KEY")
    with pytest.raises(ConfigError, match="PINECONE_API_KEY"):
        connect(VectorSettings(backend="pinecone", host=hosted))
    monkeypatch.setenv("PINECONE_API_KEY", "k")
    with pytest.raises(ConfigError, match=r"vector\.host or vector\.index"):
        connect(VectorSettings(backend="pinecone"))
    euclidean = PineconeVectorIndex(connect(VectorSettings(host=hosted.replace("/rag", "/rag-l2"))), DIM, "x")
    with pytest.raises(ConfigError, match="euclidean"):
        euclidean.add(np.array([1]), np.ones((1, DIM), dtype=np.float32))
    wrong_dim = PineconeVectorIndex(connect(VectorSettings(host=hosted)), 8, "x")
    with pytest.raises(ConfigError, match="dimension"):
        wrong_dim.add(np.array([1]), np.ones((1, 8), dtype=np.float32))


def test_index_by_name_through_the_control_plane(hosted: str) -> Any:
    base = hosted.rsplit("/data/", 1)[0]
    client = connect(VectorSettings(backend="pinecone", index="rag", control_host=base))
    assert client.describe_index_stats().dimension == DIM
