"""Reranker quality and latency on SciFact, and the cross-domain check on SQuAD.

Method (SciFact, ../shared/data/scifact): the corpus is ingested into ``--data`` (namespace
``eval:scifact``; reused when present). Two first stages with library defaults otherwise: hybrid
RRF (k=60, the default) and hybrid weighted (alpha 0.5). Each returns its ranked chunks; the first
50 are scored once by the reranker (cached per query and chunk), and every (k1, blend) variant,
k1 in 20/30/50, is computed from those scores: the top k1 chunks reordered, the rest kept in
first-stage order, documents ranked by their first chunk, nDCG@10 / Recall@100 / MRR@10 as
``localrag eval`` computes them. The (k1, blend) to report is chosen on 100 held-out **train**
queries (``train-reranker --holdout 100``: never trained on); the test split is reported for
every variant. Latency: ``reranker.rerank`` on the top 20 chunks of 60 test queries
(``--threads``, default 2), p50/p95 ms.

SQuAD (``--parts squad``, ../shared/data/squad-v1.1-dev): the 2,067 paragraphs are ingested into
``--squad-data``; articles are split in two halves (sorted article numbers); ``--squad-questions``
questions sampled from the second half are searched over every paragraph; gold-paragraph
Recall@1 and Recall@5 for hybrid, hybrid + the SciFact-trained reranker and hybrid + a reranker
trained (same settings, ``--squad-groups`` groups) on questions of the first half.

Usage: python benchmarks/bench_reranker.py [--data DIR] [--model PATH] [--parts scifact,squad] [--out FILE]
Writes benchmarks/results/reranker.json by default. Timings are noisy on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from localrag.config import Settings  # noqa: E402
from localrag.engine import LocalRAG  # noqa: E402
from localrag.eval.beir import BeirDataset, load_beir  # noqa: E402
from localrag.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k  # noqa: E402
from localrag.eval.runner import eval_namespace, ingest_dataset  # noqa: E402
from localrag.rerank.base import ScoringReranker, rank_hits  # noqa: E402
from localrag.rerank.build import held_out  # noqa: E402
from localrag.rerank.cross_encoder import load_cross_encoder  # noqa: E402
from localrag.rerank.factory import shipped_reranker_dir  # noqa: E402
from localrag.rerank.mining import passage_text  # noqa: E402
from localrag.types import Hit, SearchRequest  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
K1S = (20, 30, 50)  # k1=100 would double the scoring time of 50 (bounded run on 2 cores)
BLENDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
DEPTH = 300  # chunks per query: enough distinct documents for Recall@100


FIRST_STAGES: dict[str, dict[str, Any]] = {
    "hybrid-rrf": {"fusion": "rrf"},  # RRF, k=60 (the default before tuning)
    "hybrid-weighted": {"fusion": "weighted", "alpha": 0.5},
}


def open_rag(path: Path) -> LocalRAG:
    # The library defaults (not a localrag.toml a tuning run may have left in the directory).
    settings = Settings().with_overrides({"embed": {"threads": 1}, "rerank": {"model": "none"}})
    return LocalRAG(path, settings=settings)


def first_stage(rag: LocalRAG, queries: list[str], namespace: str, depth: int = DEPTH,
                **options: Any) -> list[list[Hit]]:
    requests = [SearchRequest(q, depth, "hybrid", namespace, rerank=False, **options) for q in queries]
    return [list(r.hits) for r in rag.retrieve(requests)]


class ScoreCache:
    """Each (query, chunk) pair is scored once, whichever first stage brought it."""

    def __init__(self, reranker: ScoringReranker) -> None:
        self.reranker = reranker
        self.scores: dict[tuple[str, int], float] = {}
        self.seconds = 0.0

    def heads(self, queries: list[str], hits: list[list[Hit]], k1: int) -> list[np.ndarray]:
        started = time.perf_counter()
        out = []
        for query, hs in zip(queries, hits, strict=True):
            todo = [h for h in hs[:k1] if (query, h.chunk_id) not in self.scores]
            if todo:
                fresh = self.reranker.score_pairs(query, [passage_text(h) for h in todo])
                self.scores.update({(query, h.chunk_id): float(v) for h, v in zip(todo, fresh, strict=True)})
            out.append(np.array([self.scores[(query, h.chunk_id)] for h in hs[:k1]], dtype=np.float32))
        self.seconds += time.perf_counter() - started
        return out


def ranked_docs(hits: list[Hit], scores: Any, k1: int, blend: float) -> list[str]:
    head = rank_hits(hits[:k1], scores[:k1], k1, blend) if scores is not None else hits[:k1]
    return list(dict.fromkeys(h.doc_id for h in [*head, *hits[k1:]]))


def metrics(dataset: BeirDataset, qids: list[str], hits: list[list[Hit]], scores: list[Any] | None,
            k1: int, blend: float) -> dict[str, float]:
    sums = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for i, qid in enumerate(qids):
        ranked = ranked_docs(hits[i], None if scores is None else scores[i], k1, blend)[:100]
        judged = dataset.qrels[qid]
        sums["ndcg@10"] += ndcg_at_k(ranked, judged, 10)
        sums["recall@100"] += recall_at_k(ranked, judged, 100)
        sums["mrr@10"] += mrr_at_k(ranked, judged, 10)
    return {name: round(value / max(1, len(qids)), 4) for name, value in sums.items()}


def grid(dataset: BeirDataset, qids: list[str], hits: list[list[Hit]], scores: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"first_stage": metrics(dataset, qids, hits, None, 0, 0.0)}
    for k1 in K1S:
        for blend in BLENDS:
            out[f"k1={k1},blend={blend}"] = metrics(dataset, qids, hits, scores, k1, blend)
    return out


def latency(reranker: ScoringReranker, queries: list[str], hits: list[list[Hit]], n: int = 60) -> dict[str, float]:
    times = []
    for q, hs in list(zip(queries, hits, strict=True))[:n]:
        started = time.perf_counter()
        reranker.rerank(q, hs[:20], 20)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": round(percentile(times, 50), 1), "p95": round(percentile(times, 95), 1), "calls": len(times)}


def latency_only(args: argparse.Namespace, reranker: ScoringReranker) -> dict[str, Any]:
    """``--parts latency``: the latency measurement alone (for a quiet machine), after 10 warm-up calls."""
    test = load_beir(SHARED / "scifact", "test")
    queries = [test.queries[q] for q in sorted(test.queries)][:70]
    with open_rag(args.data) as rag:
        ingest_dataset(rag, test)
        hits = first_stage(rag, queries, eval_namespace(test))
    latency(reranker, queries[:10], hits[:10])
    return {**latency(reranker, queries[10:], hits[10:]),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def scifact(args: argparse.Namespace, reranker: ScoringReranker) -> dict[str, Any]:
    root = SHARED / "scifact"
    test, train = load_beir(root, "test"), load_beir(root, "train")
    dev_ids = held_out(train.queries, 100)  # the queries `train-reranker --holdout 100` kept out
    test_ids = sorted(test.queries)
    dev_q = [train.queries[q] for q in dev_ids]
    test_q = [test.queries[q] for q in test_ids]
    cache = ScoreCache(reranker)
    k1 = max(K1S)
    out: dict[str, Any] = {"queries": {"test": len(test_ids), "dev_from_train": len(dev_ids)}, "first_stages": {}}
    with open_rag(args.data) as rag:
        ingest_dataset(rag, test)
        namespace = eval_namespace(test)
        for name, options in FIRST_STAGES.items():
            dev_hits = first_stage(rag, dev_q, namespace, **options)
            test_hits = first_stage(rag, test_q, namespace, **options)
            dev = grid(train, dev_ids, dev_hits, cache.heads(dev_q, dev_hits, k1))
            tests = grid(test, test_ids, test_hits, cache.heads(test_q, test_hits, k1))
            chosen = max((key for key in dev if key != "first_stage"), key=lambda key: dev[key]["ndcg@10"])
            out["first_stages"][name] = {
                "options": options,
                "chosen_on_dev": chosen,
                "test_first_stage": tests["first_stage"],
                "test_chosen": tests[chosen],
                "test_pure_rerank_k1_20": tests["k1=20,blend=0.0"],
                "test_grid": tests,
                "dev_grid": dev,
            }
            if name == "hybrid-rrf":
                out["latency_20_candidates_ms"] = latency(reranker, test_q, test_hits)
    out["seconds_scoring"] = round(cache.seconds, 1)
    out["pairs_scored"] = len(cache.scores)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/eval-data"))
    parser.add_argument("--model", type=Path, default=shipped_reranker_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", default="scifact",
                        help="comma-separated: scifact, squad, latency (others kept from --out)")
    parser.add_argument("--squad-data", type=Path, default=Path("/tmp/squad-data"))
    parser.add_argument("--squad-questions", type=int, default=300)
    parser.add_argument("--squad-groups", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "reranker.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    reranker = load_cross_encoder(args.model, threads=args.threads)
    results: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    results.update({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "note": "shared 2-core VM, other jobs running"},
        "model": str(args.model),
        "model_config": json.loads((Path(args.model) / "reranker.json").read_text(encoding="utf-8")),
    })
    if "scifact" in parts:
        results["scifact"] = scifact(args, reranker)
    if "latency" in parts:
        results["latency_20_candidates_ms_alone"] = latency_only(args, reranker)
    if "squad" in parts:
        from bench_reranker_squad import squad

        results["squad"] = squad(args, reranker)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    summary: dict[str, Any] = {}
    for name, stage in results.get("scifact", {}).get("first_stages", {}).items():
        summary[name] = {k: v for k, v in stage.items()
                         if k in ("chosen_on_dev", "test_first_stage", "test_chosen", "test_pure_rerank_k1_20")}
    summary["latency"] = results.get("scifact", {}).get("latency_20_candidates_ms")
    summary["latency_alone"] = results.get("latency_20_candidates_ms_alone")
    summary["squad"] = results.get("squad", {}).get("recall")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
