"""Rank fusion of dense and keyword results: pure functions over (key, score) lists."""

from __future__ import annotations

from collections.abc import Sequence

from localrag.protocols import ScoredKeys


def rrf(rankings: Sequence[ScoredKeys], k: int = 60) -> ScoredKeys:
    """Reciprocal rank fusion: sum of 1 / (k + rank) with ranks from 1; ties by key."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (key, _) in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return _sorted(fused)


def weighted(dense: ScoredKeys, keyword: ScoredKeys, alpha: float = 0.5) -> ScoredKeys:
    """Convex combination ``alpha * dense + (1 - alpha) * keyword`` of min-max normalised scores.

    A key missing from one list scores 0 on that side, the normalised floor.
    """
    fused: dict[int, float] = {}
    for weight, ranking in ((alpha, dense), (1.0 - alpha, keyword)):
        for key, score in _min_max(ranking):
            fused[key] = fused.get(key, 0.0) + weight * score
    return _sorted(fused)


def _min_max(ranking: ScoredKeys) -> ScoredKeys:
    if not ranking:
        return []
    scores = [s for _, s in ranking]
    low, high = min(scores), max(scores)
    if high == low:
        return [(key, 1.0) for key, _ in ranking]
    return [(key, (s - low) / (high - low)) for key, s in ranking]


def _sorted(scores: dict[int, float]) -> ScoredKeys:
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
