"""Scale: 100k, 300k and 1M chunks (issue 16): memory, cold start, disk, latency, ANN recall, BM25 agreement.

Corpus (benchmarks/scale_corpus.py): a ~20k-chunk sample of real SciFact and SQuAD text ingested by the
engine with the real embedder (that run gives the ingest chunks/s row), and a bulk of recombined real
text with STAND-IN vectors (mixes of two real sample vectors plus noise, not model output). The bulk is
written through the store's own write path with precomputed vectors (``SQLiteStore.write_documents``)
and indexed by ``LocalRAG.reindex`` (the batched bulk build of index/manager.py).

Each size is then measured in a fresh process (``--probe``): open the store and answer the first keyword
and hybrid query (cold start), RSS after open and after the timed queries, keyword, dense and hybrid p50/p95
(single query, one thread; the engine's ``search`` timing, query embedding reported apart), dense
recall@10 of the index against an exact scan of the store's vectors, and os.getloadavg() throughout.
BM25 agreement with rank-bm25 is checked on a sample of each corpus (rank-bm25 cannot hold 10^6 documents).

Usage: python benchmarks/bench_scale.py [--sizes 100000 300000 1000000] [--work /tmp/scale_work]
Writes benchmarks/results/scale.json and benchmarks/results/scale/*.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from scale_corpus import bulk_documents, ingest_sample, sample_rows, write_json  # noqa: E402

from localrag.config import Settings  # noqa: E402
from localrag.engine import LocalRAG  # noqa: E402
from localrag.eval.beir import read_queries  # noqa: E402
from localrag.eval.metrics import percentile  # noqa: E402
from localrag.store.sqlite import PreparedDocument  # noqa: E402
from localrag.types import Chunk, Document, SearchRequest  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DATA = REPO.parent / "shared" / "data"
WRITE_BATCH_DOCS = 1000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "mean": round(statistics.fmean(values), 3) if values else 0.0}


def real_queries(n: int) -> list[str]:
    scifact = list(read_queries(DATA / "scifact").values())
    squad = list(read_queries(DATA / "squad-v1.1-dev").values())
    return (scifact[:300] + squad)[:n]


# -- build --------------------------------------------------------------------------------------------
def build_store(sample: Path, directory: Path, size: int) -> dict[str, Any]:
    """The sample's chunks (real vectors) and ``size - sample`` stand-in chunks, through the store's write path."""
    if directory.exists():
        shutil.rmtree(directory)
    settings = Settings()
    with LocalRAG(sample, settings=settings, read_only=True) as src:
        _, texts, titles, vectors = sample_rows(src)
        space, dim = src.store.get_meta("vector_space"), src.indexes.dim
    t0 = time.perf_counter()
    with LocalRAG(directory, settings=settings) as rag:
        rag.store.set_meta("vector_space", str(space))
        rag.store.set_meta("dim", str(dim))
        batch: list[PreparedDocument] = []
        real = min(size, len(texts))
        for start in range(0, real, 10):  # the sample's chunks as they are, 10 to a document
            parts = texts[start : start + 10]
            chunks, offset = [], 0
            for ordinal, part in enumerate(parts):
                chunks.append(Chunk(part, offset, offset + len(part), ordinal))
                offset += len(part) + 1
            doc = Document(f"real/{start}", "\n".join(parts), title=titles[start])
            batch.append(PreparedDocument(doc, f"real{start}", chunks, vectors[start : start + 10]))
        rag.store.write_documents("", batch, dim)
        batch = []
        for prepared in bulk_documents(texts, titles, vectors, size - real, seed=size):
            batch.append(prepared)
            if len(batch) == WRITE_BATCH_DOCS:
                rag.store.write_documents("", batch, dim)
                batch = []
        if batch:
            rag.store.write_documents("", batch, dim)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rag.reindex()  # both indexes from the store (bulk path), then saved
        build_s = time.perf_counter() - t0
        chunks = rag.store.stats()["chunks"]
    return {"chunks": chunks, "real_vector_chunks": real, "standin_vector_chunks": chunks - real,
            "store_write_s": round(write_s, 1), "index_build_s": round(build_s, 1),
            "build_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "loadavg": load()}


def disk(directory: Path, chunks: int) -> dict[str, Any]:
    store = sum(p.stat().st_size for p in directory.glob("store.sqlite3*"))
    indexes = {p.name: p.stat().st_size for p in (directory / "indexes").rglob("*.npz")}
    total = store + sum(indexes.values())
    return {"store_bytes": store, "index_bytes": indexes, "total_bytes": total,
            "bytes_per_chunk": round(total / max(chunks, 1), 1),
            "index_bytes_per_chunk": round(sum(indexes.values()) / max(chunks, 1), 1)}


# -- probe (a fresh process per size) ------------------------------------------------------------------
def probe(directory: Path, n_queries: int, recall_queries: int) -> dict[str, Any]:
    out: dict[str, Any] = {"loadavg_start": load(), "rss_before_open_mb": rss_mb()}
    queries = real_queries(n_queries)
    t0 = time.perf_counter()
    rag = LocalRAG(directory, read_only=True)
    out["open_s"] = round(time.perf_counter() - t0, 3)
    out["rss_after_open_mb"] = rss_mb()
    first = rag.retrieve([SearchRequest(queries[0], 10, "keyword")])[0]
    out["cold_start_keyword_s"] = round(time.perf_counter() - t0, 3)
    t1 = time.perf_counter()
    rag.embedder.embed_query("warm up")
    out["embedder_load_s"] = round(time.perf_counter() - t1, 3)
    rag.retrieve([SearchRequest(queries[1], 10, "hybrid")])
    out["cold_start_hybrid_s"] = round(time.perf_counter() - t0, 3)
    out["cold_start_hybrid_without_model_load_s"] = round(out["cold_start_hybrid_s"] - out["embedder_load_s"], 3)
    out["first_keyword_hits"] = len(first.hits)
    for mode in ("keyword", "dense", "hybrid"):
        search_ms, embed_ms = [], []
        for text in queries:
            result = rag.retrieve([SearchRequest(text, 10, mode)])[0]  # type: ignore[arg-type]
            search_ms.append(result.timings["search"])
            embed_ms.append(result.timings.get("embed", 0.0))
        out[mode] = {"search_ms": summary(search_ms), "queries": len(queries),
                     "embed_ms": summary(embed_ms) if mode != "keyword" else None}
    out["rss_after_queries_mb"] = rss_mb()
    out["loadavg_after_queries"] = load()
    out["dense_recall@10"] = dense_recall(rag, queries[:recall_queries])
    rag.close()
    return out


def dense_recall(rag: LocalRAG, queries: list[str], k: int = 10) -> dict[str, Any]:
    """The vector index's top-k against an exact scan of every vector in the store (streamed)."""
    ns_id = rag.store.namespace_id("")
    assert ns_id is not None
    space = rag.indexes.get(ns_id)
    assert space is not None
    q = np.asarray(rag.embedder.embed_queries(queries), np.float32)
    got = [{key for key, _ in row} for row in space.dense.search(q, k)]
    truth = exact_top(rag, ns_id, q, k)
    hits = sum(len(g & set(row.tolist())) for g, row in zip(got, truth, strict=True))
    out: dict[str, Any] = {"recall": round(hits / (k * len(q)), 4), "queries": len(q), "index_kind": space.dense.kind}
    codes = getattr(space.dense, "_ivf", None)
    if codes is not None:  # the IVF knobs: cells probed and rerank depth, one query at a time
        defaults = (codes.nprobe, codes.rerank_min)
        out["defaults"] = {"nprobe": defaults[0], "rerank_min": defaults[1], "rerank_factor": codes.rerank_factor}
        out["sweep"] = []
        for nprobe in (16, 32, 64, 128):
            for rerank_min in (100, 200, 400):
                codes.nprobe, codes.rerank_min = nprobe, rerank_min
                t0 = time.perf_counter()
                rows = [space.dense.search(v.reshape(1, -1), k)[0] for v in q]
                ms = (time.perf_counter() - t0) * 1000 / len(q)
                found = sum(len({key for key, _ in r} & set(t.tolist())) for r, t in zip(rows, truth, strict=True))
                out["sweep"].append({"nprobe": nprobe, "rerank_min": rerank_min,
                                     "recall": round(found / (k * len(q)), 4), "ms_per_query": round(ms, 3)})
        codes.nprobe, codes.rerank_min = defaults
    return out


