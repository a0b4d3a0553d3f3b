"""The two-lane ingest pipeline (embedding beside the writer): order, acknowledgement and failures.

Real SQLite, FAISS and BM25 with the fake embedder; groups made small so one ingest spans many of them
and the embedding lane really runs ahead of the writer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import HashingEmbedder

from localrag.config import load_settings
from localrag.engine import LocalRAG
from localrag.events import Event
from localrag.ingest import pipeline
from localrag.types import Document


def docs(n: int, prefix: str = "d", words: int = 30) -> list[Document]:
    return [Document(f"{prefix}{i}", " ".join(f"w{i}x{j}" for j in range(words)) + ".", title=f"T{i}")
            for i in range(n)]


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_MAX_BATCH_CHUNKS", 3)


def open_rag(path: Path, embedder: Any, batch_documents: int = 2) -> LocalRAG:
    settings = load_settings(path).with_overrides({"ingest": {"batch_documents": batch_documents}})
    return LocalRAG(path, embedder=embedder, settings=settings)


def lane_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("localrag-embed")]


class FailingEmbedder(HashingEmbedder):
    """Fails on its ``fail_on``-th call to embed_documents."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on = fail_on

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.calls + 1 == self.fail_on:
            self.calls += 1
            raise RuntimeError("embedder broke")
        return super().embed_documents(texts)


def test_acknowledged_in_input_order_and_stored_when_acknowledged(tmp_path: Path, small_groups: None) -> None:
    with open_rag(tmp_path / "data", HashingEmbedder()) as rag:
        acked: list[str] = []
        stored_at_ack: list[bool] = []

        def listener(event: Event) -> None:
            if event.kind == "ingest":
                acked.append(str(event.doc_id))
                stored_at_ack.append(str(event.doc_id) in rag.store.content_hashes("", [str(event.doc_id)]))

        rag.events.subscribe(listener)
        report = rag.add(docs(17))
        assert acked == [f"d{i}" for i in range(17)]
        assert all(stored_at_ack)
        assert sorted(report.added) == sorted(acked)
        assert report.chunks_added == rag.stats()["chunks"]
        profile = rag._pipeline.last_profile if rag._pipeline else None
        assert profile is not None and profile.chunks_embedded == report.chunks_added
        assert profile.stages["embedding"] > 0
        hits = rag.search("w5x3 w5x4", k=1, mode="keyword")
        assert hits and hits[0].doc_id == "d5"
    assert not lane_threads()


def test_a_document_repeated_while_in_flight_is_an_update(tmp_path: Path, small_groups: None) -> None:
    first = docs(3)
    again = Document("d0", "a new text for the first document, changed.", title="T0")
    with open_rag(tmp_path / "data", HashingEmbedder()) as rag:
        report = rag.add([*first, docs(1, prefix="e")[0], again])  # d0 again in the next batch
        assert report.updated == ("d0",)
        assert set(report.added) == {"d1", "d2", "e0"}
        assert rag.get_document("d0").text == again.text
        assert rag.stats()["documents"] == 4


def test_a_failed_commit_stops_the_ingest_and_later_groups_stay_out(
    tmp_path: Path, small_groups: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_rag(tmp_path / "data", HashingEmbedder()) as rag:
        calls = {"n": 0}
        apply = rag._apply

        def failing_apply(*args: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("index update failed")
            apply(*args)

        monkeypatch.setattr(rag, "_apply", failing_apply)
        acked: list[str] = []
        rag.events.subscribe(lambda e: acked.append(str(e.doc_id)) if e.kind == "ingest" else None)
        with pytest.raises(RuntimeError, match="index update failed"):
            rag.add(docs(20))
        assert acked, "the groups before the failure were acknowledged"
        stored = rag.store.content_hashes("", [f"d{i}" for i in range(20)])
        # The third group is committed to SQLite (its index update failed after); nothing after it was written.
        assert set(acked) < set(stored)
        assert len(stored) < 20
        assert not lane_threads()


def test_an_embedding_failure_reaches_the_caller(tmp_path: Path, small_groups: None) -> None:
    with open_rag(tmp_path / "data", FailingEmbedder(fail_on=2)) as rag:
        with pytest.raises(RuntimeError, match="embedder broke"):
            rag.add(docs(12))
        written = rag.store.content_hashes("", [f"d{i}" for i in range(12)])
        assert 0 < len(written) < 12
    assert not lane_threads()


def test_progress_counts_every_document_once(tmp_path: Path, small_groups: None) -> None:
    with open_rag(tmp_path / "data", HashingEmbedder()) as rag:
        seen: list[dict[str, Any]] = []
        rag.events.subscribe(lambda e: seen.append(dict(e.data)) if e.kind == "progress" else None)
        rag.add(docs(11))
        done = [p["docs_done"] for p in seen]
        assert done == sorted(done) and done[-1] == 11
        assert seen[-1]["chunks"] == rag.stats()["chunks"]


def test_texts_are_embedded_sorted_by_length_within_a_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "_MAX_BATCH_CHUNKS", 100)
    batches: list[list[int]] = []

    class Recording(HashingEmbedder):
        def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
            batches.append([len(t) for t in texts])
            return super().embed_documents(texts)

    mixed = [Document(f"m{i}", " ".join(["word"] * (5 + (i * 37) % 60)) + ".") for i in range(20)]
    with open_rag(tmp_path / "data", Recording(), batch_documents=64) as rag:
        rag.events.subscribe(lambda e: None)  # with a listener the lane embeds in slices of the batch size
        rag.add(mixed)
    lengths = [n for batch in batches for n in batch]
    assert len(lengths) == 20 and lengths == sorted(lengths)
