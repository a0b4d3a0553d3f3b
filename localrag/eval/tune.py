"""``localrag tune``: search fusion, alpha, RRF k, candidate depth, BM25 k1/b and reranking on judged queries.

First-stage lists are computed once per query: the dense list through the engine, and one BM25
list per (k1, b) from an in-memory index over the namespace's chunks, so the stored keyword
index is never touched while searching. Every fusion setting is then scored from those lists
with the engine's own fusion functions and the same truncation as ``Retriever``, so a score
here equals what ``localrag eval`` measures for the same settings. Reranking is judged through
the engine itself (``SearchRequest.rerank``) on a fixed subset, as it costs a model call per query.

The search is coordinate-wise (fusion grid, then BM25 grid, then the fusion grid again) and a
result replaces the current settings only when it beats them by ``min_gain`` on the tuning split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.config import Settings
from localrag.errors import InvalidInputError, ModelNotFoundError, NotFoundError
from localrag.eval.metrics import ndcg_at_k
from localrag.eval.runner import DEPTH, SEARCH_K, sample_ids
from localrag.index import fusion
from localrag.index.bm25 import BM25Index
from localrag.index.tokenize import TextTokenizer
from localrag.protocols import ScoredKeys
from localrag.types import FusionMethod, SearchRequest

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TunePoint:
    """One setting of everything ``tune`` searches (hybrid mode)."""

    fusion: FusionMethod = "rrf"
    alpha: float = 0.5
    rrf_k: int = 60
    candidates: int = 100
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    rerank: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> TunePoint:
        s, bm = settings.search, settings.bm25
        rerank = getattr(settings, "rerank", None)
        return cls(s.fusion, s.alpha, s.rrf_k, s.candidates, bm.k1, bm.b, bool(getattr(rerank, "enabled", False)))

    def request(self, query: str, k: int, namespace: str) -> SearchRequest:
        return SearchRequest(query, k, "hybrid", namespace, None, self.fusion, self.alpha, self.rrf_k,
                             self.candidates, rerank=self.rerank)

    def overrides(self, settings: Settings) -> dict[str, dict[str, Any]]:
        """The settings sections this point changes (``rerank`` only where the engine has it)."""
        out: dict[str, dict[str, Any]] = {
            "search": {"fusion": self.fusion, "alpha": self.alpha, "rrf_k": self.rrf_k, "candidates": self.candidates},
            "bm25": {"k1": self.bm25_k1, "b": self.bm25_b},
        }
        if hasattr(settings, "rerank"):
            out["rerank"] = {"enabled": self.rerank}
        return out


@dataclass(frozen=True, slots=True)
class Grid:
    rrf_k: tuple[int, ...] = (10, 20, 40, 60, 100)
    alpha: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    candidates: tuple[int, ...] = (100, 300, 500)
    bm25_k1: tuple[float, ...] = (0.9, 1.2, 1.5, 2.0)
    bm25_b: tuple[float, ...] = (0.5, 0.75, 0.9)
    rerank_candidates: tuple[int, ...] = (20, 50)


@dataclass(frozen=True, slots=True)
class Judged:
    """Queries with graded relevant documents (BEIR qrels, or judgments from feedback)."""

    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]

    def subset(self, ids: Iterable[str]) -> Judged:
        keep = [q for q in ids if q in self.queries]
        return Judged({q: self.queries[q] for q in keep}, {q: self.qrels.get(q, {}) for q in keep})


@dataclass(frozen=True, slots=True)
class TuneResult:
    base: TunePoint
    base_score: float
    best: TunePoint
    best_score: float
    queries: int
    trials: tuple[tuple[TunePoint, float], ...] = ()
    rerank: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": asdict(self.base),
            "base_ndcg@10": round(self.base_score, 4),
            "best": asdict(self.best),
            "best_ndcg@10": round(self.best_score, 4),
            "queries": self.queries,
            "trials": len(self.trials),
            "top_trials": [
                {**asdict(p), "ndcg@10": round(s, 4)} for p, s in sorted(self.trials, key=lambda t: -t[1])[:10]
            ],
            "rerank": dict(self.rerank),
            "seconds": round(self.seconds, 1),
        }


class Candidates:
    """First-stage lists for a fixed set of queries: one dense list, one BM25 list per (k1, b)."""

    def __init__(self, rag: LocalRAG, namespace: str, queries: Mapping[str, str], depth: int) -> None:
        ns_id = rag.store.namespace_id(namespace)
        if ns_id is None:
            raise NotFoundError(f"namespace {namespace!r} does not exist; ingest the dataset first")
        self.rag = rag
        self.namespace = namespace
        self.queries = dict(queries)
        self.depth = depth
        doc_ids, _, chunk_keys, chunk_doc = rag.store.filter_table(ns_id)
        self.doc_of = {int(key): doc_ids[int(pos)] for key, pos in zip(chunk_keys, chunk_doc, strict=True)}
        self._ns_id = ns_id
        self._texts: tuple[Any, list[str]] | None = None
        self._keyword: dict[tuple[float, float], dict[str, ScoredKeys]] = {}
        self.dense = self._dense_lists()

    def _dense_lists(self) -> dict[str, ScoredKeys]:
        # One query per call, as ``localrag eval`` runs them: int8 dynamic quantisation scales
        # activations per batch, so a query embedded in a batch can differ in the last digits.
        out: dict[str, ScoredKeys] = {}
        for qid, text in self.queries.items():
            result = self.rag.retrieve([SearchRequest(text, self.depth, "dense", self.namespace, rerank=False)])[0]
            out[qid] = [(hit.chunk_id, hit.score) for hit in result.hits]
        return out

    def keyword(self, k1: float, b: float) -> dict[str, ScoredKeys]:
        cached = self._keyword.get((k1, b))
        if cached is not None:
            return cached
        if self._texts is None:
            self._texts = self.rag.store.index_texts(None, self._ns_id)
        bm = self.rag.settings.bm25
        index = BM25Index(TextTokenizer(stem=bm.stem, stopwords=bm.stopwords), k1=k1, b=b)
        index.add(*self._texts)
        lists = {qid: index.search(text, self.depth) for qid, text in self.queries.items()}
        self._keyword[(k1, b)] = lists
        return lists

    def ranked_docs(self, point: TunePoint, qid: str, k: int = SEARCH_K) -> list[str]:
        """Document ranking exactly as ``Retriever`` then ``localrag eval`` would produce it."""
        depth = max(point.candidates, k)
        if depth > self.depth:
            raise InvalidInputError(f"candidate depth {depth} exceeds the precomputed depth {self.depth}")
        dense = self.dense[qid][:depth]
        keyword = self.keyword(point.bm25_k1, point.bm25_b)[qid][:depth]
        if point.fusion == "weighted":
            ranked = fusion.weighted(dense, keyword, point.alpha)
        else:
            ranked = fusion.rrf([dense, keyword], point.rrf_k)
        docs = (self.doc_of.get(key) for key, _ in ranked[:k])
        return list(dict.fromkeys(d for d in docs if d is not None))[:DEPTH]

    def scores(self, point: TunePoint, judged: Judged) -> dict[str, float]:
        return {q: ndcg_at_k(self.ranked_docs(point, q), judged.qrels[q], 10) for q in judged.queries}


def mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def _fusion_points(start: TunePoint, grid: Grid) -> list[TunePoint]:
    points = [replace(start, fusion="rrf", rrf_k=k, candidates=c) for k in grid.rrf_k for c in grid.candidates]
    points += [replace(start, fusion="weighted", alpha=a, candidates=c) for a in grid.alpha for c in grid.candidates]
    return points


def tune(
    rag: LocalRAG,
    judged: Judged,
    namespace: str,
    *,
    grid: Grid = Grid(),
    min_gain: float = 0.002,
    rerank_queries: int = 100,
    seed: int = 13,
    candidates: Candidates | None = None,
    on_trial: Callable[[TunePoint, float], None] | None = None,
) -> TuneResult:
    """Best settings for ``judged`` (mean nDCG@10), starting from the engine's current ones."""
    if not judged.queries:
        raise InvalidInputError("tune needs at least one judged query")
    started = time.perf_counter()
    base = TunePoint.from_settings(rag.settings)
    depth = max([*grid.candidates, base.candidates, SEARCH_K])
    lists = candidates or Candidates(rag, namespace, judged.queries, depth)
    trials: dict[TunePoint, float] = {}

    def score(point: TunePoint) -> float:
        if point not in trials:
            trials[point] = mean(lists.scores(replace(point, rerank=False), judged).values())
            if on_trial is not None:
                on_trial(point, trials[point])
        return trials[point]

    def best_of(points: Sequence[TunePoint], current: TunePoint) -> TunePoint:
        # max() keeps the first of equal scores: the current point wins ties.
        return max([current, *points], key=score)

    base_first = replace(base, rerank=False)
    current = best_of(_fusion_points(base_first, grid), base_first)
    bm25 = [replace(current, bm25_k1=k1, bm25_b=b) for k1 in grid.bm25_k1 for b in grid.bm25_b]
    current = best_of(bm25, current)
    current = best_of(_fusion_points(current, grid), current)
    if score(current) < score(base_first) + min_gain:
        current = base_first
    rerank_report: dict[str, Any] = {}
    if reranker_available(rag):
        current, rerank_report = _tune_rerank(rag, judged, namespace, current, grid, min_gain, rerank_queries, seed)
    elif base.rerank:
        current = replace(current, rerank=True)  # no reranker to judge with: keep the configured choice
    result = TuneResult(
        base, score(base_first), current, score(replace(current, rerank=False)), len(judged.queries),
        tuple(trials.items()), rerank_report, time.perf_counter() - started,
    )
    log.info("tuned %d settings on %d queries in %.1fs", len(trials), len(judged.queries), result.seconds)
    return result


