"""Retrieval quality on SciFact test and SQuAD: first-stage modes, rerankers, query strategies, tuned settings.

    python benchmarks/bench_quality.py --data /tmp/eval-data                 # every group but embedder
    python benchmarks/bench_quality.py --rows first-stage,tuned --data DIR   # some groups; others kept
    python benchmarks/bench_quality.py --rows embedder --embedder DIR        # + a fine-tuned embedder

Writes benchmarks/results/quality.json (row groups not rerun are kept from the previous file) and
benchmarks/results/quality.png. Result and embedding caches are off so latencies are real; the
latency of an LLM strategy includes the generation time recorded when its text was first made
(completions are cached on disk, keyed by model and prompt, so reruns cost no generation).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localrag.config import Settings, load_settings
from localrag.engine import LocalRAG
from localrag.errors import LocalRagError
from localrag.eval.beir import BeirDataset, load_beir
from localrag.eval.metrics import recall_at_k
from localrag.eval.runner import Run, eval_namespace, evaluate_run, ingest_dataset, sample_ids
from localrag.eval.tune import TunePoint, tune_dataset
from localrag.types import SearchRequest

RESULTS = Path(__file__).resolve().parent / "results"
SCIFACT = Path("/work/shared/data/scifact")
SQUAD = Path("/work/shared/data/squad-v1.1-dev")
GROUPS = ("first-stage", "rerank", "strategies", "tuned", "squad", "embedder")
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "keyword": ("keyword", {}),
    "dense": ("dense", {}),
    "hybrid-rrf": ("hybrid", {"fusion": "rrf"}),
    "hybrid-weighted": ("hybrid", {"fusion": "weighted"}),
}
log = logging.getLogger("bench_quality")


def settings_for(data: Path, **sections: dict[str, Any]) -> Settings:
    base = load_settings(data).with_overrides({"server": {"result_cache_size": 0, "embed_cache_size": 0}})
    return base.with_overrides(sections) if sections else base


def subset(dataset: BeirDataset, ids: list[str]) -> BeirDataset:
    return BeirDataset(dataset.root, {q: dataset.queries[q] for q in ids}, dataset.qrels)


def first_stage(data: Path, test: BeirDataset) -> dict[str, Any]:
    with LocalRAG(data, settings=settings_for(data)) as rag:
        ingest_dataset(rag, test)
        return {name: evaluate_run(rag, test, eval_namespace(test), Run(name, mode, {**o, "rerank": False}))
                for name, (mode, o) in MODES.items()}


def rerank_rows(data: Path, test: BeirDataset, models: list[str], candidates: int, n: int | None) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    ids = sample_ids(list(test.queries), n, 13)
    part = subset(test, ids)
    tag = f" [{len(ids)}q, k1 {candidates}]" if len(ids) < len(test.queries) else ""  # a subset keeps its own rows
    for model in models:
        settings = settings_for(data, rerank={"model": model, "candidates": candidates})
        with LocalRAG(data, settings=settings) as rag:
            try:
                rag.reranker  # noqa: B018  (load now: a missing model is reported, not a crash mid-run)
            except LocalRagError as e:
                rows[f"*+rerank:{model}"] = {"unavailable": str(e)}
                continue
            for name, (mode, o) in MODES.items():
                for rerank in (False, True):
                    label = (f"{name}+rerank:{model}" if rerank else name) + tag
                    if label in rows:
                        continue
                    run = Run(label, mode, {**o, "rerank": rerank})  # type: ignore[arg-type]
                    rows[label] = {**evaluate_run(rag, part, eval_namespace(part), run), "queries": len(ids),
                                   "rerank_candidates": candidates if rerank else 0}
    return rows


def strategy_rows(data: Path, root: Path, n_train: int, n_test: int, seed: int, cache: Path) -> dict[str, Any]:
    from localrag.generate.factory import build_provider
    from localrag.query.cache import Completer, CompletionCache
    from localrag.query.strategies import Router, build_strategies

    settings = settings_for(data, generate={"threads": 1})
    completer = Completer(build_provider("llamacpp", settings.generate, settings.answer), CompletionCache(cache),
                          max_tokens=64)
    strategies = build_strategies(completer)
    train, test = load_beir(root, "train"), load_beir(root, "test")
    train_ids = sample_ids(list(train.queries), n_train, seed)
    test_ids = sample_ids(list(test.queries), n_test, seed)
    out: dict[str, Any] = {"train_queries": train_ids, "test_queries": test_ids, "seed": seed,
                           "llm": completer.generator.model, "train": {}, "test": {}}
    with LocalRAG(data, settings=settings) as rag:
        per_query: dict[str, dict[str, float]] = {}
        for name, strategy in strategies.items():
            run = Run(f"hybrid+{name}", "hybrid", {"rerank": False}, strategy)
            row = evaluate_run(rag, subset(train, train_ids), eval_namespace(train), run, per_query=True)
            per_query[name] = row.pop("per_query_ndcg@10")
            out["train"][run.name] = row
        table = Router.fit(subset(train, train_ids).queries, per_query)
        out["router_table"] = table
        best = max(out["train"], key=lambda k: out["train"][k]["ndcg@10"])
        out["train_winner"] = best
        all_runs = [Run(f"hybrid+{n}", "hybrid", {"rerank": False}, s) for n, s in strategies.items()]
        all_runs.append(Run("hybrid+router", "hybrid", {"rerank": False}, Router(strategies, table)))
        for run in all_runs:
            out["test"][run.name] = evaluate_run(rag, subset(test, test_ids), eval_namespace(test), run)
    return out


def tuned_rows(data: Path, root: Path, test: BeirDataset) -> dict[str, Any]:
    with LocalRAG(data, settings=settings_for(data)) as rag:
        result, report = tune_dataset(rag, root, split="train", test_split="test")
    best: TunePoint = result.best
    # A second engine with the tuned BM25 k1/b: its keyword index is rebuilt in memory on open.
    tuned = settings_for(data, bm25={"k1": best.bm25_k1, "b": best.bm25_b})
    with LocalRAG(data, settings=tuned, read_only=True) as rag:
        overrides = {"fusion": best.fusion, "alpha": best.alpha, "rrf_k": best.rrf_k, "candidates": best.candidates,
                     "rerank": best.rerank}
        row = evaluate_run(rag, test, eval_namespace(test), Run("tuned", "hybrid", overrides))
    return {"tune": report, "tuned": row}


def embedder_rows(data: Path, model: Path, target: Path, test: BeirDataset) -> dict[str, Any]:
    """The fine-tuned embedder (scripts/build_embedder.sh): ``data`` re-embedded into ``target``, the
    first-stage modes, then hybrid weighted + the trained reranker with k1 and blend chosen on the 100
    train queries held out of both trainings, reported on test."""
    from localrag.embed.build import read_config
    from localrag.embed.reembed import reembed
    from localrag.rerank.build import HOLDOUT_SEED, held_out

    if not (target / "store.sqlite3").is_file():
        reembed(data, target, str(model))
    train = load_beir(SCIFACT, "train")
    holdout = subset(train, held_out(train.queries, 100))
    out: dict[str, Any] = {"model": read_config(model)["training"], "data": str(target),
                           "holdout": {"queries": len(holdout.queries), "seed": HOLDOUT_SEED}, "first_stage": {},
                           "grid_holdout": {}}
    with LocalRAG(target, settings=settings_for(target)) as rag:
        for name, (mode, o) in MODES.items():
            out["first_stage"][name] = evaluate_run(rag, test, eval_namespace(test), Run(name, mode, {**o,
                                                                                                    "rerank": False}))
    grid: dict[tuple[int, float], float] = {}
    for blend in (0.4, 0.5, 0.6):
        with LocalRAG(target, settings=settings_for(target, rerank={"blend": blend})) as rag:
            for k1 in (30, 50):
                run = Run(f"k1 {k1}, blend {blend}", "hybrid", {"fusion": "weighted", "rerank": True,
                                                                "candidates": k1})
                grid[(k1, blend)] = evaluate_run(rag, holdout, eval_namespace(train), run)["ndcg@10"]
                out["grid_holdout"][run.name] = grid[(k1, blend)]
    k1, blend = max(grid, key=lambda cell: grid[cell])
    with LocalRAG(target, settings=settings_for(target, rerank={"blend": blend})) as rag:
        run = Run("hybrid-weighted+rerank:trained", "hybrid", {"fusion": "weighted", "rerank": True, "candidates": k1})
        out["best"] = {**evaluate_run(rag, test, eval_namespace(test), run), "k1": k1, "blend": blend,
                       "chosen_on": "held-out train queries"}
    return out


def squad_rows(data: Path, n: int, seed: int) -> dict[str, Any]:
    dataset = load_beir(SQUAD, "test")
    ids = sample_ids(list(dataset.queries), n, seed)
    out: dict[str, Any] = {"questions": len(ids), "seed": seed, "paragraphs": 2067, "modes": {}}
    with LocalRAG(data, settings=settings_for(data)) as rag:
        out["ingest"] = ingest_dataset(rag, dataset)
        namespace = eval_namespace(dataset)
        for name, (mode, o) in MODES.items():
            r1 = r5 = 0.0
            for qid in ids:
                request = SearchRequest(dataset.queries[qid], 15, mode, namespace, rerank=False, **o)  # type: ignore[arg-type]
                ranked = list(dict.fromkeys(h.doc_id for h in rag.retrieve([request])[0].hits))
                r1 += recall_at_k(ranked, dataset.qrels[qid], 1)
                r5 += recall_at_k(ranked, dataset.qrels[qid], 5)
            out["modes"][name] = {"recall@1": round(r1 / len(ids), 4), "recall@5": round(r5 / len(ids), 4)}
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    from localrag.eval.plot import plot_runs

    rows: dict[str, Any] = dict(results.get("first-stage", {}))
    rows.update({k: v for k, v in results.get("rerank", {}).items() if "ndcg@10" in v and "+rerank" in k})
    if "tuned" in results:
        rows["tuned"] = results["tuned"]["tuned"]
    if "embedder" in results:
        rows["hybrid-weighted, tuned embedder"] = results["embedder"]["first_stage"]["hybrid-weighted"]
        rows["... + rerank:trained (best)"] = results["embedder"]["best"]
    for name, row in results.get("strategies", {}).get("test", {}).items():
        rows[f"{name} ({len(results['strategies']['test_queries'])}q)"] = row
    if rows:
        plot_runs(rows, path, "SciFact test: nDCG@10 and p50 latency (2-core VM)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/eval-data"), help="eval data dir (reused)")
    parser.add_argument("--rows", default=",".join(g for g in GROUPS if g != "embedder"),
                        help=f"row groups: {', '.join(GROUPS)} (default: all but embedder)")
    parser.add_argument("--rerankers", default="trained", help="rerank.model values, comma-separated")
    parser.add_argument("--rerank-candidates", type=int, default=20)
    parser.add_argument("--rerank-queries", type=int, help="test queries for rerank rows (default: all)")
    parser.add_argument("--strategy-train", type=int, default=40)
    parser.add_argument("--strategy-test", type=int, default=100)
    parser.add_argument("--squad-questions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embedder", type=Path, help="a train-embedder folder (scripts/build_embedder.sh)")
    parser.add_argument("--embedder-data", type=Path, help="where --data is re-embedded with it (reused)")
    parser.add_argument("--llm-cache", type=Path, default=RESULTS / "quality_llm_cache.sqlite3")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    groups = [g.strip() for g in args.rows.split(",") if g.strip()]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown row groups: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    test = load_beir(SCIFACT, "test")
    for group in groups:
        started = time.perf_counter()
        log.info("running %s", group)
        if group == "first-stage":
            results[group] = first_stage(args.data, test)
        elif group == "rerank":
            models = [m.strip() for m in args.rerankers.split(",") if m.strip()]
            rows = rerank_rows(args.data, test, models, args.rerank_candidates, args.rerank_queries)
            results[group] = {**results.get(group, {}), **rows}  # other rerankers' rows are kept
        elif group == "strategies":
            results[group] = strategy_rows(args.data, SCIFACT, args.strategy_train, args.strategy_test, args.seed,
                                           args.llm_cache)
        elif group == "tuned":
            results[group] = tuned_rows(args.data, SCIFACT, test)
        elif group == "embedder":
            if args.embedder is None:
                parser.error("--rows embedder needs --embedder (build one with scripts/build_embedder.sh)")
            target = args.embedder_data or args.data.with_name(args.data.name + "-embedder")
            results[group] = embedder_rows(args.data, args.embedder, target, test)
        elif group == "squad":
            results[group] = squad_rows(args.data, args.squad_questions, args.seed)
        results.setdefault("seconds", {})[group] = round(time.perf_counter() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))  # after each group: a crash keeps what was done
    results["machine"] = "2-core VM shared with other jobs; latencies are noisy, compare rows of one run"
    args.out.write_text(json.dumps(results, indent=2))
    plot(results, args.out.with_suffix(".png"))
    print(json.dumps({k: v for k, v in results.items() if k != "strategies"}, indent=1)[:4000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
