"""Search over one namespace: filter to an allow-list, dense and keyword search, fusion, hydration."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from localrag.cache import LRUCache
from localrag.config import SearchSettings, ServerSettings
from localrag.errors import InvalidInputError
from localrag.filters import compile_filter, is_match_all, match_mask
from localrag.index import fusion
from localrag.index.manager import IndexManager
from localrag.protocols import Allow, Embedder, ScoredKeys
from localrag.store.sqlite import SQLiteStore
from localrag.types import Hit, SearchRequest, SearchResult

log = logging.getLogger(__name__)

MODES = ("dense", "keyword", "hybrid")
FUSIONS = ("rrf", "weighted")
_ALLOW_CACHE_SIZE = 64


@dataclass
class _Plan:
    """One request's way through a batch: its allow-list, candidates per index and timings."""

    skip: bool = False
    allow: Allow | None = None
    depth: int = 0
    dense: ScoredKeys = field(default_factory=list)
    keyword: ScoredKeys = field(default_factory=list)
    ranked: ScoredKeys = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _result_key(request: SearchRequest, generation: int) -> tuple[Any, ...]:
    flt = None if request.filter is None else json.dumps(request.filter, sort_keys=True, default=str)
    return (generation, request.query, request.k, request.mode, request.namespace, flt, request.fusion,
            request.alpha, request.rrf_k, request.candidates)


