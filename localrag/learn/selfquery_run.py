"""Self-query in the search path: ``learn.self_query = off | boost | filter`` (or a request's ``self_query``).

``LocalRAG.retrieve`` hands requests here when self-query is on. A request that brings its own filter is
left alone (the user's filter wins). Otherwise the question's proposal (learn/selfquery.py) is read over
the namespace's catalogue (learn/catalogue.py, rebuilt when the store changes) and:

* ``filter``: the confident conditions become the request's filter;
* ``boost``: the plain and the filtered searches both run and their lists are fused by reciprocal rank,
  so matching hits rise and strong non-matching ones stay;
* nothing, when no condition reaches ``learn.self_query_min_confidence``.

Every result carries ``self_query``: the proposal (filter, confidence, conditions) and how it was applied.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from localrag.errors import InvalidInputError
from localrag.learn.catalogue import Catalogue, build_catalogue
from localrag.learn.selfquery import FilterModel, Proposal, SelfQuery
from localrag.types import Hit, SearchRequest, SearchResult

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

log = logging.getLogger(__name__)

MODES = ("off", "boost", "filter")
RRF_K = 60


def check_mode(mode: str | None) -> str | None:
    if mode is not None and mode not in MODES:
        raise InvalidInputError(f"self_query must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def mode_of(request: SearchRequest, default: str) -> str:
    return check_mode(request.self_query) or default


class SelfQueryRunner:
    """Proposals per request, catalogues per namespace and store generation. ``clock`` gives "now"."""

    def __init__(self, rag: LocalRAG, clock: Callable[[], date] = date.today) -> None:
        self.rag = rag
        self.clock = clock
        self._catalogues: dict[int, tuple[int, Catalogue]] = {}
        self._model: FilterModel | None = None
        self._model_loaded = False
        self._lock = threading.Lock()

    def catalogue(self, namespace: str) -> Catalogue:
        rag = self.rag
        ns_id = rag.store.namespace_id(namespace)
        if ns_id is None:
            return Catalogue(0)
        rag._sync()
        with rag._rw.read():
            generation = rag.indexes.generation
            cached = self._catalogues.get(ns_id)
            if cached is not None and cached[0] == generation:
                return cached[1]
            metadata = rag.retriever.filter_table(ns_id, generation)[1]
        catalogue = build_catalogue(metadata)
        with self._lock:
            self._catalogues[ns_id] = (generation, catalogue)
        return catalogue

    def model(self) -> FilterModel | None:
        """The local LLM's filter model (learn.self_query_llm), or None without a llama.cpp provider."""
        if not self.rag.settings.learn.self_query_llm:
            return None
        with self._lock:
            if not self._model_loaded:
                from localrag.learn.selfquery_llm import filter_model_of

                self._model = filter_model_of(self.rag.answers.generator)
                self._model_loaded = True
        return self._model

    def propose(self, question: str, namespace: str = "") -> Proposal:
        settings = self.rag.settings.learn
        reader = SelfQuery(self.model(), settings.self_query_min_confidence)
        return reader.propose(question, self.catalogue(namespace), self.clock())

    def run(self, requests: Sequence[SearchRequest], modes: Sequence[str]) -> list[SearchResult]:
        searches: list[SearchRequest] = []
        plans: list[tuple[Proposal | None, str, list[int], float]] = []
        proposal: Proposal | None
        for request, mode in zip(requests, modes, strict=True):
            plain = dataclasses.replace(request, self_query="off")
            if mode == "off" or request.filter:
                plans.append((None, "no", [len(searches)], 0.0))
                searches.append(plain)
                continue
            started = time.perf_counter()
            proposal = self.propose(request.query, request.namespace)
            ms = (time.perf_counter() - started) * 1000
            found = proposal.filter
            if found is None:
                plans.append((proposal, "no", [len(searches)], ms))
                searches.append(plain)
            elif mode == "filter":
                plans.append((proposal, "filter", [len(searches)], ms))
                searches.append(dataclasses.replace(plain, filter=found))
            else:
                plans.append((proposal, "boost", [len(searches), len(searches) + 1], ms))
                searches += [plain, dataclasses.replace(plain, filter=found)]
        results = self.rag.retrieve(searches)
        out = []
        for request, (proposal, applied, at, ms) in zip(requests, plans, strict=True):
            result = results[at[0]] if applied != "boost" else _fused(results[at[0]], results[at[1]], request.k)
            if proposal is not None:
                result = dataclasses.replace(result, timings={**result.timings, "self_query": ms},
                                             self_query=proposal.describe(applied))
            out.append(result)
        return out


def _fused(plain: SearchResult, filtered: SearchResult, k: int) -> SearchResult:
    """Reciprocal-rank fusion of the plain and the filtered lists: a hit in both (it matches the filter)
    gains the filtered list's share; the plain list's order decides among the rest."""
    scores: dict[int, float] = {}
    hits: dict[int, Hit] = {}
    for ranked in (plain.hits, filtered.hits):
        for rank, hit in enumerate(ranked):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
            hits.setdefault(hit.chunk_id, hit)
    order = sorted(scores, key=lambda key: -scores[key])[:k]
    fused = tuple(dataclasses.replace(hits[key], score=scores[key],
                                      scores={**hits[key].scores, "self_query": scores[key]}) for key in order)
    timings: dict[str, Any] = {name: plain.timings.get(name, 0.0) + filtered.timings.get(name, 0.0)
                               for name in {*plain.timings, *filtered.timings}}
    return dataclasses.replace(plain, hits=fused, timings=timings)
