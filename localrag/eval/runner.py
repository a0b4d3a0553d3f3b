"""Evaluate retrieval on a BEIR dataset: ingest (or reuse) its corpus, run its queries per mode."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localrag.engine import LocalRAG
from localrag.eval.beir import BeirDataset, load_beir
from localrag.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from localrag.ingest.pipeline import Progress
from localrag.types import SearchMode, SearchRequest

log = logging.getLogger(__name__)

DEPTH = 100  # documents per query scored for Recall@100
_CHUNKS_PER_DOC = 3  # chunk hits fetched per wanted document, so DEPTH distinct documents remain


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


def evaluate(
    rag: LocalRAG,
    root: Path,
    *,
    split: str = "test",
    modes: Sequence[SearchMode] = ("keyword", "dense", "hybrid"),
    overrides: dict[str, Any] | None = None,
    progress: Progress | None = None,
    on_query: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Metrics per mode: nDCG@10, Recall@10, Recall@100, MRR@10, latency p50/p95 (ms)."""
    dataset = load_beir(root, split)
    ingest = ingest_dataset(rag, dataset, progress)
    namespace = eval_namespace(dataset)
    results: dict[str, Any] = {
        "dataset": str(root),
        "split": split,
        "queries": len(dataset.queries),
        "ingest": ingest,
        "modes": {},
    }
    for mode in modes:
        results["modes"][mode] = _evaluate_mode(rag, dataset, namespace, mode, overrides or {}, on_query)
    return results


def _evaluate_mode(
    rag: LocalRAG,
    dataset: BeirDataset,
    namespace: str,
    mode: SearchMode,
    overrides: dict[str, Any],
    on_query: Callable[[str], None] | None,
) -> dict[str, Any]:
    sums = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    total_ms: list[float] = []
    search_ms: list[float] = []
    embed_ms: list[float] = []
    for query_id, text in dataset.queries.items():
        request = SearchRequest(text, DEPTH * _CHUNKS_PER_DOC, mode, namespace, **overrides)
        result = rag.retrieve([request])[0]
        ranked = list(dict.fromkeys(hit.doc_id for hit in result.hits))[:DEPTH]
        judged = dataset.qrels[query_id]
        sums["ndcg@10"] += ndcg_at_k(ranked, judged, 10)
        sums["recall@10"] += recall_at_k(ranked, judged, 10)
        sums["recall@100"] += recall_at_k(ranked, judged, 100)
        sums["mrr@10"] += mrr_at_k(ranked, judged, 10)
        search_ms.append(result.timings.get("search", 0.0))
        embed_ms.append(result.timings.get("embed", 0.0))
        total_ms.append(search_ms[-1] + embed_ms[-1])
        if on_query is not None:
            on_query(query_id)
    n = max(1, len(dataset.queries))
    return {
        **{name: round(value / n, 4) for name, value in sums.items()},
        "latency_ms": {"p50": round(percentile(total_ms, 50), 2), "p95": round(percentile(total_ms, 95), 2)},
        "search_ms": {"p50": round(percentile(search_ms, 50), 2), "p95": round(percentile(search_ms, 95), 2)},
        "embed_ms": {"p50": round(percentile(embed_ms, 50), 2)},
    }


def format_table(results: dict[str, Any]) -> str:
    header = f"{'mode':<10} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>8} {'p95 ms':>8}"
    lines = [f"{results['dataset']} ({results['split']}, {results['queries']} queries)", header]
    for mode, m in results["modes"].items():
        lines.append(
            f"{mode:<10} {m['ndcg@10']:>8.4f} {m['recall@10']:>7.4f} {m['recall@100']:>7.4f} {m['mrr@10']:>7.4f}"
            f" {m['latency_ms']['p50']:>8.2f} {m['latency_ms']['p95']:>8.2f}"
        )
    return "\n".join(lines)