class Retriever:
    def __init__(
        self,
        store: SQLiteStore,
        indexes: IndexManager,
        embedder: Callable[[], Embedder],
        settings: SearchSettings,
        caches: ServerSettings | None = None,
    ) -> None:
        caches = caches or ServerSettings()
        # Query embeddings depend only on the text; results carry the generation in their key,
        # so any write makes older results unreachable.
        self.embed_cache: LRUCache[np.ndarray] = LRUCache("embedding", caches.embed_cache_size)
        self.result_cache: LRUCache[SearchResult] = LRUCache(
            "result", caches.result_cache_size, caches.result_cache_ttl_s
        )
        self.store = store
        self.indexes = indexes
        self._embedder = embedder
        self.settings = settings
        self._allow_cache: LRUCache[Allow] = LRUCache("allow", _ALLOW_CACHE_SIZE)
        self._tables: dict[int, tuple[int, Any]] = {}
        self._cache_lock = threading.Lock()

    def validate(self, request: SearchRequest) -> None:
        if not isinstance(request.query, str) or not request.query.strip():
            raise InvalidInputError("query must be a non-empty string")
        if not isinstance(request.k, int) or not 1 <= request.k <= self.settings.max_k:
            raise InvalidInputError(f"k must be an integer between 1 and {self.settings.max_k}; got {request.k!r}")
        if request.mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}; got {request.mode!r}")
        if request.fusion is not None and request.fusion not in FUSIONS:
            raise InvalidInputError(f"fusion must be one of {', '.join(FUSIONS)}; got {request.fusion!r}")
        if request.alpha is not None and not 0.0 <= request.alpha <= 1.0:
            raise InvalidInputError(f"alpha must lie in [0, 1]; got {request.alpha}")
        if request.filter is not None:
            compile_filter(request.filter)  # raises FilterError naming the problem

    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResult]:
        """Run a batch: cached results first, then one embedding call for every query that needs
        one and one FAISS search per group of requests sharing namespace, filter and depth."""
        for request in requests:
            self.validate(request)
        generation = self.indexes.generation
        results: list[SearchResult | None] = [None] * len(requests)
        keys: dict[int, tuple[Any, ...]] = {}
        for i, request in enumerate(requests):
            if self.result_cache.enabled:
                keys[i] = _result_key(request, generation)
                cached = self.result_cache.get(keys[i])
                if cached is not None:
                    results[i] = SearchResult(cached.hits, {"embed": 0.0, "search": 0.0, "cached": 1.0})
        pending = [i for i, r in enumerate(results) if r is None]
        if not pending:
            return [r for r in results if r is not None]
        t0 = time.perf_counter()
        vectors = self._query_vectors([requests[i].query for i in pending if requests[i].mode != "keyword"])
        embed_ms = (time.perf_counter() - t0) * 1000 / len(pending)
        planned = self._plan([requests[i] for i in pending], vectors)
        t1 = time.perf_counter()
        records = self.store.chunk_records(sorted({key for plan in planned for key, _ in plan.ranked}))
        hydrate_ms = (time.perf_counter() - t1) * 1000 / len(pending)
        for i, plan in zip(pending, planned, strict=True):
            hits = tuple(self._hits(plan.ranked, records, dict(plan.dense), dict(plan.keyword), requests[i].mode))
            timings = {**plan.timings, "hydrate": hydrate_ms}
            timings["search"] = sum(timings.values())
            timings["embed"] = embed_ms if requests[i].mode != "keyword" else 0.0
            result = results[i] = SearchResult(hits, timings)
            if i in keys:
                self.result_cache.put(keys[i], result)
        return [r for r in results if r is not None]

    def _query_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Query embeddings from the LRU cache, the rest embedded in one batched call."""
        out: dict[str, np.ndarray] = {}
        missing = []
        for text in dict.fromkeys(texts):
            cached = self.embed_cache.get(text)
            if cached is None:
                missing.append(text)
            else:
                out[text] = cached
        if missing:
            embedder = self._embedder()
            if len(missing) == 1:
                matrix = embedder.embed_query(missing[0]).reshape(1, -1)
            else:
                matrix = embedder.embed_queries(missing)
            for text, vector in zip(missing, matrix, strict=True):
                out[text] = vector
                self.embed_cache.put(text, vector)
        return out

    def _plan(self, requests: Sequence[SearchRequest], vectors: Mapping[str, np.ndarray]) -> list[_Plan]:
        """Dense search grouped (one FAISS call per namespace/filter/depth), then keyword and fusion."""
        plans = [_Plan() for _ in requests]
        groups: dict[tuple[int, str, int], list[int]] = {}
        spaces: dict[int, Any] = {}
        allows: dict[tuple[int, str], Allow | None] = {}
        for i, request in enumerate(requests):
            ns_id = self.store.namespace_id(request.namespace)
            space = self.indexes.get(ns_id) if ns_id is not None else None
            if ns_id is None or space is None:
                plans[i].skip = True
                continue
            spaces[i] = space
            flt = "" if is_match_all(request.filter) else json.dumps(request.filter, sort_keys=True, default=str)
            if (ns_id, flt) not in allows:
                allows[(ns_id, flt)] = None if not flt else self.allow(ns_id, request.filter or {})
            plans[i].allow = allows[(ns_id, flt)]
            depth = max(request.candidates or self.settings.candidates, request.k)
            plans[i].depth = depth
            if request.mode != "keyword" and request.query in vectors:
                groups.setdefault((ns_id, flt, depth if request.mode == "hybrid" else request.k), []).append(i)
        for (_, _, k), members in groups.items():
            t0 = time.perf_counter()
            matrix = np.stack([vectors[requests[i].query] for i in members])
            found = spaces[members[0]].dense.search(matrix, k, plans[members[0]].allow)
            share = (time.perf_counter() - t0) * 1000 / len(members)
            for i, dense in zip(members, found, strict=True):
                plans[i].dense, plans[i].timings["dense"] = dense, share
        for i, request in enumerate(requests):
            plan = plans[i]
            if plan.skip:
                continue
            t1 = time.perf_counter()
            if request.mode != "dense":
                k = plan.depth if request.mode == "hybrid" else request.k
                plan.keyword = spaces[i].keyword.search(request.query, k, plan.allow)
            t2 = time.perf_counter()
            if request.mode == "dense":
                ranked = plan.dense
            elif request.mode == "keyword":
                ranked = plan.keyword
            elif (request.fusion or self.settings.fusion) == "weighted":
                alpha = self.settings.alpha if request.alpha is None else request.alpha
                ranked = fusion.weighted(plan.dense, plan.keyword, alpha)
            else:
                ranked = fusion.rrf([plan.dense, plan.keyword], request.rrf_k or self.settings.rrf_k)
            plan.ranked = ranked[: request.k]
            t3 = time.perf_counter()
            plan.timings.update(keyword=(t2 - t1) * 1000, fuse=(t3 - t2) * 1000)
            plan.timings.setdefault("dense", 0.0)
        return plans

    @staticmethod
    def _hits(
        ranked: ScoredKeys, records: Mapping[int, Any], dense: dict[int, float], keyword: dict[int, float], mode: str
    ) -> list[Hit]:
        hits = []
        for key, score in ranked:
            record = records.get(key)
            if record is None:  # deleted by a concurrent write after the index answered
                continue
            scores = {name: table[key] for name, table in (("dense", dense), ("keyword", keyword)) if key in table}
            if mode == "hybrid":
                scores["fused"] = score
            hits.append(
                Hit(
                    chunk_id=key,
                    doc_id=record.doc_id,
                    text=record.text,
                    score=score,
                    source=record.source,
                    title=record.title,
                    char_start=record.char_start,
                    char_end=record.char_end,
                    page=record.page,
                    namespace=record.namespace,
                    metadata=record.metadata,
                    scores=scores,
                )
            )
        return hits

    # -- filters -------------------------------------------------------------------
    def allow(self, ns_id: int, filter_: Mapping[str, Any]) -> Allow:
        """Sorted chunk keys of the namespace whose document metadata matches ``filter_``."""
        generation = self.indexes.generation
        cache_key = (ns_id, generation, json.dumps(filter_, sort_keys=True, default=str))
        cached = self._allow_cache.get(cache_key)
        if cached is not None:
            return cached
        _, metadata, chunk_keys, chunk_doc = self.filter_table(ns_id, generation)
        doc_mask = match_mask(filter_, metadata)
        allow = chunk_keys[doc_mask[chunk_doc]] if len(chunk_keys) else chunk_keys
        self._allow_cache.put(cache_key, allow)
        return allow

    def filter_table(self, ns_id: int, generation: int) -> Any:
        """Documents' ids and filterable metadata (with ``doc_id``), cached per generation."""
        with self._cache_lock:
            cached = self._tables.get(ns_id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        doc_ids, metadata, chunk_keys, chunk_doc = self.store.filter_table(ns_id)
        metadata = [{"doc_id": d, **m} for d, m in zip(doc_ids, metadata, strict=True)]
        table = (doc_ids, metadata, chunk_keys, chunk_doc)
        with self._cache_lock:
            self._tables[ns_id] = (generation, table)
        return table

    def matching_doc_ids(self, ns_id: int, filter_: Mapping[str, Any]) -> list[str]:
        doc_ids, metadata, _, _ = self.filter_table(ns_id, self.indexes.generation)
        mask = match_mask(filter_, metadata)
        return [d for d, keep in zip(doc_ids, mask, strict=True) if keep]
