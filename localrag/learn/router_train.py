"""Training the search router (learn/router.py) on judged queries: ``localrag learn --router``.

Every route searches every judged query once; nDCG@10 per (query, route) feeds ``router.fit``.
From stored feedback (``train_from_feedback``), a share of the judged queries (fixed seed) is held
out, the table is fitted on the rest, and it is saved to ``<data>/router.json`` only when on the
held-out queries it is not worse than the fixed search (the configured one) and wins somewhere.
Online feedback is off while measuring: it would answer the judged queries from their own votes.
benchmarks/bench_router.py uses ``route_scores`` on BEIR sets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from localrag.errors import InvalidInputError
from localrag.eval.metrics import ndcg_at_k
from localrag.learn.router import DEFAULT_ROUTE, ROUTES, TABLE_FILE, RouteTable, apply_route, fit, query_features
from localrag.types import SearchRequest

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

BATCH = 32
MIN_QUERIES = 8  # judged queries needed to hold some out and still fit


def route_scores(
    rag: LocalRAG,
    queries: Mapping[str, tuple[str, str]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    k: int = 30,
    unit: str = "doc",
) -> dict[str, dict[str, float]]:
    """``queries[id] = (namespace, text)`` -> nDCG@10 per route and query; ``unit``: judged ``doc`` ids
    (chunk hits deduplicated to documents) or ``chunk`` ids. ``rag`` should run with learn.router off."""
    ids = sorted(queries)
    out: dict[str, dict[str, float]] = {name: {} for name in ROUTES}
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        for name, route in ROUTES.items():
            requests = [apply_route(SearchRequest(queries[q][1], k, "hybrid", queries[q][0], strategy="none"), route)
                        for q in chunk]
            for q, result in zip(chunk, rag.retrieve(requests), strict=True):
                keys = [h.doc_id if unit == "doc" else str(h.chunk_id) for h in result.hits]
                out[name][q] = ndcg_at_k(list(dict.fromkeys(keys)), qrels[q], 10)
        log.info("router training: scored %d/%d queries on %d routes", start + len(chunk), len(ids), len(ROUTES))
    return out


def compare(table: RouteTable, rag: LocalRAG, queries: Mapping[str, tuple[str, str]],
            scores: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Mean nDCG@10 of the fixed default and of ``table``'s routes over ``queries``."""
    chosen = {q: table.choose(query_features(text, rag.doc_freq(ns))).route for q, (ns, text) in queries.items()}
    n = max(1, len(queries))
    return {"default": round(sum(scores[DEFAULT_ROUTE][q] for q in queries) / n, 4),
            "router": round(sum(scores[chosen[q]][q] for q in queries) / n, 4),
            "routes": {r: sum(1 for c in chosen.values() if c == r) for r in sorted(set(chosen.values()))}}


def train_from_feedback(
    rag: LocalRAG, *, holdout_share: float = 0.25, min_queries: int = 10, min_gain: float = 0.01, adopt: bool = True
) -> dict[str, Any]:
    """Fit a route table on the stored judgments (see the module docstring); returns the report."""
    from localrag.learn.consolidate import judged_queries
    from localrag.rerank.build import held_out

    judged = judged_queries(rag.feedback_items())
    if len(judged) < MIN_QUERIES:
        raise InvalidInputError(f"learn --router needs relevant judgments on at least {MIN_QUERIES} queries; "
                                f"there are {len(judged)}")
    ids = {f"{ns}\x00{q}": (ns, q) for ns, q in judged}
    qrels = {key: judged[pair] for key, pair in ids.items()}
    held = set(held_out(ids, max(1, round(len(ids) * holdout_share))))
    # the fixed routes as given: no online feedback, no routing on top of them
    feedback_off = rag.settings.with_overrides({"learn": {"feedback": False, "router": False}})
    saved_settings, rag.settings = rag.settings, feedback_off
    try:
        scores = route_scores(rag, ids, qrels, k=10, unit="chunk")
    finally:
        rag.settings = saved_settings
    train = {q: query_features(ids[q][1], rag.doc_freq(ids[q][0])) for q in ids if q not in held}
    table = fit(train, {r: {q: s[q] for q in train} for r, s in scores.items()}, min_queries=min_queries,
                min_gain=min_gain)
    test = {q: ids[q] for q in held}
    result = compare(table, rag, test, scores)
    adopted = adopt and bool(table.entries) and result["router"] >= result["default"]
    report = {"training_queries": len(train), "held_out_queries": len(test), "table": table.entries,
              "held_out_ndcg@10": result, "adopted": adopted}
    if adopted:
        # refitted on every judged query, so the held-out ones also shape the saved table
        final = fit({q: query_features(t, rag.doc_freq(ns)) for q, (ns, t) in ids.items()}, scores,
                    min_queries=min_queries, min_gain=min_gain)
        old = rag.router.table
        rag.router.table = replace_table(final, old, {"trained_on": "feedback", **report})
        rag.router.table.save(rag.path / TABLE_FILE)
        report["table"] = final.entries
    return report


def replace_table(new: RouteTable, old: RouteTable, meta: Mapping[str, Any]) -> RouteTable:
    """``new`` with ``meta``; votes on entries it keeps carry over (the rest concern routes it dropped)."""
    kept = {f"{k}\t{r}" for k, r in new.entries.items()}
    return RouteTable(dict(new.entries), new.default, {v: n for v, n in old.votes.items() if v in kept},
                      old.demote_votes, dict(meta))
