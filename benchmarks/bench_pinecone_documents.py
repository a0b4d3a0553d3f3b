"""Document-index throughput (Pinecone Documents API): upsert documents/s and search p50/p95 for the
text (BM25), query_string and dense_vector clauses, plain and filtered, in process and through the
official SDK against ``localrag serve`` (in a thread on 127.0.0.1).

    python benchmarks/bench_pinecone_documents.py --sizes 10000 --out benchmarks/results/pinecone_documents.json

Documents: a title (4 words) and a body (60 words) drawn from a Zipf-distributed 20,000-word
vocabulary, a 384-d unit vector, a genre (one in ten). Queries: 3 words each. Prints JSON (and
writes it to --out). Numbers depend on the machine; tests never assert them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
BATCH = 100
VOCAB = 20_000
SCHEMA = {"fields": {"title": {"type": "string", "full_text_search": {"language": "en"}},
                     "body": {"type": "string", "full_text_search": {"language": "en", "stemming": True}},
                     "embedding": {"type": "dense_vector", "dimension": DIM, "metric": "cosine"}}}
FILTER = {"genre": {"$eq": "g3"}}


def _words(rng: np.random.Generator, n: int) -> str:
    ranks = np.minimum(rng.zipf(1.2, size=n), VOCAB)
    return " ".join(f"w{r}" for r in ranks)


def documents(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [{"_id": f"d{i}", "title": _words(rng, 4), "body": _words(rng, 60), "embedding": vectors[i].tolist(),
             "genre": f"g{i % 10}"} for i in range(n)]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def run(docs_api: Any, corpus: list[dict[str, Any]], queries: int) -> dict[str, Any]:
    started = time.perf_counter()
    for start in range(0, len(corpus), BATCH):
        docs_api.upsert(namespace="bench", documents=corpus[start:start + BATCH])
    upsert_s = time.perf_counter() - started
    rng = np.random.default_rng(1)
    texts = [_words(rng, 3) for _ in range(queries)]
    probes = rng.normal(size=(queries, DIM))
    clauses: dict[str, Callable[[int], list[dict[str, Any]]]] = {
        "text": lambda i: [{"type": "text", "query": texts[i], "fields": ["title", "body"]}],
        "query_string": lambda i: [{"type": "query_string",
                                    "query": "title:({}) OR body:({})^2".format(*texts[i].split(" ", 1))}],
        "dense": lambda i: [{"type": "dense_vector", "field": "embedding", "values": probes[i].tolist()}],
    }
    out: dict[str, Any] = {"documents": len(corpus), "upsert_documents_per_s": round(len(corpus) / upsert_s, 1)}
    for label, make in clauses.items():
        for suffix, flt in (("", None), ("_filtered", FILTER)):
            samples = []
            for i in range(queries):
                t = time.perf_counter()
                docs_api.search(namespace="bench", top_k=10, score_by=make(i), filter=flt)
                samples.append(time.perf_counter() - t)
            out[label + suffix] = _percentiles(samples)
    return out


def bench_inprocess(corpus: list[dict[str, Any]], queries: int, workdir: Path) -> dict[str, Any]:
    from localrag.pinecone import Pinecone

    with Pinecone(path=workdir) as pc:
        pc.indexes.create(name="bench", schema=SCHEMA)
        return run(pc.index(name="bench").documents, corpus, queries)


def bench_sdk(corpus: list[dict[str, Any]], queries: int, workdir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import pinecone
    from threaded_server import app_in_thread

    from localrag.pinecone.server import create_app

    with app_in_thread(create_app(workdir)) as url:
        pc = pinecone.Pinecone(api_key="bench", host=url)
        pc.indexes.create(name="bench", schema=SCHEMA)
        return run(pc.index(name="bench").documents, corpus, queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "load": os.getloadavg()[0]}, "runs": []}
    for n in args.sizes:
        corpus = documents(n)
        with tempfile.TemporaryDirectory() as tmp:
            results["runs"].append({"target": "in-process", **bench_inprocess(corpus, args.queries, Path(tmp))})
        with tempfile.TemporaryDirectory() as tmp:
            results["runs"].append({"target": "sdk", **bench_sdk(corpus, args.queries, Path(tmp))})
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
