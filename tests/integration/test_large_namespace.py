"""A namespace past ``exact_threshold`` through the engine: IVF-PQ codes with the exact rerank read
from the SQLite store, persisted and reopened without a rebuild, caught up after deletes, rebuilt
from the store when its files are gone. Real SQLite, FAISS and BM25; fake embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import HashingEmbedder

from localrag.config import IndexSettings, Settings
from localrag.engine import LocalRAG
from localrag.index.faiss_index import FaissIndex
from localrag.index.manager import IndexManager
from localrag.types import Document, SearchRequest

N = 700
SETTINGS = Settings(index=IndexSettings(exact_threshold=300))


def text(i: int) -> str:
    return f"Entry {i} carries the codeword qz{i}k and talks of topic {i % 13} and area {i % 7}."


def open_rag(path: Path) -> LocalRAG:
    return LocalRAG(path, settings=SETTINGS, embedder=HashingEmbedder())


def top(rag: LocalRAG, query: str, mode: str, k: int = 5) -> list[str]:
    hits = rag.retrieve([SearchRequest(query, k, mode)])[0].hits  # type: ignore[arg-type]
    return [h.doc_id for h in hits]


def dense_kind(rag: LocalRAG) -> str:
    ns_id = rag.store.namespace_id("")
    assert ns_id is not None
    space = rag.indexes.get(ns_id)
    assert space is not None
    return str(space.dense.kind)


def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of FAISS builds from now on (each FaissIndex.build call appends its key count)."""
    built: list[int] = []
    real_build = FaissIndex.build.__func__  # type: ignore[attr-defined]

    def counting_build(cls: type[FaissIndex], keys, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(len(keys))
        return real_build(cls, keys, *args, **kwargs)

    monkeypatch.setattr(FaissIndex, "build", classmethod(counting_build))
    return built


@pytest.fixture
def data(tmp_path: Path) -> Path:
    with open_rag(tmp_path / "d") as rag:
        for start in range(0, N, 100):  # incremental batches cross the threshold
            rag.add([Document(f"doc-{i}", text(i)) for i in range(start, start + 100)])
        assert dense_kind(rag) == "ivf"
    return tmp_path / "d"


def test_search_reopen_without_rebuild_and_delete(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("the saved indexes should have been loaded, not rebuilt")

    monkeypatch.setattr(IndexManager, "_rebuild", no_rebuild)
    with open_rag(data) as rag:
        assert dense_kind(rag) == "ivf"
        for i in (0, 299, 450, 699):
            assert top(rag, text(i), "dense")[0] == f"doc-{i}"
            assert top(rag, f"qz{i}k", "keyword")[0] == f"doc-{i}"
            assert top(rag, text(i), "hybrid")[0] == f"doc-{i}"
        hits = rag.retrieve([SearchRequest(text(5), 3, "dense")])[0].hits
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)  # the exact cosine, reranked from the store
        assert rag.delete(doc_ids=["doc-450"]) == 1
        assert "doc-450" not in top(rag, text(450), "dense", 20)
    with open_rag(data) as rag:
        assert "doc-450" not in top(rag, text(450), "dense", 20)
        assert "doc-450" not in top(rag, "qz450k", "keyword")
        assert top(rag, text(451), "dense")[0] == "doc-451"


def test_lost_index_files_are_rebuilt_from_the_store_at_the_final_kind(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in (data / "indexes").rglob("*.npz"):
        path.unlink()
    built = count_builds(monkeypatch)
    with open_rag(data) as rag:
        assert built == [N] and dense_kind(rag) == "ivf"
        for i in (1, 350, 698):
            assert top(rag, text(i), "hybrid")[0] == f"doc-{i}"
        rag.reindex()
        assert built == [N, N] and dense_kind(rag) == "ivf"
        assert top(rag, f"qz{698}k", "keyword")[0] == "doc-698"


def test_reindex_after_writes_through_the_store_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk path: precomputed vectors written with the store's write_documents, then one reindex."""
    from localrag.store.sqlite import PreparedDocument
    from localrag.types import Chunk

    built = count_builds(monkeypatch)
    embedder = HashingEmbedder()
    with open_rag(tmp_path / "d") as rag:
        items = [PreparedDocument(Document(f"doc-{i}", text(i)), f"h{i}", [Chunk(text(i), 0, len(text(i)), 0)],
                                  embedder.embed_documents([text(i)])) for i in range(N)]
        rag.store.write_documents("", items, embedder.dim)
        built.clear()
        rag.reindex()
        assert built == [N] and dense_kind(rag) == "ivf"  # one build, not a catch-up and a rebuild
        assert top(rag, text(650), "hybrid")[0] == "doc-650"
