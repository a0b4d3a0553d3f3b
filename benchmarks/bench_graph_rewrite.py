"""The load-time graph rewrite (localrag/embed/graph.py) against onnxruntime's fused kernels, side by side.

    python benchmarks/bench_graph_rewrite.py [--rounds 3] [--out FILE]

In one process, alternating the two sessions round by round (the best round of each is kept, so a
noisy machine penalises both alike):
  - one SkipLayerNormalization node (with bias) on (16, 30, 384): the fused kernel vs Add + LayerNormalization;
  - the default int8 embedder on SciFact queries, one thread, batches of 1 and 16: CPU ms per query;
  - the shipped cross-encoder (localrag/rerank/shipped/reranker-minilm-scifact) scoring 20 SciFact abstracts per query.
A session "fused" is what onnxruntime makes of the file itself; "rewritten" is ``make_session``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localrag.embed.factory import load_embedder  # noqa: E402
from localrag.embed.onnx import make_session  # noqa: E402
from localrag.rerank.cross_encoder import OnnxCrossEncoder  # noqa: E402
from localrag.rerank.factory import shipped_reranker_dir  # noqa: E402

SCIFACT = REPO.parent / "shared" / "data" / "scifact"


def fused_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def best_cpu_ms(run: Callable[[], int], rounds: int) -> float:
    """Least CPU ms per item over ``rounds`` calls of ``run`` (which returns how many items it did)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        items = run()
        best = min(best, (time.process_time() - start) * 1000 / items)
    return round(best, 3)


def side_by_side(sessions: dict[str, Any], swap: Callable[[Any], None], run: Callable[[], int],
                 rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for _ in range(rounds):  # alternate, so both see the same machine
        for name, session in sessions.items():
            swap(session)
            run()  # warm-up of this shape
            out[name] = min(out.get(name, float("inf")), best_cpu_ms(run, 1))
    out["ratio_rewritten_to_fused"] = round(out["rewritten"] / out["fused"], 3)
    return out


def skip_layer_norm_part(rounds: int) -> dict[str, Any]:
    from onnx import TensorProto, helper, numpy_helper

    hidden = 384
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=hidden).astype(np.float32), name) for name in ("g", "b", "bias")]
    node = helper.make_node("SkipLayerNormalization", ["x", "s", "g", "b", "bias"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([node], "sln",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", "L", hidden]) for n in "xs"],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "L", hidden])], inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    feed = {n: rng.normal(size=(16, 30, hidden)).astype(np.float32) for n in "xs"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sln.onnx"
        path.write_bytes(model.SerializeToString())
        sessions = {"fused": fused_session(path, 1), "rewritten": make_session(path, 1)}
        current: dict[str, Any] = {}

        def run() -> int:
            for _ in range(100):
                current["s"].run(None, feed)
            return 100

        result = side_by_side(sessions, lambda s: current.update(s=s), run, rounds)
    return {"shape": [16, 30, hidden], "cpu_ms_per_call": result}


def embedder_part(queries: list[str], rounds: int) -> dict[str, Any]:
    embedder: Any = load_embedder("minilm-l6-onnx-int8", threads=1, batch_size=32, max_tokens=256)
    sessions = {"fused": fused_session(embedder._model_path, 1), "rewritten": embedder._session(1)}
    out: dict[str, Any] = {"queries": len(queries), "model": "minilm-l6-onnx-int8", "threads": 1}
    for batch in (1, 16):
        def run(batch: int = batch) -> int:
            for start in range(0, len(queries), batch):
                embedder.embed_queries(queries[start:start + batch])
            return len(queries)

        out[f"cpu_ms_per_query_batch_{batch}"] = side_by_side(
            sessions, lambda s: embedder._sessions.update({1: s}), run, rounds)
    embedder._sessions[1] = sessions["rewritten"]
    return out


def reranker_part(queries: list[str], passages: list[str], rounds: int) -> dict[str, Any]:
    reranker = OnnxCrossEncoder(shipped_reranker_dir(), threads=1)
    sessions = {"fused": fused_session(reranker.path, 1), "rewritten": reranker._session}

    def run() -> int:
        for i, query in enumerate(queries):
            reranker.score_pairs(query, passages[20 * i:20 * (i + 1)])
        return len(queries)

    result = side_by_side(sessions, lambda s: setattr(reranker, "_session", s), run, rounds)
    return {"queries": len(queries), "pairs_per_query": 20, "threads": 1, "cpu_ms_per_query": result}


def read_jsonl(path: Path, n: int) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "graph_rewrite.json")
    args = parser.parse_args()
    queries = [row["text"] for row in read_jsonl(args.dataset / "queries.jsonl", 512)]
    passages = [f"{row['title']}\n{row['text']}" for row in read_jsonl(args.dataset / "corpus.jsonl", 400)]
    results = {
        "machine": {"cpus": os.cpu_count(), "onnxruntime": ort.__version__, "load_average_at_start": os.getloadavg()},
        "method": "one process; the two sessions alternate each round; best round kept; CPU time",
        "skip_layer_norm": skip_layer_norm_part(args.rounds),
        "query_embedding": embedder_part(queries, args.rounds),
        "cross_encoder": reranker_part(queries[:20], passages, args.rounds),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
