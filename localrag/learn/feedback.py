"""Online learning from feedback: past judgments on (query, chunk) pairs re-order the next search.

A search is compared with the stored queries of its namespace by embedding cosine; a judgment
counts when its query lies at or above ``learn.similarity``, weighted by its age
(``half_life_days``). Per chunk, the weighted votes (up minus down: ``net``) become evidence in [-1, 1]:

    evidence = tanh(atanh(r) * net) * |net| / (|net| + prior)

The first factor is the votes' verdict under a noise model: each vote is right with probability
(1 + r) / 2, where r is the voters' reliability read from how often different voters agree on the
same chunk (learn/reliability.py), so it is 2 P(relevant | votes) - 1 from an even prior. Votes that
agree only by chance (r near 0) move nothing; with trusted voters (r = 1) it is the sign of ``net``.
The second shrinks it by ``prior`` pseudo-votes, so one vote moves a hit by at most
``weight / (1 + prior)`` of its list's score spread, agreeing votes accumulate towards ``weight``,
conflicting ones cancel (a split counts by its net), and a voter (API key or client address) counts
for at most ``max_per_source`` votes on one chunk. The adjustment is added to the hits' scores after
fusion and reranking, and each adjusted hit reports it as ``scores["feedback"]``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from localrag.config import LearnSettings
from localrag.errors import InvalidInputError, LocalRagError
from localrag.learn.reliability import agreement, reliability
from localrag.store.sqlite import SQLiteStore
from localrag.types import Hit, SearchRequest, SearchResult

log = logging.getLogger(__name__)

EmbedQueries = Callable[[Sequence[str]], Mapping[str, NDArray[np.float32]]]
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Votes:
    """One namespace's judgments as arrays, aligned by row."""

    vectors: NDArray[np.float32]  # (n, dim) query embeddings
    chunk_ids: NDArray[np.int64]
    grades: NDArray[np.float64]  # in [-1, 1]
    sources: tuple[str, ...]
    created_at: NDArray[np.float64]
    reliability: float = 1.0  # r of learn/reliability.py: the voters' accuracy is (1 + r) / 2

    def __len__(self) -> int:
        return len(self.chunk_ids)


def check_grade(relevant: bool | None, grade: float | None) -> tuple[bool, float | None]:
    """(relevant, grade) of one judgment: a thumbs up/down, or a grade in [-1, 1] (relevant when > 0)."""
    if grade is None:
        if not isinstance(relevant, bool):
            raise InvalidInputError("feedback needs relevant (true/false) or a grade in [-1, 1]")
        return relevant, None
    if isinstance(grade, bool) or not isinstance(grade, (int, float)) or not -1.0 <= float(grade) <= 1.0:
        raise InvalidInputError(f"grade must be a number in [-1, 1]; got {grade!r}")
    if relevant is not None and bool(relevant) != (grade > 0):
        raise InvalidInputError(f"relevant={relevant} contradicts grade={grade}; give one of them")
    return float(grade) > 0, float(grade)


