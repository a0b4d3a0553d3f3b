"""The second retrieval stage: widen each request to k1 candidates, rerank them, cut to k.

Hits past k1 (when k > k1, e.g. an evaluation that also wants Recall@100) follow the reranked
head in their first-stage order, with their first-stage scores.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from localrag.config import RerankSettings
from localrag.errors import InvalidInputError
from localrag.protocols import Reranker
from localrag.types import SearchRequest, SearchResult


def wants_rerank(request: SearchRequest, settings: RerankSettings) -> bool:
    return settings.enabled if request.rerank is None else bool(request.rerank)


def depth(request: SearchRequest, settings: RerankSettings) -> int:
    """k1: how many first-stage hits are reranked."""
    k1 = request.candidates if request.candidates is not None else settings.candidates
    if not isinstance(k1, int) or k1 < 1:
        raise InvalidInputError(f"candidates must be a positive integer; got {k1!r}")
    return k1


def widen(request: SearchRequest, settings: RerankSettings) -> SearchRequest:
    """The first-stage request: at least k1 hits."""
    return dataclasses.replace(request, k=max(request.k, depth(request, settings)))


def rerank_result(
    reranker: Reranker, request: SearchRequest, result: SearchResult, settings: RerankSettings
) -> SearchResult:
    """``result`` (from the widened request) with its first k1 hits reranked, cut to ``request.k``;
    the time taken is added to the timings as ``rerank`` (ms)."""
    k1 = depth(request, settings)
    hits = list(result.hits)
    started = time.perf_counter()
    head = reranker.rerank(request.query, hits[:k1], min(k1, len(hits))) if hits else []
    elapsed = (time.perf_counter() - started) * 1000.0
    return SearchResult(tuple([*head, *hits[k1:]][: request.k]), {**result.timings, "rerank": elapsed})


def apply(
    reranker_for: Reranker | None,
    requests: Sequence[SearchRequest],
    results: Sequence[SearchResult],
    settings: RerankSettings,
) -> list[SearchResult]:
    """Rerank the results whose request asked for it (``reranker_for`` None: no reranker is configured)."""
    out = []
    for request, result in zip(requests, results, strict=True):
        if reranker_for is not None and wants_rerank(request, settings):
            out.append(rerank_result(reranker_for, request, result, settings))
        else:
            out.append(SearchResult(result.hits[: request.k], result.timings))
    return out
