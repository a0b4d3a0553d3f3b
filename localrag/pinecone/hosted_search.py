"""Search for ``vector.backend = "pinecone_documents"``: both sides on the hosted document index.

The dense side is a ``dense_vector`` search, the keyword side a ``text`` (BM25) search, each with
the request's metadata filter run by Pinecone; localrag fuses them as on the local path
(``index/fusion.py``), and the hits are built from the fields the hosted index returned, so no
local store or index is read. No result cache: another replica's write would not invalidate it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from localrag.config import SearchSettings, ServerSettings
from localrag.index import fusion
from localrag.index.manager import IndexManager
from localrag.pinecone.hosted_docs import HostedCorpus, HostedHit
from localrag.protocols import Embedder
from localrag.retrieval import Retriever
from localrag.store.sqlite import SQLiteStore
from localrag.types import Hit, SearchRequest, SearchResult

# Shared by every engine in the process (threads start on first use and idle between searches).
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hosted-search")


class HostedRetriever(Retriever):
    def __init__(self, corpus: HostedCorpus, store: SQLiteStore, indexes: IndexManager,
                 embedder: Callable[[], Embedder], settings: SearchSettings, caches: ServerSettings | None = None
                 ) -> None:
        super().__init__(store, indexes, embedder, settings, caches)
        self.corpus = corpus

    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResult]:
        for request in requests:
            self.validate(request)
        t0 = time.perf_counter()
        vectors = self._query_vectors([r.query for r in requests if r.mode != "keyword"])
        embed_ms = (time.perf_counter() - t0) * 1000 / max(1, len(requests))
        return [self._one(request, vectors, embed_ms) for request in requests]

    def _one(self, request: SearchRequest, vectors: dict[str, Any], embed_ms: float) -> SearchResult:
        depth = max(request.candidates or self.settings.candidates, request.k)
        k = depth if request.mode == "hybrid" else request.k
        if request.mode != "keyword":
            embedder = self._embedder()
            self.corpus.check_space(request.namespace, getattr(embedder, "vector_space", embedder.name))
        t0 = time.perf_counter()
        # Hybrid: the two hosted searches run at once, so the request waits one round trip, not two.
        dense_hits = keyword_hits = None
        if request.mode == "hybrid":
            pending = _POOL.submit(self.corpus.search_text, request.namespace, request.query, k,
                                        request.filter)
        if request.mode != "keyword":
            dense_hits = self.corpus.search_dense(request.namespace, vectors[request.query], k, request.filter)
        t1 = time.perf_counter()
        if request.mode == "hybrid":
            keyword_hits = pending.result()
        elif request.mode == "keyword":
            keyword_hits = self.corpus.search_text(request.namespace, request.query, k, request.filter)
        t2 = time.perf_counter()
        found = {h.key: h for h in (*(dense_hits or ()), *(keyword_hits or ()))}
        dense = [(h.key, h.score) for h in dense_hits or ()]
        keyword = [(h.key, h.score) for h in keyword_hits or ()]
        if request.mode == "dense":
            ranked = dense
        elif request.mode == "keyword":
            ranked = keyword
        elif (request.fusion or self.settings.fusion) == "weighted":
            ranked = fusion.weighted(dense, keyword, self.settings.alpha if request.alpha is None else request.alpha)
        else:
            ranked = fusion.rrf([dense, keyword], request.rrf_k or self.settings.rrf_k)
        dense_scores, keyword_scores = dict(dense), dict(keyword)
        hits_out = tuple(_hit(found[key], score, request, dense_scores, keyword_scores)
                         for key, score in ranked[: request.k])
        t3 = time.perf_counter()
        timings = {"dense": (t1 - t0) * 1000, "keyword": (t2 - t1) * 1000, "fuse": (t3 - t2) * 1000,
                   "hydrate": 0.0}
        timings["search"] = sum(timings.values())
        timings["embed"] = embed_ms if request.mode != "keyword" else 0.0
        return SearchResult(hits_out, timings)

    def matching_doc_ids(self, ns_id: int, filter_: Any) -> list[str]:
        raise NotImplementedError("the hosted mode filters on Pinecone (HostedCorpus.heads)")


def _hit(found: HostedHit, score: float, request: SearchRequest, dense: dict[int, float],
         keyword: dict[int, float]) -> Hit:
    f = found.fields
    scores = {name: table[found.key] for name, table in (("dense", dense), ("keyword", keyword))
              if found.key in table}
    if request.mode == "hybrid":
        scores["fused"] = score
    page = f.get("page")
    return Hit(chunk_id=found.key, doc_id=str(f.get("doc_id", "")), text=str(f.get("chunk", "")), score=score,
               source=str(f.get("source", "")), title=str(f.get("title", "")),
               char_start=int(f.get("char_start", 0)), char_end=int(f.get("char_end", 0)),
               page=None if page is None else int(page), namespace=request.namespace,
               metadata=json.loads(f.get("meta_json") or "{}"), scores=scores)