def reranker_available(rag: LocalRAG) -> bool:
    """True when the engine has a reranker to judge with (``rerank.model`` set and loadable)."""
    if not hasattr(rag.settings, "rerank") or "rerank" not in {f.name for f in fields(SearchRequest)}:
        return False
    try:
        return getattr(rag, "reranker", None) is not None
    except ModelNotFoundError as e:
        log.warning("reranking is not tuned: %s", e)
        return False


def engine_scores(rag: LocalRAG, judged: Judged, namespace: str, point: TunePoint) -> dict[str, float]:
    """nDCG@10 per query through the engine itself (the keyword side uses the stored BM25 index)."""
    out: dict[str, float] = {}
    for qid, text in judged.queries.items():
        result = rag.retrieve([point.request(text, SEARCH_K, namespace)])[0]
        ranked = list(dict.fromkeys(hit.doc_id for hit in result.hits))[:DEPTH]
        out[qid] = ndcg_at_k(ranked, judged.qrels[qid], 10)
    return out


def _tune_rerank(
    rag: LocalRAG, judged: Judged, namespace: str, current: TunePoint, grid: Grid, min_gain: float,
    n: int, seed: int,
) -> tuple[TunePoint, dict[str, Any]]:
    subset = judged.subset(sample_ids(list(judged.queries), n, seed))
    off = replace(current, rerank=False)
    # The first stage runs on the stored BM25 index, whose k1/b may differ from the tuned ones;
    # both arms share it, so the comparison is fair.
    results = {"off": mean(engine_scores(rag, subset, namespace, off).values())}
    best, best_score = off, results["off"]
    for k1 in grid.rerank_candidates:
        point = replace(current, rerank=True, candidates=k1)
        results[f"on@{k1}"] = mean(engine_scores(rag, subset, namespace, point).values())
        if results[f"on@{k1}"] >= best_score + min_gain:
            best, best_score = point, results[f"on@{k1}"]
    return best, {"queries": len(subset.queries), "seed": seed, "ndcg@10": {k: round(v, 4) for k, v in results.items()}}


