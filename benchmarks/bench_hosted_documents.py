"""The pipeline on one hosted document index (vector.backend = "pinecone_documents") beside the local
path: ingest documents/s and search p50/p95 (keyword, dense, hybrid) through the engine, with
``localrag serve``'s Pinecone server in a thread on 127.0.0.1 standing in for hosted Pinecone (so the
hosted figures are the SDK + HTTP + server cost on this machine, without a WAN round trip).

    python benchmarks/bench_hosted_documents.py --docs 2000 --out benchmarks/results/hosted_documents.json

Documents: a title (4 words) and a body (60 words) from a Zipf-distributed 5,000-word vocabulary,
embedded by the default embedder. Queries: 3 words each, embedded once before timing (the retriever's
embedding cache), result caches off. Numbers depend on the machine; tests never assert them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def corpus(n: int, seed: int = 7) -> tuple[list[Any], list[str]]:
    from localrag.types import Document

    rng = np.random.default_rng(seed)

    def words(k: int) -> str:
        return " ".join(f"w{r}" for r in np.minimum(rng.zipf(1.3, size=k), 5000))

    docs = [Document(f"d{i}", words(60), title=words(4), metadata={"genre": f"g{i % 10}"}) for i in range(n)]
    return docs, [words(3) for _ in range(100)]


def measure(rag: Any, docs: list[Any], queries: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    for start in range(0, len(docs), 200):
        rag.add(docs[start:start + 200])
    ingest_s = time.perf_counter() - t0
    for q in queries:
        rag.search(q, k=10, mode="dense")  # warm: query embeddings cached
    out: dict[str, Any] = {"ingest_docs_per_s": round(len(docs) / ingest_s, 1)}
    for mode in ("keyword", "dense", "hybrid"):
        times = []
        for q in queries:
            t = time.perf_counter()
            rag.search(q, k=10, mode=mode)
            times.append((time.perf_counter() - t) * 1000)
        out[f"{mode}_p50_ms"] = round(float(np.percentile(times, 50)), 2)
        out[f"{mode}_p95_ms"] = round(float(np.percentile(times, 95)), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import pinecone
    from threaded_server import app_in_thread

    from localrag.config import Settings
    from localrag.embed.factory import load_embedder
    from localrag.engine import LocalRAG
    from localrag.pinecone.hosted_docs import schema
    from localrag.pinecone.server import create_app

    base = Settings().with_overrides({"server": {"result_cache_size": 0}, "rerank": {"enabled": False}})
    embedder = load_embedder(base.embed.model, threads=2, batch_size=base.embed.batch_size,
                             max_tokens=base.embed.max_tokens)
    docs, queries = corpus(args.docs)
    results: dict[str, Any] = {"docs": args.docs, "queries": len(queries), "machine": platform.processor(),
                               "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        with LocalRAG(Path(tmp) / "local", settings=base, embedder=embedder) as rag:
            results["local"] = measure(rag, docs, queries)
        with app_in_thread(create_app(Path(tmp) / "hosted")) as url:
            pc = pinecone.Pinecone(api_key="bench", host=url)
            pc.indexes.create(name="corpus", schema=schema(embedder.dim))
            os.environ["PINECONE_API_KEY"] = "bench"
            hosted = base.with_overrides({"vector": {"backend": "pinecone_documents",
                                                     "host": pc.indexes.describe("corpus").host}})
            with LocalRAG(Path(tmp) / "replica", settings=hosted, embedder=embedder) as rag:
                results["hosted_documents"] = measure(rag, docs, queries)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
