"""One namespace's records in memory, with exact (brute-force) scoring.

Dense vectors live in one growable float32 matrix (a slot per record, freed slots
reused), so a query is one matrix-vector product. Filters become a boolean mask over
slots *before* ranking, so a filtered query returns exactly ``min(k, matches)``
records, as Pinecone's single-stage filtering does. The top candidates are re-scored
in float64, so scores do not depend on BLAS summation order.

Scores follow Pinecone: cosine similarity, dot product, or squared Euclidean
distance (lower is better); sparse and hybrid queries add the sparse dot product.

Past ``AnnSettings.threshold`` dense records, dense-only queries take their candidates from an
ANN (``localrag.pinecone.ann``) and re-score them exactly, so returned scores are exact and only
the candidate set is approximate. A filter passing few records is answered exactly over its
matches instead, as the engine's FAISS path does. The ANN is caught up by ``sync_ann`` after each
write batch (the caller holds its write lock); after a restart it is loaded from its file when that
matches the store's write generation, and rebuilt from the records otherwise.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from localrag.pinecone.ann import AnnSettings, DenseAnn
from localrag.pinecone.wire import Sparse

log = logging.getLogger(__name__)

_MIN_CAPACITY = 64
VERSIONS = itertools.count(1)


class Space:
    def __init__(self, dimension: int | None, metric: str, ann: AnnSettings | None = None) -> None:
        self.dimension = dimension
        self.metric = metric
        self.ann_settings = ann
        self._ann: DenseAnn | None = None
        self._dirty: set[int] = set()
        self.slot_of: dict[str, int] = {}
        self.ids: list[str | None] = []
        self.metadata: list[dict[str, Any] | None] = []
        self.sparse: list[Sparse | None] = []
        self._free: list[int] = []
        self._dense = np.zeros((0, dimension or 0), dtype=np.float32)
        self._norms = np.zeros(0, dtype=np.float64)
        self._has_dense = np.zeros(0, dtype=bool)
        self._live = np.zeros(0, dtype=bool)
        self._sparse_cache: tuple[NDArray[np.int64], NDArray[np.uint32], NDArray[np.float32]] | None = None
        # Changes on every write and never repeats, even across a cleared or recreated namespace:
        # it keys filter caches, so a reused number could serve another content's mask.
        self.version = next(VERSIONS)

    def __len__(self) -> int:
        return len(self.slot_of)

    # -- mutation ------------------------------------------------------------------
    def put(self, record_id: str, values: NDArray[np.float32] | None, sparse: Sparse | None,
            metadata: dict[str, Any] | None) -> None:
        slot = self.slot_of.get(record_id)
        if slot is None:
            slot = self._allocate()
            self.slot_of[record_id] = slot
            self.ids[slot] = record_id
            self._live[slot] = True
        self.metadata[slot] = metadata
        if sparse is not None or self.sparse[slot] is not None:
            self._sparse_cache = None
        self.sparse[slot] = sparse
        if values is not None:
            self._dense[slot] = values
            self._norms[slot] = float(np.dot(values.astype(np.float64), values.astype(np.float64)))
            self._has_dense[slot] = True
        else:
            self._has_dense[slot] = False
        if self.ann_settings is not None:
            self._dirty.add(slot)
        self.version = next(VERSIONS)

    def remove(self, record_id: str) -> bool:
        slot = self.slot_of.pop(record_id, None)
        if slot is None:
            return False
        if self.sparse[slot] is not None:
            self._sparse_cache = None
        self.ids[slot] = None
        self._live[slot] = False
        self.metadata[slot] = None
        self.sparse[slot] = None
        self._has_dense[slot] = False
        self._free.append(slot)
        if self.ann_settings is not None:
            self._dirty.add(slot)
        self.version = next(VERSIONS)
        return True

    def clear(self) -> None:
        self.__init__(self.dimension, self.metric, self.ann_settings)  # type: ignore[misc]

    @property
    def has_dense(self) -> NDArray[np.bool_]:
        """Which slots hold a dense vector (a view: read only)."""
        return self._has_dense[: len(self.ids)]

    @property
    def ann_active(self) -> bool:
        return self._ann is not None

    def adopt_ann(self, ann: DenseAnn) -> None:
        """Use an ANN loaded from its file (it matches the records just loaded)."""
        self._ann = ann
        self._dirty.clear()

    def save_ann(self, path: Path, generation: int, namespace: str) -> bool:
        """Write the ANN to ``path`` (False, and nothing written, when there is none)."""
        if self._ann is None:
            return False
        self._ann.save(path, generation, namespace, self.ids)
        return True

    def _build_ann(self) -> DenseAnn:
        assert self.dimension
        ann = DenseAnn(self.dimension, self.metric)
        ann.build(np.flatnonzero(self._has_dense), self._dense, self._norms, self.ann_settings)
        return ann

    def sync_ann(self) -> None:
        """Bring the ANN in line with the records: build it past the threshold, drop it well below."""
        settings = self.ann_settings
        if settings is None or not self.dimension:
            self._dirty.clear()
            return
        dense = int(np.count_nonzero(self._has_dense))
        if self._ann is None:
            if dense > settings.threshold:
                log.info("pinecone namespace passed %d dense records: building its ANN", settings.threshold)
                try:
                    self._ann = self._build_ann()
                except Exception:  # as below: queries stay exact, the next write tries again
                    log.exception("pinecone ANN build failed; queries stay exact")
            self._dirty.clear()
            return
        if dense <= settings.threshold // 2:  # hysteresis: deletes around the threshold do not rebuild it each time
            self._ann = None
            self._dirty.clear()
            return
        if self._dirty:
            slots = np.fromiter(self._dirty, dtype=np.int64, count=len(self._dirty))
            self._dirty.clear()
            present = self._has_dense[slots]
            try:
                self._ann.update(slots, present, self._dense[slots], self._norms[slots])
                if self._ann.needs_rebuild():
                    self._ann = self._build_ann()
                elif self._ann.needs_calibration() and not self._ann.recalibrate(
                        np.flatnonzero(self._has_dense), self._dense, self._norms, settings):
                    self._ann = self._build_ann()  # no nprobe holds the recall now: IVF again, or the scan
            except Exception:
                # The write is committed and in memory already: never fail it for a derived index.
                # Without the ANN, queries are exact; the next write batch builds it again.
                log.exception("pinecone ANN update failed; dropped until the next write")
                self._ann = None

    def _allocate(self) -> int:
        if self._free:
            return self._free.pop()
        slot = len(self.ids)
        if slot >= len(self._has_dense):
            capacity = max(_MIN_CAPACITY, 2 * len(self._has_dense))
            dense = np.zeros((capacity, self.dimension or 0), dtype=np.float32)
            dense[:slot] = self._dense[:slot]
            self._dense = dense
            self._norms = np.resize(self._norms, capacity)
            has = np.zeros(capacity, dtype=bool)
            has[:slot] = self._has_dense[:slot]
            self._has_dense = has
            live = np.zeros(capacity, dtype=bool)
            live[:slot] = self._live[:slot]
            self._live = live
        self.ids.append(None)
        self.metadata.append(None)
        self.sparse.append(None)
        return slot

    # -- reads -------------------------------------------------------------------------
    def values_of(self, slot: int) -> NDArray[np.float32] | None:
        return self._dense[slot].copy() if self._has_dense[slot] else None

    def mask(self, predicate: Callable[[Mapping[str, Any]], bool] | None) -> NDArray[np.bool_]:
        """Live slots whose metadata satisfies ``predicate`` (all live slots when None)."""
        if predicate is None:
            return self._live[: len(self.ids)].copy()
        out = np.zeros(len(self.ids), dtype=bool)
        empty: dict[str, Any] = {}
        for slot in self.slot_of.values():
            md = self.metadata[slot]
            out[slot] = predicate(md if md is not None else empty)
        return out

    def search(self, k: int, allowed: NDArray[np.bool_] | None, vector: NDArray[np.float32] | None,
               sparse: Sparse | None) -> list[tuple[int, float]]:
        """(slot, score) best first; ties broken by id so results are deterministic. ``allowed`` None:
        every live record (an unfiltered ANN query then builds no mask: 0.4 ms of masks at 1M)."""
        n = len(self.ids)
        if n == 0 or k <= 0:
            return []
        if vector is not None and sparse is None and self._ann is not None:
            slots = self._ann_candidates(k, None if allowed is None else allowed[:n] & self._has_dense[:n], vector)
            if slots is not None:
                if len(slots) > k + 9:  # float32 first, as below; the margin absorbs its rounding
                    goodness = self._dense_scores(vector, slots)
                    if self.metric == "euclidean":
                        goodness = -goodness
                    slots = slots[np.argpartition(-goodness, k + 8)[: k + 9]]
                return self._ranked(slots, vector, None, k)
        candidates = (self._live[:n] if allowed is None else allowed[:n]).copy()
        if vector is not None:
            candidates &= self._has_dense[:n]
        score: NDArray[np.float64] | None = None
        if sparse is not None:
            sparse_score, overlap = self._sparse_scores(sparse, n)
            score = sparse_score
            if vector is None:
                candidates &= overlap  # a sparse-only query ranks records sharing a dimension
        slots = np.flatnonzero(candidates)
        if not len(slots):
            return []
        if vector is not None:
            dense = self._dense_scores(vector, slots if len(slots) < n else None)
            score = dense if score is None else score[slots] + dense
        else:
            score = score[slots] if score is not None else np.zeros(len(slots))
        goodness = -score if self.metric == "euclidean" and vector is not None else score
        if len(slots) > k:
            # A margin past k absorbs float32 rounding before the exact re-score.
            keep = np.argpartition(-goodness, min(len(slots) - 1, k + 8))[: k + 9]
            slots = slots[keep]
        return self._ranked(slots, vector, sparse, k)

    def _ann_candidates(self, k: int, candidates: NDArray[np.bool_] | None,
                        vector: NDArray[np.float32]) -> NDArray[np.int64] | None:
        """The ANN's candidate slots (``candidates`` None: every dense record), or None where an exact
        scan over the matches is the better answer."""
        assert self._ann is not None and self.ann_settings is not None
        settings = self.ann_settings
        total = len(self._ann)  # every live dense record (synced under the write lock)
        matching = total if candidates is None else int(np.count_nonzero(candidates))
        wanted = self._ann.shortlist(k, settings)
        unfiltered = matching == total
        if not unfiltered and (matching <= settings.exact_matches or matching < settings.exact_fraction * total):
            return None  # selective filter: few matches, scanned exactly
        # A filter passing a fraction f of the records leaves about f of the candidates: ask 1/f as many.
        count = wanted if unfiltered else int(np.ceil(wanted * total / matching))
        if count >= matching:
            return None
        slots = self._ann.candidates(vector, count, None if unfiltered else candidates)
        if len(slots) < min(k, matching):
            return None  # too few survived the filter: stay exact rather than return fewer than k
        return slots

    def _ranked(self, slots: NDArray[np.int64], vector: NDArray[np.float32] | None, sparse: Sparse | None,
                k: int) -> list[tuple[int, float]]:
        exact = self._exact(slots, vector, sparse)
        sign = -1.0 if self.metric == "euclidean" and vector is not None else 1.0
        ranked = sorted(zip(slots.tolist(), exact.tolist(), strict=True),
                        key=lambda item: (-sign * item[1], self.ids[item[0]] or ""))
        return ranked[:k]

    def _dense_scores(self, vector: NDArray[np.float32], slots: NDArray[np.int64] | None) -> NDArray[np.float64]:
        """Scores of ``slots`` (of every slot when None, without copying the matrix)."""
        rows = self._dense[: len(self.ids)] if slots is None else self._dense[slots]
        norms_sq = self._norms[: len(self.ids)] if slots is None else self._norms[slots]
        # einsum, not BLAS: multi-threaded OpenBLAS matvec is ~30x slower on a 2-core machine.
        dots = np.einsum("ij,j->i", rows, vector).astype(np.float64)
        if self.metric == "cosine":
            qn = float(np.linalg.norm(vector.astype(np.float64)))
            norms = np.sqrt(norms_sq) * qn
            return np.divide(dots, norms, out=np.zeros(len(dots)), where=norms > 0)
        if self.metric == "euclidean":
            q = vector.astype(np.float64)
            return np.maximum(norms_sq - 2 * dots + float(q @ q), 0.0)
        return dots

    def _exact(self, slots: NDArray[np.int64], vector: NDArray[np.float32] | None,
               sparse: Sparse | None) -> NDArray[np.float64]:
        out = np.zeros(len(slots), dtype=np.float64)
        if vector is not None:
            rows = self._dense[slots].astype(np.float64)
            q = vector.astype(np.float64)
            if self.metric == "cosine":
                norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(q)
                out = np.divide(np.einsum("ij,j->i", rows, q), norms, out=np.zeros(len(slots)), where=norms > 0)
            elif self.metric == "euclidean":
                out = ((rows - q) ** 2).sum(axis=1)
            else:
                out = np.einsum("ij,j->i", rows, q)
        if sparse is not None:
            q_idx, q_val = sparse
            lookup = dict(zip(q_idx.tolist(), q_val.astype(np.float64).tolist(), strict=True))
            for i, slot in enumerate(slots.tolist()):
                record = self.sparse[slot]
                if record is not None:
                    out[i] += sum(lookup.get(j, 0.0) * float(v)
                                  for j, v in zip(record[0].tolist(), record[1].tolist(), strict=True))
        return out

    def _sparse_scores(self, sparse: Sparse, n: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        if self._sparse_cache is None:
            rows, idx, vals = [], [], []
            for slot, record in enumerate(self.sparse):
                if record is not None:
                    rows.append(np.full(len(record[0]), slot, dtype=np.int64))
                    idx.append(record[0])
                    vals.append(record[1])
            self._sparse_cache = (
                np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
                np.concatenate(idx) if idx else np.zeros(0, dtype=np.uint32),
                np.concatenate(vals) if vals else np.zeros(0, dtype=np.float32),
            )
        rows_all, idx_all, vals_all = self._sparse_cache
        q_idx, q_val = sparse  # q_idx is sorted (wire.sparse_values sorts it)
        hit = np.isin(idx_all, q_idx)
        weights = vals_all[hit].astype(np.float64) * q_val[np.searchsorted(q_idx, idx_all[hit])].astype(np.float64)
        scores = np.bincount(rows_all[hit], weights=weights, minlength=n)[:n].astype(np.float64)
        overlap = np.asarray(np.bincount(rows_all[hit], minlength=n)[:n] > 0)
        return scores, overlap
