"""The learned search router (localrag/learn/router.py) against the fixed default, on held-out splits.

    python benchmarks/bench_router.py --data /tmp/bench-router     # each set ingested there once

Two judged sets, each with a training and a held-out split:
  * SciFact (BEIR): train on the *train* qrels' queries, measure on the 300 *test* queries;
  * SQuAD v1.1 dev as retrieval (question -> its paragraph; all 2,067 paragraphs ingested): questions
    of the first half of the articles train, of the second half are held out (``--squad-questions``
    sampled from each half, seed 13), so no paragraph is judged in both.
Every route of ``ROUTES`` searches every query once (one ingest per set; query embeddings cached), and
nDCG@10 per query and route is kept (``<data>/<set>-scores.json``, reused by a rerun). The table is
fitted on the training split only (``fit``: min_queries 20, min_gain 0.01) and the held-out queries
are routed by it. Adoption rule (issue 15): on both sets the router beats the fixed default
(``hybrid``, the configured search) on held-out nDCG@10, and it loses nowhere by more than 0.01:
neither overall nor in any query class (question type x length) with at least 20 held-out queries.
Also measured: one table fitted on both training splits together (``shared_table``, what a shipped
default would be) and each set's table without the rerank route. Writes benchmarks/results/router.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localrag.config import load_settings
from localrag.engine import LocalRAG
from localrag.eval.beir import BeirDataset, load_beir
from localrag.eval.runner import eval_namespace, ingest_dataset
from localrag.learn.router import DEFAULT_ROUTE, ROUTES, QueryFeatures, RouteTable, bucket_keys, fit, query_features
from localrag.learn.router_train import route_scores

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "router.json"
SHARED = Path("/work/shared/data")
K_CHUNKS = 30  # chunk hits per search, deduplicated to documents for nDCG@10
MIN_QUERIES, MIN_GAIN, MAX_LOSS, MIN_CLASS = 20, 0.01, 0.01, 20
log = logging.getLogger("bench_router")


def scifact_splits(shared: Path) -> tuple[BeirDataset, BeirDataset]:
    root = shared / "scifact"
    return load_beir(root, "train"), load_beir(root, "test")


def squad_splits(shared: Path, n: int) -> tuple[BeirDataset, BeirDataset]:
    data = load_beir(shared / "squad-v1.1-dev", "test")

    def article(q: str) -> int:
        return int(next(iter(data.qrels[q])).split("_", 1)[0])

    articles = sorted({article(q) for q in data.queries})
    first = set(articles[: len(articles) // 2])
    rng = random.Random(13)
    halves = []
    for in_first in (True, False):
        ids = sorted(q for q in data.queries if (article(q) in first) == in_first)
        ids = sorted(rng.sample(ids, min(n, len(ids))))
        halves.append(BeirDataset(data.root, {q: data.queries[q] for q in ids}, {q: data.qrels[q] for q in ids}))
    return halves[0], halves[1]


def mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def query_class(f: QueryFeatures) -> str:
    return bucket_keys(f)[1]  # question type x length


Scores = dict[str, dict[str, float]]  # route -> query id -> nDCG@10
Feats = dict[str, QueryFeatures]


def set_scores(name: str, rag: LocalRAG, train: BeirDataset, test: BeirDataset, data: Path
               ) -> tuple[dict[str, Scores], dict[str, Feats], float | None]:
    """Per split: every route's nDCG@10 per query (cached in ``<data>/<set>-scores.json``) and query features."""
    namespace = eval_namespace(train)
    cache = data / f"{name}-scores.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
    else:
        started = time.perf_counter()
        cached = {split: route_scores(rag, {q: (namespace, t) for q, t in ds.queries.items()}, ds.qrels, k=K_CHUNKS)
                  for split, ds in (("train", train), ("test", test))}
        cached["seconds"] = round(time.perf_counter() - started, 1)
        cache.write_text(json.dumps(cached))
    doc_freq = rag.doc_freq(namespace)
    feats = {split: {q: query_features(ds.queries[q], doc_freq) for q in ds.queries}
             for split, ds in (("train", train), ("test", test))}
    return {"train": cached["train"], "test": cached["test"]}, feats, cached.get("seconds")