# -- the dataset workflow behind ``localrag tune`` ---------------------------------------------
def judged_split(root: Any, split: str) -> Judged:
    from localrag.eval.beir import load_beir

    dataset = load_beir(root, split)
    return Judged(dataset.queries, dataset.qrels)


def judged_from_feedback(items: Iterable[Mapping[str, Any]]) -> Judged:
    """Stored feedback (``rag.feedback_items``) as judged queries: a chunk judged relevant makes its
    document relevant (grade 1); the latest judgment of a (query, document) pair wins."""
    grades: dict[str, dict[str, int]] = {}
    for item in items:
        grades.setdefault(str(item["query"]), {})[str(item["doc_id"])] = 1 if item["relevant"] else 0
    kept = [(q, g) for q, g in grades.items() if any(g.values())]
    ids = [f"feedback:{i}" for i in range(len(kept))]
    return Judged(dict(zip(ids, (q for q, _ in kept), strict=True)), dict(zip(ids, (g for _, g in kept), strict=True)))


def tune_dataset(
    rag: LocalRAG,
    root: Any,
    *,
    split: str = "train",
    test_split: str | None = "test",
    judged: Judged | None = None,
    grid: Grid = Grid(),
    min_gain: float = 0.002,
    rerank_queries: int = 100,
    seed: int = 13,
) -> tuple[TuneResult, dict[str, Any]]:
    """Tune on ``split`` (or on ``judged``, e.g. feedback) and score defaults vs tuned on ``test_split``."""
    from localrag.eval.beir import load_beir
    from localrag.eval.runner import eval_namespace, ingest_dataset

    dataset = load_beir(root, split)
    ingest_dataset(rag, dataset)
    namespace = eval_namespace(dataset)
    train = judged if judged is not None else Judged(dataset.queries, dataset.qrels)
    test = judged_split(root, test_split) if test_split else Judged({}, {})
    # One set of first-stage lists for both splits: each BM25 variant is built once.
    union = {f"tune:{q}": t for q, t in train.queries.items()} | {f"test:{q}": t for q, t in test.queries.items()}
    lists = Candidates(rag, namespace, union, max([*grid.candidates, SEARCH_K, rag.settings.search.candidates]))
    prefixed_train = Judged({f"tune:{q}": t for q, t in train.queries.items()},
                            {f"tune:{q}": r for q, r in train.qrels.items()})
    result = tune(rag, prefixed_train, namespace, grid=grid, min_gain=min_gain, rerank_queries=rerank_queries,
                  seed=seed, candidates=lists)
    report: dict[str, Any] = {"dataset": str(root), "split": split, "namespace": namespace, **result.as_dict()}
    if test.queries:
        prefixed = Judged({f"test:{q}": t for q, t in test.queries.items()},
                          {f"test:{q}": r for q, r in test.qrels.items()})
        before = mean(lists.scores(replace(result.base, rerank=False), prefixed).values())
        after = mean(lists.scores(replace(result.best, rerank=False), prefixed).values())
        report["test"] = {"split": test_split, "queries": len(test.queries), "default_ndcg@10": round(before, 4),
                          "tuned_ndcg@10": round(after, 4), "delta": round(after - before, 4),
                          "note": "first stage only (reranking judged separately)"}
    return result, report


def save_tuned(data_dir: Any, point: TunePoint, settings: Settings, report: Mapping[str, Any]) -> Path:
    """Write the tuned settings into ``<data>/localrag.toml`` (other settings kept) and the report
    into ``<data>/tuned.json``. Settings are per data directory: every namespace shares them, and a
    changed BM25 k1/b rebuilds the keyword indexes on the next open."""
    import json

    from localrag.config import update_settings_file

    path = update_settings_file(data_dir, point.overrides(settings), written_by="localrag tune")
    (Path(data_dir) / "tuned.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return path
