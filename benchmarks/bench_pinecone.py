"""Pinecone-mode throughput: upsert vectors/s and query p50/p95, through the official SDK against
``localrag serve`` (a separate process on 127.0.0.1) and in process, with and without a filter.

    python benchmarks/bench_pinecone.py --sizes 10000 100000 --out benchmarks/results/pinecone.json

``--document-sizes`` (default 10000) adds the document-index rows (Documents API), as
bench_pinecone_documents.py measures them: upsert documents/s and text, query_string and dense
search p50/p95, plain and filtered, in process and through the SDK.

``--legacy-sizes`` adds the legacy query rows (in process): the same probes answered through the
ANN candidates and by brute force, in one run, with recall@10 of the first against the second,
and the time to open the index (load from SQLite and the ANN's saved file; and with that file
removed, so the ANN is rebuilt). ``--sizes`` may be empty to run those rows alone. Legacy sizes
up to ``--all-metrics-up-to`` run cosine, dotproduct and euclidean; larger ones
``--legacy-metrics`` (cosine). Each timing row records the load average (1, 5, 15 min) before
and after, since the machine may be shared. The vectors are stand-ins: random normal, 384-d,
normalised for cosine (lengths 0.5-1.5 for the other metrics), which is the hard case for
candidate generation (no clusters to exploit). ``--vectors clustered`` adds rows on REALISTIC
STAND-INS (not model output for these records): normalise(v_a + v_b + noise) over real MiniLM
embeddings of a sample of SciFact/SQuAD passages from ../shared/data, made by
benchmarks/scale_corpus.py's generator; the real embeddings are cached under /tmp. Embeddings
cluster by topic, which is what lets the ANN's calibrated IVF scan a few lists instead of all.

Prints JSON (and writes it to --out). Numbers depend on the machine; tests never assert them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

DIM = 384
BATCH = 200  # 200 x 384 floats stays under Pinecone's 2 MB per request
FILTER = {"genre": {"$eq": "g3"}}  # one record in ten


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def run(index: Any, n: int, queries: int) -> dict[str, Any]:
    data = _vectors(n)
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        index.upsert(vectors=[{"id": f"v{i}", "values": data[i].tolist(), "metadata": {"genre": f"g{i % 10}"}}
                              for i in range(start, min(n, start + BATCH))])
    upsert_s = time.perf_counter() - started
    probes = _vectors(queries, seed=1)
    out: dict[str, Any] = {"vectors": n, "upsert_vectors_per_s": round(n / upsert_s, 1)}
    for label, flt in (("query", None), ("query_filtered", FILTER)):
        index.query(vector=probes[0].tolist(), top_k=10, filter=flt)  # warm the filter cache once
        samples = []
        for q in probes:
            t = time.perf_counter()
            matches = index.query(vector=q.tolist(), top_k=10, filter=flt).matches
            samples.append(time.perf_counter() - t)
            assert len(matches) == 10
        out[label] = _percentiles(samples)
    return out


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _timed_queries(pc: Any, probes: np.ndarray, flt: dict[str, Any] | None) -> tuple[list[list[str]], dict[str, Any]]:
    index = pc.Index("bench")
    index.query(vector=probes[0].tolist(), top_k=10, filter=flt)  # warm the filter cache once
    ids, samples = [], []
    load_before = _load()
    for q in probes:
        t = time.perf_counter()
        matches = index.query(vector=q.tolist(), top_k=10, filter=flt).matches
        samples.append(time.perf_counter() - t)
        ids.append([m.id for m in matches])
    return ids, {**_percentiles(samples), "load_avg_before": load_before, "load_avg_after": _load()}


CLUSTER_SOURCES = 3000  # real passages embedded (half SciFact, half SQuAD); pairs of them make the stand-ins
CLUSTER_CACHE = Path(tempfile.gettempdir()) / "localrag-bench-pinecone-minilm.npy"
_KIND = "random"


def _source_embeddings() -> tuple[list[str], np.ndarray]:
    """Texts and real MiniLM vectors of a seeded sample of SciFact and SQuAD passages (cached)."""
    from localrag.config import Settings
    from localrag.eval.beir import read_jsonl

    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    texts: list[str] = []
    for name in ("scifact", "squad-v1.1-dev"):
        rows = [str(r["text"]) for _, r in read_jsonl(data / name / "corpus.jsonl")]
        pick = np.random.default_rng(3).choice(len(rows), min(len(rows), CLUSTER_SOURCES // 2), replace=False)
        texts += [rows[i] for i in sorted(pick)]
    if CLUSTER_CACHE.exists():
        cached = np.load(CLUSTER_CACHE)
        if len(cached) == len(texts):
            return texts, cached
    from localrag.embed.factory import load_embedder

    embed = Settings().embed
    embedder = load_embedder(embed.model, threads=embed.threads, batch_size=embed.batch_size,
                             max_tokens=embed.max_tokens)
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    np.save(CLUSTER_CACHE, vectors)
    return texts, vectors


def _clustered(n: int, seed: int) -> np.ndarray:
    """Stand-ins from scale_corpus's generator (normalised sums of two real embeddings plus noise)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scale_corpus import bulk_documents

    texts, vectors = _source_embeddings()
    out = np.empty((n, vectors.shape[1]), dtype=np.float32)
    made = 0
    for doc in bulk_documents(texts, [""] * len(texts), vectors, n, seed):
        out[made:made + len(doc.vectors)] = doc.vectors
        made += len(doc.vectors)
    return out


