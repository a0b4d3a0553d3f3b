"""The reranker seam in the engine, the shared ordering helper, and feedback storage (fake embedder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fakes import HashingEmbedder

from localrag.cli import main
from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.errors import ConfigError, InvalidInputError, NotFoundError
from localrag.rerank.base import ScoringReranker, rank_hits
from localrag.rerank.build import collect_groups
from localrag.types import Document, Hit, SearchRequest

ANIMALS = ["zebra", "lion", "otter", "heron", "badger", "falcon"]


def corpus() -> list[Document]:
    return [
        Document(f"a{i}", f"Field notes on the {name}: where the {name} lives and what the {name} eats. " * 2,
                 title=f"The {name}")
        for i, name in enumerate(ANIMALS)
    ]


class WordReranker(ScoringReranker):
    """Scores a passage by how often it says ``word``; records what it was asked to score."""

    def __init__(self, word: str, blend: float = 0.0) -> None:
        super().__init__(blend)
        self.word = word
        self.seen: list[int] = []

    def score_pairs(self, query: str, passages: Sequence[str]) -> np.ndarray:
        self.seen.append(len(passages))
        return np.array([p.lower().count(self.word) for p in passages], dtype=np.float32)


@pytest.fixture
def rag_with(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[LocalRAG] = []

    def make(reranker: WordReranker | None, **rerank: object) -> LocalRAG:
        settings = Settings().with_overrides({"rerank": {"model": "none", **rerank}})
        rag = LocalRAG(tmp_path / f"d{len(made)}", embedder=HashingEmbedder(), reranker=reranker, settings=settings)
        rag.add(corpus())
        made.append(rag)
        return rag

    yield make
    for rag in made:
        rag.close()


def test_rerank_true_reorders_and_false_keeps_first_stage(rag_with) -> None:  # type: ignore[no-untyped-def]
    reranker = WordReranker("otter")
    rag = rag_with(reranker)
    plain = rag.search("where does the zebra live", k=3, rerank=False)
    assert plain[0].doc_id == "a0" and all("rerank" not in h.scores for h in plain)
    assert reranker.seen == []
    reranked = rag.search("where does the zebra live", k=3, rerank=True, candidates=6)
    assert reranked[0].doc_id == "a2"  # the otter notes: the reranker's choice, not the search's
    assert reranker.seen == [6]  # k1 = candidates hits were scored, k came back
    assert len(reranked) == 3
    top = reranked[0]
    assert top.scores["rerank"] == top.score > 0 and "first_stage" in top.scores and "fused" in top.scores


def test_rerank_default_comes_from_settings_and_timings_record_it(rag_with) -> None:  # type: ignore[no-untyped-def]
    reranker = WordReranker("heron")
    rag = rag_with(reranker, enabled=True, candidates=5)
    result = rag.retrieve([SearchRequest("zebra food", k=2)])[0]
    assert result.hits[0].doc_id == "a3" and "rerank" in result.timings and reranker.seen == [5]
    off = rag.retrieve([SearchRequest("zebra food", k=2, rerank=False)])[0]
    assert "rerank" not in off.timings and off.hits[0].doc_id == "a0"


def test_hits_past_k1_follow_in_first_stage_order(rag_with) -> None:  # type: ignore[no-untyped-def]
    rag = rag_with(WordReranker("falcon"))
    first = rag.search("zebra", k=6, rerank=False)
    mixed = rag.search("zebra", k=6, rerank=True, candidates=2)
    assert [h.doc_id for h in mixed[2:]] == [h.doc_id for h in first[2:]]
    assert {h.doc_id for h in mixed[:2]} == {h.doc_id for h in first[:2]}


def test_rerank_true_without_a_reranker_is_a_config_error(rag_with) -> None:  # type: ignore[no-untyped-def]
    rag = rag_with(None)
    assert rag.search("zebra", k=2)  # the default (off) still searches
    with pytest.raises(ConfigError, match="no reranker"):
        rag.search("zebra", k=2, rerank=True)
    with pytest.raises(InvalidInputError, match="candidates"):
        LocalRAG.retrieve(rag_with(WordReranker("x")), [SearchRequest("zebra", rerank=True, candidates=0)])


def _hit(i: int, score: float) -> Hit:
    return Hit(chunk_id=i, doc_id=f"d{i}", text=f"text {i}", score=score)


def test_rank_hits_blend_mixes_first_stage_back_in() -> None:
    hits = [_hit(0, 1.0), _hit(1, 0.5), _hit(2, 0.0)]
    pure = rank_hits(hits, np.array([0.0, 0.4, 1.0]), 3)
    assert [h.chunk_id for h in pure] == [2, 1, 0]
    blended = rank_hits(hits, np.array([0.0, 0.4, 1.0]), 3, blend=0.7)
    assert [h.chunk_id for h in blended] == [0, 1, 2]  # the first stage dominates at 0.7
    assert blended[0].scores["rerank"] == 0.0 and blended[0].scores["first_stage"] == 1.0
    assert len(rank_hits(hits, np.zeros(3), 2)) == 2
    with pytest.raises(ConfigError):
        WordReranker("x", blend=1.5)


def test_feedback_round_trip_and_errors(rag_with) -> None:  # type: ignore[no-untyped-def]
    rag = rag_with(None)
    hits = rag.search("otter", k=2)
    rag.feedback("what do otters eat", hits[0].chunk_id, True)
    rag.feedback("what do otters eat", hits[1].chunk_id, relevant=False)
    items = rag.feedback_items()
    assert [(i["chunk_id"], i["relevant"], i["doc_id"]) for i in items] == [
        (hits[0].chunk_id, True, hits[0].doc_id), (hits[1].chunk_id, False, hits[1].doc_id)]
    assert items[0]["query"] == "what do otters eat" and items[0]["namespace"] == ""
    assert rag.feedback_items(namespace="other") == []
    with pytest.raises(NotFoundError, match="no chunk"):
        rag.feedback("q", 10_000, True)
    with pytest.raises(NotFoundError):
        rag.feedback("q", hits[0].chunk_id, True, namespace="other")
    with pytest.raises(InvalidInputError, match="query"):
        rag.feedback("  ", hits[0].chunk_id, True)


def test_feedback_survives_reopening_and_the_cli_records_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LocalRAG(tmp_path / "d", embedder=HashingEmbedder()) as rag:
        rag.add(corpus())
        chunk = rag.search("heron", k=1)[0].chunk_id
        rag.feedback("herons", chunk, True)
    with LocalRAG(tmp_path / "d", embedder=HashingEmbedder()) as rag:
        assert [i["chunk_id"] for i in rag.feedback_items()] == [chunk]
    assert main(["--data", str(tmp_path / "d"), "feedback", "heron diet", str(chunk), "--not-relevant"]) == 0
    assert "not relevant" in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "d"), "feedback", "heron diet", str(chunk), "--grade", "0.5"]) == 0
    assert "grade 0.5" in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "d"), "feedback", "heron diet", str(chunk), "--grade", "7"]) == 2
    assert "grade must be a number in [-1, 1]" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "d"), "feedback", "heron diet", "999999", "--relevant"]) == 2
    assert "no chunk 999999" in capsys.readouterr().err
    with LocalRAG(tmp_path / "d", embedder=HashingEmbedder()) as rag:
        assert [(i["query"], i["relevant"]) for i in rag.feedback_items()] == [
            ("herons", True), ("heron diet", False), ("heron diet", True)]


def test_train_reranker_reads_feedback(rag_with) -> None:  # type: ignore[no-untyped-def]
    rag = rag_with(None)
    hits = rag.search("badger", k=3)
    good, bad = hits[0], hits[1]
    rag.feedback("what does the badger eat", good.chunk_id, True)
    rag.feedback("what does the badger eat", bad.chunk_id, False)
    groups, described = collect_groups(rag, feedback=True, negatives=2)
    assert len(groups) == 1 and "2 judgments" in described
    group = groups[0]
    assert group.query == "what does the badger eat" and "badger" in group.positive and group.source == "feedback"
    assert group.negatives[0].endswith(bad.text)  # the judged-irrelevant chunk comes first
    assert all(not n.endswith(good.text) for n in group.negatives) and len(group.negatives) == 2
    with pytest.raises(InvalidInputError, match="nothing to train on"):
        collect_groups(rag_with(None), feedback=True)


def test_answers_rerank_once_through_the_engine_stage(rag_with) -> None:  # type: ignore[no-untyped-def]
    from localrag.generate.extractive import ExtractiveGenerator

    reranker = WordReranker("heron")
    rag = rag_with(reranker, enabled=True, candidates=5)
    rag._generator = ExtractiveGenerator()
    answer = rag.ask("zebra food", k=1)
    assert [h.doc_id for h in answer.hits] == ["a3"]  # the reranker's choice became the context
    assert reranker.seen == [5]  # k1 candidates scored once, not a second time by the answer pipeline
    assert answer.timings["rerank"] > 0.0 and answer.timings["retrieve"] >= 0.0
