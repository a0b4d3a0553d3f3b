"""Retrieval speed at 10k and 100k chunks, BM25 against rank-bm25, and ingest throughput.

Writes JSON (default benchmarks/results/retrieval.json). Never asserted in tests.

Corpus: real SciFact abstracts (../shared/data/scifact). Ingest throughput is measured
by a real ``LocalRAG.add`` of the first ``--ingest-docs`` abstracts with the default
embedder. The 10k/100k search corpora are built from real SciFact chunks embedded by
the default embedder; past the real chunk count, copies are added with a distinct
suffix token and their vectors perturbed with small noise (then renormalised), so
index sizes and posting-list lengths are those of a real corpus of that size.

Usage: python benchmarks/bench_retrieval.py [--sizes 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from timed_ingest import timed_add  # noqa: E402

from localrag.config import Settings  # noqa: E402
from localrag.engine import LocalRAG  # noqa: E402
from localrag.eval.beir import load_beir  # noqa: E402
from localrag.eval.metrics import percentile  # noqa: E402
from localrag.index.bm25 import BM25Index  # noqa: E402
from localrag.index.tokenize import TextTokenizer  # noqa: E402
from localrag.ingest.chunking import Chunker  # noqa: E402
from localrag.ingest.loaders import load_file  # noqa: E402
from localrag.store.sqlite import PreparedDocument, index_text  # noqa: E402
from localrag.types import Chunk, Document, SearchRequest  # noqa: E402

DEFAULT_DATASET = REPO.parent / "shared" / "data" / "scifact"


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "mean": round(statistics.fmean(values), 3) if values else 0.0,
    }


def measure_ingest(documents: list[Document], settings: Settings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, LocalRAG(tmp, settings=settings) as rag:
        timing = timed_add(rag, documents)
    return {
        "documents": len(documents),
        "chunks": timing.report.chunks_added,
        "seconds": round(timing.seconds, 2),
        "chunks_per_second": round(timing.chunks_per_s, 1),
        "embedder": settings.embed.model,
    }


def real_chunks(documents: list[Document], rag: LocalRAG) -> list[tuple[Document, Chunk]]:
    chunker = Chunker(rag.embedder.tokenizer, rag.settings.chunk.chunk_tokens, rag.settings.chunk.overlap_tokens)
    return [(doc, chunk) for doc in documents for chunk in chunker.split(doc)]


def build_corpus(rag: LocalRAG, base: list[tuple[Document, Chunk]], base_vectors: np.ndarray, size: int) -> None:
    """Write ``size`` chunks straight into the store (one chunk per document), copies perturbed."""
    rng = np.random.default_rng(7)
    batch: list[PreparedDocument] = []
    for i in range(size):
        doc, chunk = base[i % len(base)]
        copy = i // len(base)
        text = chunk.text if copy == 0 else f"{chunk.text} copy{copy}"
        vector = base_vectors[i % len(base)]
        if copy:
            vector = vector + rng.normal(0, 0.02, vector.shape).astype(np.float32)
            vector /= np.linalg.norm(vector)
        document = Document(f"{doc.doc_id}#{i}", text, title=doc.title)
        batch.append(PreparedDocument(document, f"h{i}", [Chunk(text, 0, len(text), 0)], vector.reshape(1, -1)))
        if len(batch) == 2000 or i == size - 1:
            rag.store.write_documents("", batch, rag.embedder.dim)
            batch = []
    rag.reindex()


def time_search(rag: LocalRAG, queries: list[str], mode: str) -> dict[str, Any]:
    search_ms: list[float] = []
    embed_ms: list[float] = []
    for text in queries:
        result = rag.retrieve([SearchRequest(text, 10, mode)])[0]  # type: ignore[arg-type]
        search_ms.append(result.timings["search"])
        embed_ms.append(result.timings.get("embed", 0.0))
    return {"search_ms": summary(search_ms), "embed_ms": summary(embed_ms) if mode != "keyword" else None}


def bm25_versus_rank_bm25(rag: LocalRAG, queries: list[str]) -> dict[str, Any]:
    from rank_bm25 import BM25Okapi

    ns_id = rag.store.namespace_id("")
    assert ns_id is not None
    keys, texts = rag.store.index_texts(None, ns_id)
    tokenizer = TextTokenizer()
    ours = BM25Index(tokenizer)
    ours.add(keys, texts)
    ours.search("warm up", 10)
    oracle = BM25Okapi([tokenizer(t) for t in texts])
    ours_ms, theirs_ms, identical = [], [], 0
    for text in queries:
        t0 = time.perf_counter()
        mine = ours.search(text, 10)
        t1 = time.perf_counter()
        scores = oracle.get_scores(tokenizer(text))
        top = np.argsort(-scores, kind="stable")[:10]
        t2 = time.perf_counter()
        ours_ms.append((t1 - t0) * 1000)
        theirs_ms.append((t2 - t1) * 1000)
        expected = [int(keys[i]) for i in top if scores[i] > 0]
        identical += [k for k, _ in mine] == expected
    return {
        "ours_ms": summary(ours_ms),
        "rank_bm25_ms": summary(theirs_ms),
        "speedup_p50": round(percentile(theirs_ms, 50) / max(percentile(ours_ms, 50), 1e-9), 1),
        "identical_top10": f"{identical}/{len(queries)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-docs", type=int, default=1000)
    parser.add_argument("--rank-bm25-queries", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "retrieval.json")
    args = parser.parse_args()

    settings = Settings()
    documents = load_file(args.dataset / "corpus.jsonl", max_bytes=1 << 30)
    queries = list(load_beir(args.dataset, "test").queries.values())[: args.queries]
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "embedder": settings.embed.model,
        "dataset": str(args.dataset),
    }
    results["ingest"] = measure_ingest(documents[: args.ingest_docs], settings)
    print(json.dumps(results["ingest"]), flush=True)

    with tempfile.TemporaryDirectory() as tmp, LocalRAG(Path(tmp) / "base", settings=settings) as embed_rag:
        base = real_chunks(documents, embed_rag)
        base_vectors = embed_rag.embedder.embed_documents([index_text(d.title, c.text) for d, c in base])
        results["real_chunks"] = len(base)
        for size in args.sizes:
            with LocalRAG(Path(tmp) / f"n{size}", settings=settings, embedder=embed_rag.embedder) as rag:
                build_corpus(rag, base, base_vectors, size)
                entry: dict[str, Any] = {"chunks": size}
                for mode in ("keyword", "dense", "hybrid"):
                    time_search(rag, queries[:10], mode)  # warm caches
                    entry[mode] = time_search(rag, queries, mode)
                entry["bm25_vs_rank_bm25"] = bm25_versus_rank_bm25(rag, queries[: args.rank_bm25_queries])
                results[f"n{size}"] = entry
                print(json.dumps(entry), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
