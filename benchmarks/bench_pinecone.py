"""Pinecone-mode throughput: upsert vectors/s and query p50/p95, through the official SDK against
``localrag serve`` (a separate process on 127.0.0.1) and in process, with and without a filter.

    python benchmarks/bench_pinecone.py --sizes 10000 100000 --out benchmarks/results/pinecone.json

``--legacy-sizes`` adds the legacy query rows (in process): the same probes answered through the
ANN candidates and by brute force, in one run, with recall@10 of the first against the second,
and the time to open the index (load from SQLite and build the ANN). ``--sizes`` may be empty to
run those rows alone. The vectors are stand-ins: random normal, 384-d, normalised, which is the
hard case for candidate generation (no clusters to exploit).

Prints JSON (and writes it to --out). Numbers depend on the machine; tests never assert them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def _timed_queries(pc: Any, probes: np.ndarray, flt: dict[str, Any] | None) -> tuple[list[list[str]], list[float]]:
    index = pc.Index("bench")
    index.query(vector=probes[0].tolist(), top_k=10, filter=flt)  # warm the filter cache once
    ids, samples = [], []
    for q in probes:
        t = time.perf_counter()
        matches = index.query(vector=q.tolist(), top_k=10, filter=flt).matches
        samples.append(time.perf_counter() - t)
        ids.append([m.id for m in matches])
    return ids, samples


def bench_legacy(n: int, queries: int, workdir: Path) -> dict[str, Any]:
    """ANN against brute force on one stored index: open it once with each setting."""
    from localrag.pinecone import Pinecone
    from localrag.pinecone.ann import AnnSettings

    path = workdir / f"legacy{n}"
    data = _vectors(n)
    started = time.perf_counter()
    with Pinecone(path=path) as pc:
        pc.create_index(name="bench", dimension=DIM, metric="cosine")
        index = pc.Index("bench")
        for start in range(0, n, BATCH):
            index.upsert(vectors=[{"id": f"v{i}", "values": data[i].tolist(), "metadata": {"genre": f"g{i % 10}"}}
                                  for i in range(start, min(n, start + BATCH))])
    out: dict[str, Any] = {"vectors": n, "upsert_vectors_per_s": round(n / (time.perf_counter() - started), 1)}
    del data
    probes = _vectors(queries, seed=1)
    found: dict[str, dict[str, list[list[str]]]] = {}
    for mode, settings in (("ann", AnnSettings()), ("brute_force", AnnSettings(threshold=2**62))):
        with Pinecone(path=path, ann=settings) as pc:
            t = time.perf_counter()
            local = pc._local.index("bench")
            out[f"{mode}_open_s"] = round(time.perf_counter() - t, 2)
            assert local.uses_ann("") == (mode == "ann")
            found[mode] = {}
            for label, flt in (("query", None), ("query_filtered", FILTER)):
                ids, samples = _timed_queries(pc, probes, flt)
                found[mode][label] = ids
                out[f"{mode}_{label}"] = _percentiles(samples)
    for label in ("query", "query_filtered"):
        pairs = zip(found["ann"][label], found["brute_force"][label], strict=True)
        out[f"recall_at_10_{label}"] = round(float(np.mean([len(set(a) & set(b)) / len(b) for a, b in pairs])), 4)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--legacy-sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"dim": DIM, "top_k": 10, "filter": FILTER, "batch": BATCH,
                               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                               "sdk_over_rest": [], "in_process": [], "legacy_ann_vs_brute_force": [],
                               "vectors": "random normal, normalised (stand-ins)"}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            results["in_process"].append(bench_inprocess(n, args.queries, Path(tmp)))
            results["sdk_over_rest"].append(bench_sdk(n, args.queries, Path(tmp)))
        for n in args.legacy_sizes:
            results["legacy_ann_vs_brute_force"].append(bench_legacy(n, args.queries, Path(tmp)))
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
