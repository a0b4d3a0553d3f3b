"""What every reranker shares: turning pair scores into reordered hits.

Implementations only score (query, passage) pairs; ``ScoringReranker.rerank`` does the rest, so
every reranker keeps its raw score on each hit (``scores["rerank"]``, with the first-stage score
kept as ``scores["first_stage"]``) and orders the same way. ``blend`` mixes the first-stage score
back in: both are min-max normalised over the candidates, then combined as
``(1 - blend) * rerank + blend * first_stage``; 0 orders by the reranker alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from localrag.errors import ConfigError
from localrag.rerank.mining import passage_text
from localrag.types import Hit


def _minmax(values: np.ndarray) -> np.ndarray:
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def rank_hits(hits: Sequence[Hit], scores: np.ndarray, top_k: int, blend: float = 0.0) -> list[Hit]:
    """``hits`` reordered by ``scores`` (blended with their first-stage scores), the best ``top_k``."""
    if len(scores) != len(hits):
        raise ValueError(f"{len(scores)} scores for {len(hits)} hits")
    raw = np.asarray(scores, dtype=np.float64)
    if blend > 0:
        first = np.asarray([h.score for h in hits], dtype=np.float64)
        final = (1.0 - blend) * _minmax(raw) + blend * _minmax(first)
    else:
        final = raw
    order = sorted(range(len(hits)), key=lambda i: -final[i])  # stable: ties keep first-stage order
    return [
        dataclasses.replace(
            hits[i],
            score=float(final[i]),
            scores={**hits[i].scores, "first_stage": hits[i].score, "rerank": float(raw[i])},
        )
        for i in order[: max(0, top_k)]
    ]


class ScoringReranker:
    """Base of the rerankers: subclasses implement ``score_pairs``; this implements ``Reranker``."""

    name = "reranker"

    def __init__(self, blend: float = 0.0) -> None:
        if not 0.0 <= blend <= 1.0:
            raise ConfigError(f"rerank.blend must lie in [0, 1]; got {blend}")
        self.blend = blend

    def score_pairs(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One relevance score per passage (higher is more relevant)."""
        raise NotImplementedError

    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        if not hits:
            return []
        scores = self.score_pairs(query, [passage_text(h) for h in hits])
        return rank_hits(hits, scores, top_k, self.blend)