def exact_top(rag: LocalRAG, ns_id: int, q: np.ndarray, k: int) -> np.ndarray:
    """The exact top-k keys of each query over every vector in the store, streamed in batches."""
    best_scores = np.full((len(q), 0), -np.inf, np.float32)
    best_keys = np.zeros((len(q), 0), np.int64)
    keys = rag.store.chunk_keys(ns_id)
    for start in range(0, len(keys), 50_000):
        found, vectors = rag.store.find_vectors(keys[start : start + 50_000], ns_id, rag.indexes.dim)
        scores = np.concatenate([best_scores, q @ vectors.T], axis=1)
        all_keys = np.concatenate([best_keys, np.broadcast_to(found, (len(q), len(found)))], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(scores, top, 1)
        best_keys = np.take_along_axis(all_keys, top, 1)
    return best_keys


def bm25_agreement(directory: Path, queries: list[str], sample: int) -> dict[str, Any]:
    """Our BM25Index against rank-bm25's BM25Okapi on the first ``sample`` chunks of the corpus."""
    from rank_bm25 import BM25Okapi

    from localrag.index.bm25 import BM25Index
    from localrag.index.tokenize import TextTokenizer

    with LocalRAG(directory, read_only=True) as rag:
        ns_id = rag.store.namespace_id("")
        assert ns_id is not None
        keys, texts = next(rag.store.iter_index_texts(ns_id, sample))
    tokenizer = TextTokenizer()
    ours = BM25Index(tokenizer)
    ours.add(keys, texts)
    oracle = BM25Okapi([tokenizer(t) for t in texts])
    identical = 0
    for text in queries:
        mine = [k for k, _ in ours.search(text, 10)]
        scores = oracle.get_scores(tokenizer(text))
        top = np.argsort(-scores, kind="stable")[:10]
        identical += mine == [int(keys[i]) for i in top if scores[i] > 0]
    return {"sample_chunks": len(keys), "queries": len(queries), "identical_top10": identical,
            "share": round(identical / max(len(queries), 1), 4)}


# -- plots ------------------------------------------------------------------------------------------------
FIGURES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "ingest": ("ingest chunks/s (real embedder, 20k sample)", [("ingest_chunks_per_s", "chunks/s")]),
    "build": ("index build time (s)", [("index_build_s", "reindex from store")]),
    "rss": ("RSS (MB)", [("rss_after_open_mb", "after open"), ("rss_after_queries_mb", "after queries")]),
    "disk": ("disk bytes per chunk", [("bytes_per_chunk", "store + indexes"), ("index_bytes_per_chunk", "indexes")]),
    "cold_start": ("cold start to first answer (s)", [
        ("cold_start_keyword_s", "keyword"), ("cold_start_hybrid_without_model_load_s", "hybrid, model apart"),
        ("cold_start_hybrid_s", "hybrid, with model load")]),
    "latency": ("search latency, one thread (ms)", [("keyword_p50", "keyword p50"), ("keyword_p95", "keyword p95"),
                                                  ("dense_p50", "dense p50"), ("dense_p95", "dense p95"),
                                                  ("hybrid_p50", "hybrid p50"), ("hybrid_p95", "hybrid p95")]),
    "recall": ("dense recall@10 against exact", [("dense_recall", "recall@10")]),
    "bm25_agreement": ("BM25 top-10 identical to rank-bm25 (share)", [("bm25_agreement", "share")]),
}