def held_out(table: RouteTable, feats: Feats, scores: Scores) -> dict[str, Any]:
    """The fixed default against ``table`` on held-out queries: overall, per query class, worst change."""
    ids = sorted(feats)
    chosen = {q: table.choose(feats[q]).route for q in ids}
    default = {q: scores[DEFAULT_ROUTE][q] for q in ids}
    routed = {q: scores[chosen[q]][q] for q in ids}
    classes: dict[str, list[str]] = {}
    for q in ids:
        classes.setdefault(query_class(feats[q]), []).append(q)
    per_class: dict[str, dict[str, Any]] = {
        c: {"queries": len(qs), "default": mean([default[q] for q in qs]), "router": mean([routed[q] for q in qs]),
            "routes": {r: sum(1 for q in qs if chosen[q] == r) for r in sorted({chosen[q] for q in qs})}}
        for c, qs in sorted(classes.items())
    }
    overall = {"default": mean(list(default.values())), "router": mean(list(routed.values()))}
    worst = min([overall["router"] - overall["default"]]
                + [v["router"] - v["default"] for v in per_class.values() if v["queries"] >= MIN_CLASS])
    return {"table": table.to_json()["entries"], "held_out_ndcg@10": overall,
            "gain": round(overall["router"] - overall["default"], 4), "worst_class_or_overall_change": round(worst, 4),
            "route_share": {r: round(sum(1 for q in ids if chosen[q] == r) / len(ids), 3)
                            for r in sorted(set(chosen.values()))},
            "per_class": per_class}


def without(scores: Scores, route: str) -> Scores:
    return {r: v for r, v in scores.items() if r != route}


def evaluate_set(scores: dict[str, Scores], feats: dict[str, Feats]) -> dict[str, Any]:
    """The set's own table (fitted on its training split) on its held-out split, with references."""
    table = fit(feats["train"], scores["train"], default=DEFAULT_ROUTE, min_queries=MIN_QUERIES, min_gain=MIN_GAIN)
    test_ids = sorted(feats["test"])
    # references: each route alone, the best fixed route chosen on train, the per-query oracle
    best_train = max(sorted(ROUTES), key=lambda r: mean(list(scores["train"][r].values())))
    no_rerank = fit(feats["train"], without(scores["train"], "hybrid+rerank"), min_queries=MIN_QUERIES,
                    min_gain=MIN_GAIN)
    return {
        "train_queries": len(feats["train"]), "test_queries": len(test_ids),
        **held_out(table, feats["test"], scores["test"]),
        "each_route_held_out": {r: mean([scores["test"][r][q] for q in test_ids]) for r in ROUTES},
        "each_route_train": {r: mean(list(scores["train"][r].values())) for r in ROUTES},
        "best_fixed_route_on_train": best_train,
        "oracle_held_out": mean([max(scores["test"][r][q] for r in ROUTES) for q in test_ids]),
        "router_without_rerank_route": {k: v for k, v in held_out(no_rerank, feats["test"], scores["test"]).items()
                                        if k in ("table", "held_out_ndcg@10", "gain",
                                                 "worst_class_or_overall_change")},
        "other_fit_settings_held_out": {
            f"min_queries={m},min_gain={g}": held_out(fit(feats["train"], scores["train"], min_queries=m,
                                                          min_gain=g), feats["test"], scores["test"])["gain"]
            for m, g in ((10, 0.01), (40, 0.01), (20, 0.02))
        },
    }


