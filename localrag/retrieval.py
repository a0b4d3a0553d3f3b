"""Search over one namespace: filter to an allow-list, dense and keyword search, fusion, hydration."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from localrag.config import SearchSettings
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


class Retriever:
    def __init__(
        self,
        store: SQLiteStore,
        indexes: IndexManager,
        embedder: Callable[[], Embedder],
        settings: SearchSettings,
    ) -> None:
        self.store = store
        self.indexes = indexes
        self._embedder = embedder
        self.settings = settings
        self._allow_cache: OrderedDict[tuple[int, int, str], Allow] = OrderedDict()
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
        for request in requests:
            self.validate(request)
        started = time.perf_counter()
        needs_dense = [r.query for r in requests if r.mode != "keyword"]
        query_vectors: dict[str, np.ndarray] = {}
        if needs_dense:
            embedder = self._embedder()
            for text in dict.fromkeys(needs_dense):
                query_vectors[text] = embedder.embed_query(text)
        embed_ms = (time.perf_counter() - started) * 1000 / max(1, len(requests))
        results = []
        for request in requests:
            result = self._search_one(request, query_vectors.get(request.query))
            results.append(
                SearchResult(result.hits, {**result.timings, "embed": embed_ms if request.mode != "keyword" else 0.0})
            )
        return results

    def _search_one(self, request: SearchRequest, query_vector: np.ndarray | None) -> SearchResult:
        t0 = time.perf_counter()
        ns_id = self.store.namespace_id(request.namespace)
        space = self.indexes.get(ns_id) if ns_id is not None else None
        if ns_id is None or space is None:
            return SearchResult((), {"search": 0.0})
        allow = None if is_match_all(request.filter) else self.allow(ns_id, request.filter or {})
        depth = max(request.candidates or self.settings.candidates, request.k)
        dense: ScoredKeys = []
        keyword: ScoredKeys = []
        if request.mode != "keyword" and query_vector is not None:
            dense = space.dense.search(
                query_vector.reshape(1, -1), depth if request.mode == "hybrid" else request.k, allow
            )[0]
        t1 = time.perf_counter()
        if request.mode != "dense":
            keyword = space.keyword.search(request.query, depth if request.mode == "hybrid" else request.k, allow)
        t2 = time.perf_counter()
        if request.mode == "dense":
            ranked = dense
        elif request.mode == "keyword":
            ranked = keyword
        elif (request.fusion or self.settings.fusion) == "weighted":
            ranked = fusion.weighted(dense, keyword, self.settings.alpha if request.alpha is None else request.alpha)
        else:
            ranked = fusion.rrf([dense, keyword], request.rrf_k or self.settings.rrf_k)
        ranked = ranked[: request.k]
        t3 = time.perf_counter()
        hits = self._hydrate(ranked, dict(dense), dict(keyword), request.mode)
        t4 = time.perf_counter()
        ms = 1000.0
        timings = {
            "dense": (t1 - t0) * ms,
            "keyword": (t2 - t1) * ms,
            "fuse": (t3 - t2) * ms,
            "hydrate": (t4 - t3) * ms,
            "search": (t4 - t0) * ms,
        }
        return SearchResult(tuple(hits), timings)

    def _hydrate(self, ranked: ScoredKeys, dense: dict[int, float], keyword: dict[int, float], mode: str) -> list[Hit]:
        records = self.store.chunk_records([key for key, _ in ranked])
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
        with self._cache_lock:
            cached = self._allow_cache.get(cache_key)
            if cached is not None:
                self._allow_cache.move_to_end(cache_key)
                return cached
        _, metadata, chunk_keys, chunk_doc = self.filter_table(ns_id, generation)
        doc_mask = match_mask(filter_, metadata)
        allow = chunk_keys[doc_mask[chunk_doc]] if len(chunk_keys) else chunk_keys
        with self._cache_lock:
            self._allow_cache[cache_key] = allow
            while len(self._allow_cache) > _ALLOW_CACHE_SIZE:
                self._allow_cache.popitem(last=False)
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