def flat_row(entry: dict[str, Any], ingest: dict[str, Any]) -> dict[str, float]:
    p = entry["probe"]
    row = {"ingest_chunks_per_s": ingest["chunks_per_s"], "index_build_s": entry["build"]["index_build_s"],
           "rss_after_open_mb": p["rss_after_open_mb"], "rss_after_queries_mb": p["rss_after_queries_mb"],
           "bytes_per_chunk": entry["disk"]["bytes_per_chunk"],
           "index_bytes_per_chunk": entry["disk"]["index_bytes_per_chunk"],
           "cold_start_keyword_s": p["cold_start_keyword_s"], "cold_start_hybrid_s": p["cold_start_hybrid_s"],
           "cold_start_hybrid_without_model_load_s": p["cold_start_hybrid_without_model_load_s"],
           "dense_recall": p["dense_recall@10"]["recall"], "bm25_agreement": entry["bm25_vs_rank_bm25"]["share"]}
    for mode in ("keyword", "dense", "hybrid"):
        row[f"{mode}_p50"] = p[mode]["search_ms"]["p50"]
        row[f"{mode}_p95"] = p[mode]["search_ms"]["p95"]
    return row


def plot(results: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(k[1:]) for k in results["sizes"])
    rows = [flat_row(results["sizes"][f"n{s}"], results["ingest"]) for s in sizes]
    folder.mkdir(parents=True, exist_ok=True)
    for name, (title, series) in FIGURES.items():
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for key, label in series:
            ax.plot(sizes, [r[key] for r in rows], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("chunks")
        ax.set_title(title, fontsize=10)
        if len(series) > 1:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=110)
        plt.close(fig)


