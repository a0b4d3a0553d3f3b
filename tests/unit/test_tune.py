"""tune on a small BEIR-shaped dataset: real SQLite, FAISS and BM25, a deliberately weak fake embedder.

The fake embedder hashes words into 4 dimensions, so its dense side is close to noise while the
queries share distinctive words with their documents: the default equal-weight fusion is then
measurably wrong for this data, and there is something real for tune to learn.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import HashingEmbedder

from localrag.engine import LocalRAG
from localrag.eval.runner import eval_namespace, evaluate
from localrag.eval.tune import (
    Candidates,
    Grid,
    TunePoint,
    engine_scores,
    judged_from_feedback,
    judged_split,
    save_tuned,
    tune_dataset,
)

GRID = Grid(rrf_k=(10, 60), alpha=(0.2, 0.5), candidates=(100, 300), bm25_k1=(0.9, 1.5), bm25_b=(0.5, 0.75),
            rerank_candidates=(20,))


def make_dataset(root: Path, docs: int = 80, seed: int = 0) -> Path:
    """Documents of common words plus a few distinctive ones; two queries per document (train, test)."""
    rng = random.Random(seed)
    common = [f"common{i}" for i in range(120)]
    corpus, queries, qrels = [], [], {"train": [], "test": []}
    for d in range(docs):
        keys = [f"key{d}x{j}" for j in range(6)]
        words = rng.sample(common, 40) + keys + rng.sample(keys, 3)
        rng.shuffle(words)
        corpus.append({"_id": f"d{d}", "title": "", "text": " ".join(words)})
        for split, part in (("train", keys[:3]), ("test", keys[3:])):
            qid = f"{split}{d}"
            queries.append({"_id": qid, "text": " ".join([*part[:2], *rng.sample(common, 6)])})
            qrels[split].append((qid, f"d{d}"))
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n")
    (root / "qrels").mkdir()
    for split, rows in qrels.items():
        lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, d in rows)]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "synth")


@pytest.fixture
def rag(tmp_path: Path) -> Iterator[LocalRAG]:
    engine = LocalRAG(tmp_path / "data", embedder=HashingEmbedder(dim=4))
    yield engine
    engine.close()


def test_emulated_scores_equal_the_engine_path(rag: LocalRAG, dataset: Path) -> None:
    tune_dataset(rag, dataset, split="train", test_split=None, grid=GRID)  # ingests the corpus
    judged = judged_split(dataset, "test")
    namespace = "eval:synth"
    lists = Candidates(rag, namespace, judged.queries, 300)
    for point in (TunePoint(), TunePoint(fusion="weighted", alpha=0.2, candidates=300)):
        assert lists.scores(point, judged) == pytest.approx(engine_scores(rag, judged, namespace, point))


def test_tune_stores_settings_that_reload_and_score_as_reported(
    rag: LocalRAG, dataset: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "localrag.toml").write_text('[generate]\nthreads = 1\n\n[search]\nrrf_k = 60\n')
    result, report = tune_dataset(rag, dataset, split="train", grid=GRID)
    assert result.best_score >= result.base_score
    assert report["best_ndcg@10"] > report["base_ndcg@10"], "the weak dense side should be down-weighted"
    save_tuned(data, result.best, rag.settings, report)
    rag.close()

    reopened = LocalRAG(data, embedder=HashingEmbedder(dim=4))
    try:
        s = reopened.settings
        assert (s.search.fusion, s.search.alpha, s.search.rrf_k, s.search.candidates) == (
            result.best.fusion, result.best.alpha, result.best.rrf_k, result.best.candidates)
        assert (s.bm25.k1, s.bm25.b) == (result.best.bm25_k1, result.best.bm25_b)
        assert s.generate.threads == 1  # other settings in the file survive
        ns_id = reopened.store.namespace_id(eval_namespace(judged_dataset_name(dataset)))
        assert ns_id is not None
        space = reopened.indexes.get(ns_id)
        assert space is not None and (space.keyword.k1, space.keyword.b) == (s.bm25.k1, s.bm25.b)
        measured = evaluate(reopened, dataset, split="train", modes=["hybrid"])["modes"]["hybrid"]["ndcg@10"]
        assert measured == pytest.approx(report["best_ndcg@10"], abs=1e-4)
        assert json.loads((data / "tuned.json").read_text())["best"]["fusion"] == result.best.fusion
    finally:
        reopened.close()


def judged_dataset_name(root: Path) -> object:
    from localrag.eval.beir import load_beir

    return load_beir(root, "train")


def test_feedback_from_train_qrels_raises_test_ndcg(rag: LocalRAG, dataset: Path, tmp_path: Path) -> None:
    """Judgments stored through rag.feedback, drawn from the train qrels only; the test split is disjoint."""
    train = judged_split(dataset, "train")
    tune_dataset(rag, dataset, split="train", test_split=None, grid=GRID)  # ingest
    namespace = "eval:synth"
    ns_id = rag.store.namespace_id(namespace)
    assert ns_id is not None
    doc_ids, _, chunk_keys, chunk_doc = rag.store.filter_table(ns_id)
    chunk_of = {doc_ids[int(p)]: int(k) for k, p in zip(chunk_keys, chunk_doc, strict=True)}
    for qid, text in train.queries.items():
        for doc in train.qrels[qid]:
            rag.feedback(text, chunk_of[doc], True, namespace=namespace)
    judged = judged_from_feedback(rag.feedback_items(namespace))
    assert len(judged.queries) == len(train.queries)
    before = evaluate(rag, dataset, split="test", modes=["hybrid"])["modes"]["hybrid"]["ndcg@10"]
    result, report = tune_dataset(rag, dataset, split="train", judged=judged, grid=GRID)
    save_tuned(tmp_path / "data", result.best, rag.settings, report)
    rag.close()
    with LocalRAG(tmp_path / "data", embedder=HashingEmbedder(dim=4)) as tuned:
        after = evaluate(tuned, dataset, split="test", modes=["hybrid"])["modes"]["hybrid"]["ndcg@10"]
    print(f"feedback tune: test nDCG@10 {before:.4f} -> {after:.4f}")
    assert report["test"]["delta"] > 0
    assert after > before + 0.01
    assert after == pytest.approx(report["test"]["tuned_ndcg@10"], abs=1e-4)


def test_tune_keeps_the_defaults_when_nothing_beats_them(rag: LocalRAG, dataset: Path) -> None:
    result, _ = tune_dataset(rag, dataset, split="train", test_split=None, grid=GRID, min_gain=1.0)
    assert result.best == TunePoint.from_settings(rag.settings)


def test_tune_without_judgments_is_refused(rag: LocalRAG, dataset: Path) -> None:
    from localrag.errors import InvalidInputError
    from localrag.eval.tune import Judged, tune

    with pytest.raises(InvalidInputError, match="judged query"):
        tune(rag, Judged({}, {}), "eval:synth")
