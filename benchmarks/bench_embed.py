"""Embedding throughput, cold start and agreement of the torch, ONNX fp32 and ONNX int8 paths.

    python benchmarks/bench_embed.py [--n 256] [--dataset ../shared/data/scifact] [--out FILE]

Passages are SciFact abstracts (title + text, most of them truncated at 256 tokens); short texts
are SciFact queries (claims of ~10-20 words), embedded as one batch and one by one. Every configuration runs in
its own process, so cold start is real and torch's process-wide thread setting cannot leak.
The ONNX files are exported into a fresh cache (timed) unless --cache-dir names a prepared one.
Figures are wall-clock on a shared machine: the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODELS = ("minilm-l6", "minilm-l6-onnx", "minilm-l6-onnx-int8")


def read_jsonl(path: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) >= n:
                break
    return rows


def worker(args: argparse.Namespace) -> None:
    """One configuration: cold start, then throughput over the passages; embeddings saved as .npy."""
    started = time.perf_counter()
    import numpy as np

    from localrag.embed.factory import load_embedder

    embedder = load_embedder(
        args.model, threads=args.threads, batch_size=args.batch, max_tokens=256, cache_dir=Path(args.cache_dir)
    )
    embedder.embed_query("warm-up query")
    cold = time.perf_counter() - started
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    # CPU seconds are reported beside wall time: on a shared machine they are the steadier figure
    # (with threads > 1 they also count onnxruntime's spinning worker threads).
    rates, cpu_rates = [], []
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        passages = embedder.embed_documents(texts["passages"])
        rates.append(len(texts["passages"]) / (time.perf_counter() - wall))
        cpu_rates.append(len(texts["passages"]) / max(time.process_time() - cpu, 1e-9))
    wall, cpu = time.perf_counter(), time.process_time()
    queries = embedder.embed_documents(texts["queries"])
    short_rate = len(texts["queries"]) / (time.perf_counter() - wall)
    short_cpu_rate = len(texts["queries"]) / max(time.process_time() - cpu, 1e-9)
    began = time.perf_counter()
    for query in texts["queries"][:32]:
        embedder.embed_query(query)
    query_ms = 1000 * (time.perf_counter() - began) / min(32, len(texts["queries"]))
    np.save(Path(args.save) / "passages.npy", passages)
    np.save(Path(args.save) / "queries.npy", queries)
    print(json.dumps({
        "cold_start_s": round(cold, 3),
        "sentences_per_s_best": round(max(rates), 1),
        "sentences_per_s_median": round(statistics.median(rates), 1),
        "sentences_per_s_runs": [round(r, 1) for r in rates],
        "sentences_per_cpu_s_best": round(max(cpu_rates), 1),
        "short_texts_per_s": round(short_rate, 1),
        "short_texts_per_cpu_s": round(short_cpu_rate, 1),
        "single_query_ms": round(query_ms, 2),
        "torch_imported": "torch" in sys.modules,
    }))


def run_worker(model: str, threads: int, args: argparse.Namespace, texts: Path, save: Path) -> dict[str, Any]:
    save.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, __file__, "--worker", "--model", model, "--threads", str(threads),
        "--batch", str(args.batch), "--repeats", str(args.repeats), "--cache-dir", str(args.cache_dir),
        "--texts", str(texts), "--save", str(save),
    ]
    load_before = os.getloadavg()[0]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"{model} threads={threads} failed:\n{result.stderr}")
    row: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    row.update(model=model, threads=threads, loadavg_1m_before=round(load_before, 2),
               loadavg_1m_after=round(os.getloadavg()[0], 2))
    return row


def time_exports(cache_dir: Path) -> dict[str, float]:
    code = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from localrag.embed.factory import prepare_models\n"
        "out = {}\n"
        "for name in ('minilm-l6-onnx', 'minilm-l6-onnx-int8'):\n"
        "    t = time.perf_counter(); prepare_models([name], cache_dir=Path(sys.argv[1]))\n"
        "    out[name] = round(time.perf_counter() - t, 2)\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(cache_dir)], capture_output=True, text=True, check=False, cwd=REPO
    )
    if result.returncode != 0:
        raise SystemExit(f"export failed:\n{result.stderr}")
    timings: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return timings


def cosine_stats(a: Any, b: Any) -> dict[str, float]:
    cosines = (a * b).sum(axis=1)
    return {"mean": round(float(cosines.mean()), 5), "min": round(float(cosines.min()), 5),
            "share_below_0.99": round(float((cosines < 0.99).mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared" / "data" / "scifact")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "embed.json")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="2,1", help="comma-separated thread counts")
    parser.add_argument("--cache-dir", type=Path, default=None, help="prepared cache (default: fresh, timed)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        worker(args)
        return

    import numpy as np

    docs = read_jsonl(args.dataset / "corpus.jsonl", args.n)
    queries = [q["text"] for q in read_jsonl(args.dataset / "queries.jsonl", args.n)]
    passages = [f"{d.get('title', '')} {d.get('text', '')}".strip() for d in docs]
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as scratch:
        work = Path(scratch)
        texts = work / "texts.json"
        texts.write_text(json.dumps({"passages": passages, "queries": queries}), encoding="utf-8")
        exports = None
        if args.cache_dir is None:
            args.cache_dir = work / "cache"
            exports = time_exports(args.cache_dir)
        rows = []
        for threads in [int(t) for t in args.threads.split(",")]:
            for model in MODELS:
                rows.append(run_worker(model, threads, args, texts, work / f"{model}-{threads}"))
                print(f"{model:22s} threads={threads} {rows[-1]['sentences_per_s_best']:7.1f}/s "
                      f"cold {rows[-1]['cold_start_s']:.2f}s", file=sys.stderr)
        first = int(args.threads.split(",")[0])
        load = {m: {k: np.load(work / f"{m}-{first}" / f"{k}.npy") for k in ("passages", "queries")}
                for m in MODELS}
    pairs = {"onnx_fp32_vs_torch": ("minilm-l6-onnx", "minilm-l6"),
             "onnx_int8_vs_torch": ("minilm-l6-onnx-int8", "minilm-l6"),
             "onnx_int8_vs_onnx_fp32": ("minilm-l6-onnx-int8", "minilm-l6-onnx")}
    agreement = {
        label: {kind: cosine_stats(load[a][kind], load[b][kind]) for kind in ("passages", "queries")}
        for label, (a, b) in pairs.items()
    }
    import onnxruntime
    import tokenizers

    report = {
        "benchmark": "embed",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": str(args.dataset.name),
        "n_passages": len(passages),
        "n_queries": len(queries),
        "mean_passage_words": round(statistics.mean(len(p.split()) for p in passages), 1),
        "batch_size": args.batch,
        "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "onnxruntime": onnxruntime.__version__, "tokenizers": tokenizers.__version__},
        "export_s": exports,
        "runs": rows,
        "cosine": agreement,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
