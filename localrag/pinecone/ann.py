"""Approximate candidates for a Pinecone namespace's dense queries, re-scored exactly by the caller.

The candidates come from the engine's own ``FaissIndex`` (exact flat scan below 20k vectors, a
4-bit PQ fast-scan copy above it), kept in its exact mode: its HNSW mode found 17% of the true
top 10 on the benchmark's random 384-d vectors (efSearch 128, 200k) and took 185 s to build,
where the fast scan found 99.2% with 400 candidates in a 3 s build. Every metric becomes an
inner product so one index type serves all three:

- cosine: ``x / |x|`` (a zero vector stays zero and scores 0, as in the exact path);
- dotproduct: ``x`` as is;
- euclidean: ``[x, -|x|^2 / 2]`` against ``[q, 1]``: ``x.q - |x|^2/2 = (|q|^2 - |x - q|^2) / 2``, so the
  largest inner product is the nearest record.

Each write of a record gets a fresh key, so an overwritten record never brings back a key that is
still tombstoned. The index is derived from the Space (itself loaded from the SQLite store) and
never persisted: a restart rebuilds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from localrag.config import IndexSettings
from localrag.index.faiss_index import FaissIndex

log = logging.getLogger(__name__)

# The engine's HNSW switch stays off here: see the module docstring.
_NO_HNSW = IndexSettings(exact_threshold=2**62)
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, slots=True)
class AnnSettings:
    """When a Pinecone-mode legacy query uses the ANN candidates instead of brute force."""

    # namespaces with more dense records than this use the ANN; smaller ones stay exact, so
    # exhaustive top-k (and every congruence check) sees brute-force results there
    threshold: int = 20_000
    # candidates asked of the ANN per query: max(min_candidates, factor * top_k), before the
    # engine's own fourfold depth; recall@10 0.992 at 400 candidates on random 384-d, so ask for more
    min_candidates: int = 250
    factor: int = 10
    # a filter passing at most exact_matches records, or under exact_fraction of them, is answered
    # exactly over its matches; a broader one filters 1/fraction times as many ANN candidates. Costs
    # at 384-d: the exact scan ~0.23 us a match, the fast scan ~0.01 us a record plus ~2.2 us a
    # candidate asked for, so the exact scan wins up to ~20k matches, and below 1 in 20 at any size
    exact_matches: int = 20_000
    exact_fraction: float = 0.05
    index: IndexSettings = field(default_factory=lambda: _NO_HNSW)

    def __post_init__(self) -> None:
        if (self.threshold < 0 or self.min_candidates < 1 or self.factor < 1 or self.exact_matches < 0
                or not 0 <= self.exact_fraction <= 1):
            raise ValueError(f"invalid ANN settings: {self}")


class DenseAnn:
    """An ANN over one Space's dense slots; the Space tells it which slots changed."""

    def __init__(self, dimension: int, metric: str, settings: AnnSettings) -> None:
        self.metric = metric
        self.settings = settings
        self._faiss = FaissIndex(dimension + (1 if metric == "euclidean" else 0), settings.index)
        self._key_of_slot = np.full(0, -1, dtype=np.int64)
        self._slot_of_key = np.full(0, -1, dtype=np.int64)
        self._next_key = 0

    def __len__(self) -> int:
        return len(self._faiss)

    def _transform(self, rows: NDArray[np.float32], norms_sq: NDArray[np.float64]) -> NDArray[np.float32]:
        if self.metric == "cosine":
            norms = np.sqrt(norms_sq)[:, None]
            return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0).astype(np.float32)
        if self.metric == "euclidean":
            # clipped: a record with |x|^2 past float32's range (values ~1e19) still gets a finite
            # key; its candidacy is approximate like any other, its score exact
            half = np.clip(-norms_sq / 2, -_F32_MAX, 0.0).astype(np.float32)
            return np.hstack([rows, half[:, None]])
        return rows

    def _query(self, vector: NDArray[np.float32]) -> NDArray[np.float32]:
        if self.metric == "cosine":
            norm = float(np.linalg.norm(vector.astype(np.float64)))
            return (vector / norm if norm > 0 else vector).astype(np.float32)
        if self.metric == "euclidean":
            return np.append(vector, np.float32(1.0)).astype(np.float32)
        return vector.astype(np.float32)

    def update(self, slots: NDArray[np.int64], present: NDArray[np.bool_], rows: NDArray[np.float32],
               norms_sq: NDArray[np.float64]) -> None:
        """Slots written or freed since the last update: drop their old keys, add the ``present`` ones anew."""
        if not len(slots):
            return
        top = int(slots.max()) + 1
        if top > len(self._key_of_slot):
            grown = np.full(max(top, 2 * len(self._key_of_slot)), -1, dtype=np.int64)
            grown[: len(self._key_of_slot)] = self._key_of_slot
            self._key_of_slot = grown
        old = self._key_of_slot[slots]
        old = old[old >= 0]
        if len(old):
            self._faiss.remove(old)
            self._slot_of_key[old] = -1
        self._key_of_slot[slots] = -1
        added = slots[present]
        if not len(added):
            return
        keys = np.arange(self._next_key, self._next_key + len(added), dtype=np.int64)
        self._next_key += len(added)
        if self._next_key > len(self._slot_of_key):
            grown = np.full(max(self._next_key, 2 * len(self._slot_of_key)), -1, dtype=np.int64)
            grown[: len(self._slot_of_key)] = self._slot_of_key
            self._slot_of_key = grown
        self._slot_of_key[keys] = added
        self._key_of_slot[added] = keys
        self._faiss.add(keys, self._transform(rows[present], norms_sq[present]))

    def candidates(self, vector: NDArray[np.float32], count: int,
                   allowed: NDArray[np.bool_] | None) -> NDArray[np.int64]:
        """About ``count`` slots likely to hold the best scores (all of them allowed), unordered."""
        found = self._faiss.search(self._query(vector)[None, :], count)[0]
        keys = np.fromiter((key for key, _ in found), dtype=np.int64, count=len(found))
        slots = self._slot_of_key[keys]
        slots = slots[slots >= 0]
        if allowed is not None:
            slots = slots[allowed[slots]]
        return slots
