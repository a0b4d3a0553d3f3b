"""Evaluate retrieval on a BEIR dataset: ingest (or reuse) its corpus, run its queries per mode."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localrag.engine import LocalRAG
from localrag.eval.beir import BeirDataset, load_beir
from localrag.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from localrag.ingest.pipeline import Progress
from localrag.query.strategies import QueryStrategy, search_with
from localrag.types import SearchMode, SearchRequest

log = logging.getLogger(__name__)

DEPTH = 100  # documents per query scored for Recall@100
_CHUNKS_PER_DOC = 3  # chunk hits fetched per wanted document, so DEPTH distinct documents remain
SEARCH_K = DEPTH * _CHUNKS_PER_DOC  # chunk hits requested per query
_TOTAL_STAGES = ("embed", "search", "rerank", "expand")


def sample_ids(ids: Sequence[str], n: int | None, seed: int) -> list[str]:
    """A fixed random subset of ``n`` ids (all when ``n`` is None), in a seeded random order.

    The order is one shuffle of the sorted ids, so a smaller ``n`` gives a prefix of a larger one."""
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    return shuffled if n is None else shuffled[:n]


def eval_namespace(dataset: BeirDataset) -> str:
    return f"eval:{dataset.name}"


def ingest_dataset(rag: LocalRAG, dataset: BeirDataset, progress: Progress | None = None) -> dict[str, Any]:
    report = rag.add(dataset.corpus_path, namespace=eval_namespace(dataset), progress=progress)
    return {
        "added": len(report.added),
        "updated": len(report.updated),
        "unchanged": len(report.unchanged),
        "skipped": len(report.skipped),
        "chunks": report.chunks_added,
        "seconds": round(report.seconds, 2),
    }


@dataclass(frozen=True, slots=True)
class Run:
    """One named configuration to evaluate: a mode, request overrides, and an optional query strategy."""

    name: str
    mode: SearchMode = "hybrid"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    strategy: QueryStrategy | None = None


def evaluate(
    rag: LocalRAG,
    root: Path,
    *,
    split: str = "test",
    modes: Sequence[SearchMode] = ("keyword", "dense", "hybrid"),
    overrides: dict[str, Any] | None = None,
    progress: Progress | None = None,
    on_query: Callable[[str], None] | None = None,
    runs: Sequence[Run] | None = None,
    query_ids: Sequence[str] | None = None,
    per_query: bool = False,
) -> dict[str, Any]:
    """Metrics per run (default: one per mode): nDCG@10, Recall@10, Recall@100, MRR@10, latency p50/p95 (ms)."""
    dataset = load_beir(root, split)
    if query_ids is not None:
        dataset = BeirDataset(dataset.root, {q: dataset.queries[q] for q in query_ids if q in dataset.queries},
                              dataset.qrels)
    ingest = ingest_dataset(rag, dataset, progress)
    namespace = eval_namespace(dataset)
    results: dict[str, Any] = {
        "dataset": str(root),
        "split": split,
        "queries": len(dataset.queries),
        "ingest": ingest,
        "modes": {},
    }
    for run in runs if runs is not None else [Run(m, m, overrides or {}) for m in modes]:
        results["modes"][run.name] = evaluate_run(rag, dataset, namespace, run, on_query, per_query)
    return results


def evaluate_run(
    rag: LocalRAG,
    dataset: BeirDataset,
    namespace: str,
    run: Run,
    on_query: Callable[[str], None] | None = None,
    per_query: bool = False,
) -> dict[str, Any]:
    sums = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    total_ms: list[float] = []
    search_ms: list[float] = []
    embed_ms: list[float] = []
    ndcg: dict[str, float] = {}
    for query_id, text in dataset.queries.items():
        request = SearchRequest(text, SEARCH_K, run.mode, namespace, **run.overrides)
        strategy = run.strategy
        result = rag.retrieve([request])[0] if strategy is None else search_with(rag, request, strategy)
        ranked = list(dict.fromkeys(hit.doc_id for hit in result.hits))[:DEPTH]
        judged = dataset.qrels[query_id]
        ndcg[query_id] = ndcg_at_k(ranked, judged, 10)
        sums["ndcg@10"] += ndcg[query_id]
        sums["recall@10"] += recall_at_k(ranked, judged, 10)
        sums["recall@100"] += recall_at_k(ranked, judged, 100)
        sums["mrr@10"] += mrr_at_k(ranked, judged, 10)
        search_ms.append(result.timings.get("search", 0.0))
        embed_ms.append(result.timings.get("embed", 0.0))
        # Whole-query latency: query expansion (LLM) and reranking count when present.
        total_ms.append(sum(result.timings.get(stage, 0.0) for stage in _TOTAL_STAGES))
        if on_query is not None:
            on_query(query_id)
    n = max(1, len(dataset.queries))
    out = {
        **{name: round(value / n, 4) for name, value in sums.items()},
        "latency_ms": {"p50": round(percentile(total_ms, 50), 2), "p95": round(percentile(total_ms, 95), 2)},
        "search_ms": {"p50": round(percentile(search_ms, 50), 2), "p95": round(percentile(search_ms, 95), 2)},
        "embed_ms": {"p50": round(percentile(embed_ms, 50), 2)},
    }
    if per_query:
        out["per_query_ndcg@10"] = {q: round(v, 4) for q, v in ndcg.items()}
    return out


def format_table(results: dict[str, Any]) -> str:
    """The runs side by side, one row each."""
    w = max([10, *(len(name) for name in results["modes"])])
    header = f"{'mode':<{w}} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>8} {'p95 ms':>8}"
    lines = [f"{results['dataset']} ({results['split']}, {results['queries']} queries)", header]
    for mode, m in results["modes"].items():
        lines.append(
            f"{mode:<{w}} {m['ndcg@10']:>8.4f} {m['recall@10']:>7.4f} {m['recall@100']:>7.4f} {m['mrr@10']:>7.4f}"
            f" {m['latency_ms']['p50']:>8.2f} {m['latency_ms']['p95']:>8.2f}"
        )
    return "\n".join(lines)