# -- main -------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/scale_work"))
    parser.add_argument("--ingest-chunks", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--bm25-sample", type=int, default=50_000)
    parser.add_argument("--bm25-queries", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep each size's data directory")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args.queries, args.recall_queries)))
        return 0

    sample = args.work / "sample"
    ingest_file = args.work / "ingest.json"
    if not ingest_file.is_file():
        before = load()
        ingest = ingest_sample(DATA, sample, args.ingest_chunks, Settings())
        ingest["loadavg_before"], ingest["loadavg_after"] = before, load()
        write_json(ingest_file, ingest)
    ingest = json.loads(ingest_file.read_text())
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results.update({
        "benchmark": "scale", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "ingest": ingest,
        "vectors": "sample chunks: real embedder vectors; the rest: STAND-IN vectors, normalise(v_a + v_b + noise) "
                   "of two real sample vectors (benchmarks/scale_corpus.py), not model output",
    })
    results.setdefault("sizes", {})
    queries = real_queries(args.queries)
    for size in args.sizes:
        directory = args.work / f"n{size}"
        entry: dict[str, Any] = {"build": build_store(sample, directory, size)}
        print(json.dumps(entry["build"]), flush=True)
        chunks = entry["build"]["chunks"]
        entry["disk"] = disk(directory, chunks)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, __file__, "--probe", str(directory), "--queries", str(args.queries),
                               "--recall-queries", str(args.recall_queries)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        entry["probe"] = json.loads(proc.stdout.strip().splitlines()[-1])
        entry["bm25_vs_rank_bm25"] = bm25_agreement(directory, queries[: args.bm25_queries], args.bm25_sample)
        results["sizes"][f"n{size}"] = entry
        print(json.dumps({k: v for k, v in entry.items() if k != "build"}), flush=True)
        write_json(args.out, results)  # after each size: a crash keeps what was done
        if not args.keep:
            shutil.rmtree(directory)
    plot(results, args.out.parent / "scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