def _legacy_vectors(n: int, metric: str, seed: int = 0) -> np.ndarray:
    """Normalised for cosine; lengths spread over 0.5-1.5 otherwise, so the metric sees them."""
    x = _clustered(n, seed + 20) if _KIND == "clustered" else _vectors(n, seed)
    if metric != "cosine":
        x *= np.random.default_rng(seed + 100).uniform(0.5, 1.5, size=(n, 1)).astype(np.float32)
    return x


def _open_s(path: Path, settings: Any) -> float:
    from localrag.pinecone import Pinecone

    with Pinecone(path=path, ann=settings) as pc:
        t = time.perf_counter()
        pc._local.index("bench")
        return round(time.perf_counter() - t, 2)


def bench_legacy(n: int, queries: int, workdir: Path, metric: str = "cosine") -> dict[str, Any]:
    """ANN against brute force on one stored index: open it once with each setting.

    The writer's close saves the ANN beside the store, so the ANN open loads it; ``ann_rebuild_open_s``
    is an open with that file removed (a crash's or an old version's case), which rebuilds it.
    """
    from localrag.pinecone import Pinecone
    from localrag.pinecone.ann import AnnSettings

    path = workdir / f"legacy{n}{metric}"
    data = _legacy_vectors(n, metric)
    started = time.perf_counter()
    with Pinecone(path=path) as pc:
        pc.create_index(name="bench", dimension=DIM, metric=metric)
        index = pc.Index("bench")
        for start in range(0, n, BATCH):
            index.upsert(vectors=[{"id": f"v{i}", "values": data[i].tolist(), "metadata": {"genre": f"g{i % 10}"}}
                                  for i in range(start, min(n, start + BATCH))])
    del pc, index  # memory: each open below holds one copy of the vectors, not two
    out: dict[str, Any] = {"vectors": n, "metric": metric, "data": _KIND,
                           "upsert_vectors_per_s": round(n / (time.perf_counter() - started), 1),
                           "load_avg_after_upsert": _load()}
    del data
    probes = _legacy_vectors(queries, metric, seed=1)
    found: dict[str, dict[str, list[list[str]]]] = {}
    modes = (("ann", AnnSettings()), ("brute_force", AnnSettings(threshold=2**62, persist=False)))
    for mode, settings in modes:
        with Pinecone(path=path, ann=settings) as pc:
            t = time.perf_counter()
            local = pc._local.index("bench")
            out[f"{mode}_open_s"] = round(time.perf_counter() - t, 2)
            assert local.uses_ann("") == (mode == "ann")
            if mode == "ann":
                ann = local._spaces[""]._ann
                assert ann is not None
                out["ann_kind"], out["ann_nprobe"] = ann.kind, ann.nprobe
                out["ann_calibrated_recall_at_10"] = round(ann.calibration.recall, 4) if ann.calibration else None
                out["ann_shortlist_top10"] = ann.shortlist(10, settings)
            found[mode] = {}
            for label, flt in (("query", None), ("query_filtered", FILTER)):
                ids, timing = _timed_queries(pc, probes, flt)
                found[mode][label] = ids
                out[f"{mode}_{label}"] = timing
        del pc, local
    for label in ("query", "query_filtered"):
        pairs = zip(found["ann"][label], found["brute_force"][label], strict=True)
        out[f"recall_at_10_{label}"] = round(float(np.mean([len(set(a) & set(b)) / len(b) for a, b in pairs])), 4)
    files = sorted(path.glob("**/ann/*.npz"))
    out["ann_file_mb"] = round(sum(f.stat().st_size for f in files) / 2**20, 1)
    for f in files:
        f.unlink()
    out["ann_rebuild_open_s"] = _open_s(path, AnnSettings())
    out["load_avg_end"] = _load()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_sdk(n: int, queries: int, workdir: Path) -> dict[str, Any]:
    import pinecone

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    server = subprocess.Popen([sys.executable, "-m", "localrag.cli", "serve", "--data", str(workdir / f"sdk{n}"),
                               "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                httpx.get(f"{url}/indexes", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        pc = pinecone.Pinecone(api_key="bench", host=url)
        pc.create_index(name="bench", dimension=DIM, metric="cosine")
        return run(pc.Index("bench"), n, queries)
    finally:
        server.terminate()
        server.wait(timeout=60)


def bench_inprocess(n: int, queries: int, workdir: Path) -> dict[str, Any]:
    from localrag.pinecone import Pinecone

    with Pinecone(path=workdir / f"local{n}") as pc:
        pc.create_index(name="bench", dimension=DIM, metric="cosine")
        return run(pc.Index("bench"), n, queries)


def document_rows(n: int, queries: int, workdir: Path) -> list[dict[str, Any]]:
    """bench_pinecone_documents.py's rows for ``n`` documents: in process, then through the SDK."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_pinecone_documents as docs

    corpus = docs.documents(n)
    rows = []
    for target, bench in (("in-process", docs.bench_inprocess), ("sdk", docs.bench_sdk)):
        where = workdir / f"documents-{target}-{n}"
        rows.append({"target": target, "load_avg_before": _load(), **bench(corpus, queries, where),
                     "load_avg_after": _load()})
        shutil.rmtree(where, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--legacy-sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--legacy-metrics", nargs="*", default=["cosine"],
                        help="metrics for the legacy rows; --all-metrics-up-to sets where all three run")
    parser.add_argument("--all-metrics-up-to", type=int, default=100_000,
                        help="legacy sizes up to this run every metric; larger ones --legacy-metrics only")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--vectors", nargs="*", default=["random"], choices=["random", "clustered"],
                        help="data kinds for the legacy rows (clustered: realistic stand-ins, see above)")
    parser.add_argument("--document-sizes", type=int, nargs="*", default=[10_000],
                        help="document-index rows (Documents API: upsert docs/s; text, query_string and dense "
                        "search p50/p95, plain and filtered; in process and through the SDK), as "
                        "bench_pinecone_documents.py measures them")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"dim": DIM, "top_k": 10, "filter": FILTER, "batch": BATCH,
                               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                               "sdk_over_rest": [], "in_process": [], "legacy_ann_vs_brute_force": [],
                               "document_index": [],
                               "vectors": {"random": "random normal, normalised (stand-ins)",
                                           "clustered": "REALISTIC STAND-INS, not model output: normalise(v_a + v_b"
                                           " + noise of norm 0.3) over real MiniLM embeddings of "
                                           f"{CLUSTER_SOURCES} SciFact/SQuAD passages (scale_corpus.py)"},
                               "command": " ".join(["python", *sys.argv])}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results["in_process"].append(bench_inprocess(n, args.queries, Path(tmp)))
            results["sdk_over_rest"].append(bench_sdk(n, args.queries, Path(tmp)))
        for n in args.document_sizes:
            results["document_index"] += document_rows(n, args.queries, Path(tmp))
        global _KIND
        for n, kind in [(n, kind) for n in args.legacy_sizes for kind in args.vectors]:
            _KIND = kind
            metrics = ["cosine", "dotproduct", "euclidean"] if n <= args.all_metrics_up_to else args.legacy_metrics
            for metric in metrics:
                results["legacy_ann_vs_brute_force"].append(bench_legacy(n, args.queries, Path(tmp), metric))
                if args.out:  # after each row: a late failure keeps the rows before it
                    args.out.write_text(json.dumps(results, indent=2))
                shutil.rmtree(Path(tmp) / f"legacy{n}{metric}", ignore_errors=True)  # disk: 1M is ~2 GB
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