def shared_table(every: Mapping[str, tuple[dict[str, Scores], dict[str, Feats]]]) -> RouteTable:
    """One table fitted on every set's training split together (what a shipped default would be)."""
    feats: Feats = {}
    scores: Scores = {r: {} for r in ROUTES}
    for name, (set_scores_, set_feats) in every.items():
        for q, f in set_feats["train"].items():
            feats[f"{name}:{q}"] = f
            for r in ROUTES:
                scores[r][f"{name}:{q}"] = set_scores_["train"][r][q]
    return fit(feats, scores, default=DEFAULT_ROUTE, min_queries=MIN_QUERIES, min_gain=MIN_GAIN)


def adoption(sets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    beats = all(s["gain"] > 0 for s in sets.values())
    within = all(s["worst_class_or_overall_change"] >= -MAX_LOSS for s in sets.values())
    return {"rule": f"router beats the fixed default on every set's held-out split, and no set or query class "
                    f"(>= {MIN_CLASS} held-out queries) loses more than {MAX_LOSS} nDCG@10",
            "beats_default_everywhere": beats, "loses_nowhere_over_limit": within, "adopted": beats and within}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/bench-router"))
    ap.add_argument("--squad-questions", type=int, default=500, help="questions sampled from each half")
    ap.add_argument("--sets", default="scifact,squad")
    ap.add_argument("--shared", type=Path, default=SHARED, help="folder holding scifact/ and squad-v1.1-dev/")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    splits = {"scifact": lambda: scifact_splits(args.shared), "squad": lambda: squad_splits(args.shared,
                                                                                              args.squad_questions)}
    out: dict[str, Any] = {"routes": {n: dataclasses.asdict(r) for n, r in ROUTES.items()},
                           "default_route": DEFAULT_ROUTE, "fit": {"min_queries": MIN_QUERIES, "min_gain": MIN_GAIN},
                           "sets": {}}
    every: dict[str, tuple[dict[str, Scores], dict[str, Feats]]] = {}
    for name in args.sets.split(","):
        train, test = splits[name]()
        data = args.data / name
        settings = load_settings(data).with_overrides(
            {"server": {"result_cache_size": 0, "embed_cache_size": 50_000},
             "learn": {"feedback": False, "router": False}})
        with LocalRAG(data, settings=settings) as rag:
            started = time.perf_counter()
            ingest = ingest_dataset(rag, train)
            ingest["wall_seconds"] = round(time.perf_counter() - started, 1)
            scores, feats, seconds = set_scores(name, rag, train, test, args.data)
        every[name] = (scores, feats)
        out["sets"][name] = {"ingest": ingest, "search_seconds_all_routes": seconds, **evaluate_set(scores, feats)}
        log.info("%s: default %s router %s", name, out["sets"][name]["held_out_ndcg@10"]["default"],
                 out["sets"][name]["held_out_ndcg@10"]["router"])
    out["adoption_per_set_tables"] = adoption(out["sets"])
    table = shared_table(every)
    out["shared_table"] = {name: held_out(table, feats["test"], scores["test"])
                           for name, (scores, feats) in every.items()}
    out["adoption_shared_table"] = adoption(out["shared_table"])
    out["note"] = ("SciFact: all train-split queries train, the 300 test queries are held out. SQuAD: "
                   f"{args.squad_questions} questions from each half of the articles (seed 13). hybrid+rerank uses "
                   "the shipped cross-encoder (rerank.model = trained) on 20 candidates; that model was trained "
                   "on SciFact train queries, so its SciFact train-split scores are optimistic "
                   "(router_without_rerank_route fits without it). shared_table: one table fitted on both "
                   "training splits together.")
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({n: {"held_out_ndcg@10": s["held_out_ndcg@10"], "worst": s["worst_class_or_overall_change"],
                          "shared": out["shared_table"][n]["held_out_ndcg@10"]} for n, s in out["sets"].items()}
                     | {k: out[k] for k in ("adoption_per_set_tables", "adoption_shared_table")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
