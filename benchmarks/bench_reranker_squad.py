"""The cross-domain part of bench_reranker.py: SQuAD paragraphs, articles split in two halves."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from bench_reranker import SHARED, first_stage, open_rag

from localrag.eval.beir import BeirDataset, load_beir
from localrag.eval.runner import eval_namespace, ingest_dataset
from localrag.rerank.base import ScoringReranker, rank_hits
from localrag.rerank.cross_encoder import load_cross_encoder
from localrag.rerank.export import export_reranker
from localrag.rerank.mining import groups_from_qrels, passage_text
from localrag.rerank.train import TrainSettings, train

K1 = 20
BLENDS = (0.0, 0.5, 0.6)


def _article(doc_id: str) -> int:
    return int(doc_id.split("_", 1)[0])


def _recall(hits: list[Any], gold: str) -> tuple[float, float]:
    docs = [h.doc_id for h in hits]
    return float(gold in docs[:1]), float(gold in docs[:5])


def _scores(queries: list[str], hits: list[list[Any]], reranker: ScoringReranker) -> list[Any]:
    return [reranker.score_pairs(q, [passage_text(h) for h in hs[:K1]]) for q, hs in zip(queries, hits, strict=True)]


def _evaluate(
    golds: list[str], hits: list[list[Any]], scores: list[Any] | None, blend: float = 0.0
) -> dict[str, float]:
    r1 = r5 = 0.0
    for i, (gold, hs) in enumerate(zip(golds, hits, strict=True)):
        ranked = hs if scores is None else rank_hits(hs[:K1], scores[i], K1, blend) + hs[K1:]
        a, b = _recall(ranked, gold)
        r1, r5 = r1 + a, r5 + b
    n = max(1, len(golds))
    return {"recall@1": round(r1 / n, 4), "recall@5": round(r5 / n, 4)}


def squad(args: argparse.Namespace, scifact_reranker: ScoringReranker) -> dict[str, Any]:
    root = SHARED / "squad-v1.1-dev"
    data = load_beir(root, "test")
    articles = sorted({_article(d) for judged in data.qrels.values() for d in judged})
    first_half = set(articles[: len(articles) // 2])
    gold = {q: next(iter(judged)) for q, judged in data.qrels.items()}
    train_ids = sorted(q for q in data.queries if _article(gold[q]) in first_half)
    test_ids = sorted(q for q in data.queries if _article(gold[q]) not in first_half)
    rng = random.Random(13)
    test_ids = sorted(rng.sample(test_ids, min(args.squad_questions, len(test_ids))))
    train_ids = sorted(rng.sample(train_ids, min(args.squad_groups, len(train_ids))))
    # The same recipe as the reranker under test (its reranker.json), on the SQuAD half.
    shipped = json.loads((Path(args.model) / "reranker.json").read_text(encoding="utf-8"))
    settings = TrainSettings(**shipped["training"]["settings"])
    with open_rag(args.squad_data) as rag:
        ingest_dataset(rag, data)
        namespace = eval_namespace(data)
        half = BeirDataset(root, {q: data.queries[q] for q in train_ids}, {q: data.qrels[q] for q in train_ids})
        groups = groups_from_qrels(rag, half, namespace, negatives=settings.negatives, seed=settings.seed)
        queries = [data.queries[q] for q in test_ids]
        hits = first_stage(rag, queries, namespace, depth=50, fusion="weighted", alpha=0.5)
    from localrag.rerank.build import base_model_folder

    folder = base_model_folder()
    started = time.perf_counter()
    model, record = train(groups, folder, settings)
    record["data"] = f"SQuAD v1.1 dev, first half of the articles: {len(groups)} groups"
    out = Path(args.squad_data) / "squad-reranker"
    check = [(g.query, p) for g in groups[:24] for p in (g.positive, *g.negatives)]
    export_reranker(model, folder, out, check, max_tokens=settings.max_tokens, record=record)
    train_s = time.perf_counter() - started
    own = load_cross_encoder(out, threads=args.threads)
    golds = [gold[q] for q in test_ids]
    theirs, mine = _scores(queries, hits, scifact_reranker), _scores(queries, hits, own)
    recall = {  # hybrid: weighted fusion, alpha 0.5 (the default); blend: the first-stage share
        "hybrid": _evaluate(golds, hits, None),
        **{f"hybrid+scifact_reranker,blend={b}": _evaluate(golds, hits, theirs, b) for b in BLENDS},
        **{f"hybrid+squad_reranker,blend={b}": _evaluate(golds, hits, mine, b) for b in BLENDS},
    }
    return {
        "split": f"articles {articles[0]}..{max(first_half)} train, the rest test",
        "test_questions": len(test_ids),
        "train_groups": len(groups),
        "k1": K1,
        "squad_reranker_train_seconds": round(train_s, 1),
        "squad_reranker_training": record,
        "recall": recall,
    }
