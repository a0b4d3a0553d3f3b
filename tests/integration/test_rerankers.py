"""Rerankers with real models: the project's trained int8 cross-encoder, the LLM judge (SmolLM2,
one thread), truncation, and a tiny real training run through export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sample_data import scifact_cases

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.generate.gguf import resolve_gguf
from localrag.generate.llamacpp import LlamaCppGenerator
from localrag.rerank.base import ScoringReranker
from localrag.rerank.cross_encoder import OnnxCrossEncoder, load_cross_encoder
from localrag.rerank.factory import load_reranker, shipped_reranker_dir
from localrag.rerank.llm_judge import LlmJudge
from localrag.rerank.mining import TrainGroup, passage_text
from localrag.types import Document, Hit

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def trained() -> OnnxCrossEncoder:
    reranker = load_cross_encoder(shipped_reranker_dir(), threads=1)
    assert isinstance(reranker, OnnxCrossEncoder)
    return reranker


def test_trained_reranker_ranks_the_relevant_abstract_first(trained: OnnxCrossEncoder) -> None:
    # Not every claim: the model is small and SciFact claims are hard (measured 9 of 10 here).
    wins = [int(np.argmax(trained.score_pairs(claim, [*bad, good]))) == 3 for claim, good, bad in scifact_cases(10)]
    assert sum(wins) >= 8, wins


def test_the_default_trained_reranker_reorders_engine_hits(tmp_path: Path, trained: OnnxCrossEncoder) -> None:
    claim, good, bad = scifact_cases(1)[0]
    docs = [Document(f"d{i}", text) for i, text in enumerate([*bad, good])]
    settings = Settings().with_overrides({"embed": {"threads": 1},
                                          "rerank": {"model": "trained", "threads": 1, "blend": 0.0}})
    with LocalRAG(tmp_path / "data", settings=settings) as rag:
        rag.add(docs)
        first = rag.search(claim, k=4, rerank=False, candidates=4)
        scores = trained.score_pairs(claim, [passage_text(h) for h in first])
        hits = rag.search(claim, k=3, rerank=True, candidates=4)
    expected = [first[i].chunk_id for i in np.argsort(-scores, kind="stable")[:3]]
    assert [h.chunk_id for h in hits] == expected
    assert [h.scores["rerank"] for h in hits] == pytest.approx(sorted(scores, reverse=True)[:3], abs=1e-5)
    assert all("first_stage" in h.scores for h in hits)


def test_long_passages_are_cut_to_the_model_limit(trained: OnnxCrossEncoder) -> None:
    short = OnnxCrossEncoder(trained.path, threads=1, max_tokens=48)
    assert short.max_tokens == 48 and trained.max_tokens <= 512
    claim, good, _ = scifact_cases(1)[0]
    long = good * 20  # thousands of tokens
    scores = short.score_pairs(claim, [long, long + " unrelated words about bicycles" * 200])
    assert np.isfinite(scores).all() and abs(float(scores[0] - scores[1])) < 1e-5  # only the cut part counts
    batch = short._tokenizer.encode_pairs([(claim, long)])
    assert batch["input_ids"].shape[1] == 48 and batch["token_type_ids"][0, 1] == 0  # the query is kept


def test_llm_judge_scores_every_hit() -> None:
    path, _ = resolve_gguf("smollm2-135m")
    judge = LlmJudge(LlamaCppGenerator(path, threads=1), max_tokens=64)
    hits = [Hit(i, f"d{i}", text, 0.5 - i / 10, title="") for i, text in enumerate([
        "The Moon's gravity pulls the oceans and causes the tides.",
        "Sourdough bread rises because of wild yeast and bacteria." * 30,  # cut to 64 tokens
        "A bicycle chain moves power from the pedals to the rear wheel.",
    ])]
    ranked = judge.rerank("What causes the tides?", hits, 3)
    assert sorted(h.chunk_id for h in ranked) == [0, 1, 2]
    assert all(np.isfinite(h.scores["rerank"]) and h.score == h.scores["rerank"] for h in ranked)
    again = judge.score_pairs("What causes the tides?", [hits[0].text])  # the KV-cache prefix path
    assert again[0] == pytest.approx(next(h.scores["rerank"] for h in ranked if h.chunk_id == 0), abs=1e-3)


def test_llm_reranker_from_settings() -> None:
    settings = Settings().with_overrides({"generate": {"model": "smollm2-135m", "threads": 1},
                                          "rerank": {"model": "llm", "max_tokens": 64}})
    judge = load_reranker(settings)
    assert isinstance(judge, LlmJudge) and judge.max_tokens == 64
    assert load_reranker(Settings().with_overrides({"rerank": {"model": "none"}})) is None


@pytest.mark.slow
def test_a_tiny_training_run_exports_a_model_that_loads(tmp_path: Path) -> None:
    from localrag.rerank.build import base_model_folder
    from localrag.rerank.export import CONFIG_FILE, export_reranker
    from localrag.rerank.train import TrainSettings, train

    cases = scifact_cases(4)
    groups = [TrainGroup(claim, good, tuple(bad)) for claim, good, bad in cases]
    settings = TrainSettings(max_tokens=48, negatives=3, groups_per_step=2, threads=1)
    model, record = train(groups, base_model_folder(), settings)
    assert record["steps"] == 2 and record["pairs"] == 16
    pairs = [(g.query, p) for g in groups for p in (g.positive, *g.negatives)]
    config = export_reranker(model, base_model_folder(), tmp_path / "rr", pairs, max_tokens=48, record=record)
    assert config["export_check"]["int8"]["spearman"] >= 0.98
    assert json.loads((tmp_path / "rr" / CONFIG_FILE).read_text())["max_tokens"] == 48
    assert (tmp_path / "rr" / "MODEL_CARD.md").read_text().count("max_tokens") == 1
    loaded: ScoringReranker = load_cross_encoder(tmp_path / "rr", threads=1)
    assert loaded.score_pairs(cases[0][0], [cases[0][1], cases[0][2][0]]).shape == (2,)