def vector_blob(vector: NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


class FeedbackModel:
    """The store's judgments, loaded per namespace and cached until a new one is stored."""

    def __init__(self, store: SQLiteStore, embed: EmbedQueries, settings: LearnSettings) -> None:
        self.store = store
        self.settings = settings
        self._embed = embed
        self._cache: dict[str, tuple[int, Votes]] = {}
        self._lock = threading.Lock()
        self.clock: Callable[[], float] = time.time  # replaced by tests of decay

    def generation(self) -> int:
        return self.store.feedback_generation()

    def votes(self, namespace: str, generation: int | None = None) -> Votes:
        generation = self.generation() if generation is None else generation
        with self._lock:
            cached = self._cache.get(namespace)
        if cached is not None and cached[0] == generation:
            return cached[1]
        votes = self._load(namespace)
        with self._lock:
            self._cache[namespace] = (generation, votes)
        return votes

    def _load(self, namespace: str) -> Votes:
        rows = self.store.feedback_votes(namespace)
        # Judgments stored before migration 4 have no query vector: embedded here, once per generation.
        missing = sorted({query for query, *_, blob in rows if blob is None})
        embedded: Mapping[str, NDArray[np.float32]] = {}
        if missing:
            try:
                embedded = self._embed(missing)
            except LocalRagError as e:
                log.warning("%d judgments left out of ranking: their queries cannot be embedded: %s", len(missing), e)
                rows = [r for r in rows if r[5] is not None]
        vectors = [
            np.frombuffer(blob, dtype=np.float32) if blob is not None else np.asarray(embedded[query], np.float32)
            for query, *_, blob in rows
        ]
        dim = len(vectors[0]) if vectors else 0
        votes = Votes(
            vectors=np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32),
            chunk_ids=np.array([r[1] for r in rows], dtype=np.int64),
            grades=np.array([r[2] for r in rows], dtype=np.float64),
            sources=tuple(r[3] for r in rows),
            created_at=np.array([r[4] for r in rows], dtype=np.float64),
        )
        agree, total = agreement(votes.vectors, votes.chunk_ids, votes.grades, votes.sources, self.settings.similarity)
        r = reliability(agree, total, self.settings.agreement_prior)
        log.debug("namespace %r: %d votes, voter agreement %.1f of %.1f, reliability %.3f",
                  namespace, len(votes), agree, total, r)
        return replace(votes, reliability=r)

    def evidence(self, namespace: str, query_vector: NDArray[np.float32], user: str = "",
                 generation: int | None = None) -> dict[int, float]:
        """chunk id -> evidence in [-1, 1] from the judgments near this query (empty when none is)."""
        votes = self.votes(namespace, generation)
        if not len(votes) or votes.vectors.shape[1] != len(query_vector):
            return {}
        s = self.settings
        sims = votes.vectors @ np.asarray(query_vector, dtype=np.float32)
        near = sims >= s.similarity - 1e-6
        if s.scope == "source" and user:
            near &= np.array([source == user for source in votes.sources], dtype=bool)
        if not near.any():
            return {}
        # Every vote at or above the threshold counts fully: weighing them from 0.5 at the threshold up to 1
        # for the same query gained less on paraphrases (results/feedback_tuning.json) for no less harm.
        weights = np.ones(len(votes), dtype=np.float64)
        if s.half_life_days > 0:
            age_days = np.maximum(0.0, self.clock() - votes.created_at) / _DAY_S
            weights = weights * np.power(0.5, age_days / s.half_life_days)
        return _evidence(votes, np.flatnonzero(near), weights, s)

    def plan(self, requests: Sequence[SearchRequest]) -> tuple[list[SearchRequest], list[dict[int, float]]]:
        """Each request's evidence, and the request widened to ``learn.depth`` where there is some (so a
        voted-up hit from below the first k can rise into it); requests without evidence are unchanged."""
        generation = self.generation()
        evidence: list[dict[int, float]] = [{} for _ in requests]
        voted = [i for i, r in enumerate(requests) if len(self.votes(r.namespace, generation))]
        if not voted:
            return list(requests), evidence
        vectors = self._embed([requests[i].query for i in voted])
        out = list(requests)
        for i in voted:
            request = requests[i]
            evidence[i] = self.evidence(request.namespace, vectors[request.query], request.user, generation)
            if evidence[i]:
                out[i] = replace(request, k=max(request.k, self.settings.depth))
        return out, evidence

    def finish(
        self, requests: Sequence[SearchRequest], results: Sequence[SearchResult], evidence: Sequence[dict[int, float]]
    ) -> list[SearchResult]:
        """The results re-ordered by their evidence and cut to each request's k."""
        out = []
        for request, result, found in zip(requests, results, evidence, strict=True):
            if not found:
                out.append(result)
                continue
            started = time.perf_counter()
            hits = self.apply(result.hits, found, request.k)
            timings = {**result.timings, "feedback": (time.perf_counter() - started) * 1000}
            out.append(replace(result, hits=hits, timings=timings))
        return out

    def apply(self, hits: Sequence[Hit], evidence: Mapping[int, float], k: int) -> tuple[Hit, ...]:
        """``hits`` re-ordered by score + weight * evidence * spread, cut to ``k``."""
        if not hits or not evidence:
            return tuple(hits[:k])
        scores = [h.score for h in hits]
        spread = max(scores) - min(scores)
        if not math.isfinite(spread) or spread <= 0:
            spread = max(abs(scores[0]), 1e-6)
        adjusted = []
        for hit in hits:
            delta = self.settings.weight * evidence.get(hit.chunk_id, 0.0) * spread
            adjusted.append(replace(hit, score=hit.score + delta, scores={**hit.scores, "feedback": delta}))
        adjusted.sort(key=lambda h: -h.score)  # stable: equal scores keep their first-stage order
        return tuple(adjusted[:k])


def _evidence(votes: Votes, rows: NDArray[np.intp], weights: NDArray[np.float64], s: LearnSettings) -> dict[int, float]:
    # Per (chunk, voter): the voter's weighted votes, scaled down together to at most max_per_source.
    per_voter: dict[tuple[int, str], list[float]] = {}
    for row in rows:
        signed = float(weights[row] * votes.grades[row])
        per_voter.setdefault((int(votes.chunk_ids[row]), votes.sources[row]), []).append(signed)
    up: dict[int, float] = {}
    down: dict[int, float] = {}
    for (chunk_id, _), values in per_voter.items():
        total = sum(abs(v) for v in values)
        scale = min(1.0, s.max_per_source / total) if total > 0 and s.max_per_source > 0 else 1.0
        up[chunk_id] = up.get(chunk_id, 0.0) + scale * sum(v for v in values if v > 0)
        down[chunk_id] = down.get(chunk_id, 0.0) - scale * sum(v for v in values if v < 0)
    out = {}
    certainty = math.atanh(votes.reliability) if votes.reliability < 1.0 else math.inf
    for chunk_id in up:
        net = up[chunk_id] - down[chunk_id]
        if abs(net) <= 1e-9 * (up[chunk_id] + down[chunk_id]):  # cancelled (votes seconds apart decay unequally)
            continue
        verdict = math.copysign(1.0, net) if math.isinf(certainty) else math.tanh(certainty * net)
        value = verdict * abs(net) / (abs(net) + s.prior)
        if value != 0.0:
            out[chunk_id] = value
    return out
