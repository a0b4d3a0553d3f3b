"""FAISS vector index keyed by store chunk ids.

Exact inner-product search (vectors are L2-normalised, so this is cosine) up to
``exact_threshold`` vectors. Above it, an index that can read the exact vectors back from the store
(a ``VectorSource``, as the index manager gives) switches to IVF over 4-bit PQ codes with an exact
rerank (index/ivf.py: no float copy resident, ~100 bytes a vector); one without a source (a
standalone index) switches to HNSW. HNSW cannot remove vectors, so removals there are tombstones
excluded at search time and compacted by a rebuild once they pass a quarter of the index.

From ``_COARSE_MIN`` vectors the exact mode finds ``max(4k, 400)`` candidates in a 4-bit
copy (faiss PQ fast scan, one 16-level code per pair of dimensions: a sixteenth of the float
memory, scanned with SIMD table lookups) and rescores them with the float vectors, so scores
are exact and only the candidate set is approximate. At 100k MiniLM vectors and k=100 a search
is ~0.6 ms per query in a batch (scan and rescoring; one code per dimension and 8k candidates:
1.1 ms), against ~3 ms for one BLAS product per batch or ~4.4 ms for an SQ8 scan; recall@10
against brute force is 0.9997 and recall@100 0.9945 (benchmarks/results/load_test.json).
Filtered searches scan the float vectors of the allowed keys only, exactly.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
from numpy.typing import NDArray

from localrag.config import IndexSettings
from localrag.errors import CorruptIndexError, DimensionMismatchError
from localrag.fileio import load_arrays, save_arrays
from localrag.index import ivf
from localrag.index.ivf import IVFCodes, VectorSource
from localrag.protocols import Allow, Keys, ScoredKeys, Vectors

log = logging.getLogger(__name__)
# faiss ships partial SWIG type hints that miss most of its API (SearchParametersHNSW, sel=...).
faiss: Any = _faiss

_FORMAT = 1
_MAX_TOMBSTONE_FRACTION = 0.25
# Below this many allowed keys, HNSW's graph walk finds too few matches; scan them exactly.
_EXACT_ALLOW_LIMIT = 20_000
_COARSE_MIN = 20_000
_COARSE_MIN_CANDIDATES = 400
_COARSE_FACTOR = 4  # depth 4k: recall@100 0.995 against brute force at 100k (8k: 0.9997, 1.5x the time)
_COARSE_TRAIN_MAX = 8_192
_COARSE_DIMS_PER_CODE = 2
_COARSE_PAIR_MIN_DIM = 128
# Below _COARSE_MIN, from this many queries an unfiltered search reads the float vectors once
# for the whole batch (one BLAS matrix product) instead of once per query.
_BLAS_MIN_QUERIES = 8
# Guards faiss's process-wide BLAS threshold. OpenMP's thread count needs no lock: it is a
# per-thread setting, so each search sets its own (the server runs two batches at once).
_omp_lock = threading.Lock()
# IVF cells probed per query (of ~sqrt(n)): at 1M, 64 gave recall@10 0.947 against exact, 128 gave 0.983
# for ~0.5 ms more (benchmarks/results/scale.json, "sweep").
IVF_NPROBE = 128
# The IVF cells are retrained (all codes re-encoded from the store) when the index has grown this much.
_IVF_RETRAIN_GROWTH = 4


class FaissIndex:
    def __init__(
        self, dim: int, settings: IndexSettings | None = None, source: VectorSource | None = None
    ) -> None:
        self.dim = int(dim)
        self.settings = settings or IndexSettings()
        self.source = source
        self._index: Any = self._new_flat()
        self._hnsw = False
        self._ivf: IVFCodes | None = None
        self._deleted: set[int] = set()
        self._coarse: Any = None  # candidate generator, rebuilt (retrained) as the index doubles
        self._coarse_trained_at = 0
        self.retrained_on_load = False

    # -- construction -------------------------------------------------------------
    def _new_flat(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _new_hnsw(self) -> Any:
        inner = faiss.IndexHNSWFlat(self.dim, self.settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = self.settings.hnsw_ef_construction
        inner.hnsw.efSearch = self.settings.hnsw_ef_search
        return faiss.IndexIDMap2(inner)

    @property
    def kind(self) -> str:
        return "ivf" if self._ivf is not None else "hnsw" if self._hnsw else "flat"

    def __len__(self) -> int:
        if self._ivf is not None:
            return len(self._ivf)
        return int(self._index.ntotal) - len(self._deleted)

    def keys(self) -> Keys:
        if self._ivf is not None:
            return self._ivf.keys().copy()
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if self._deleted:
            ids = ids[~np.isin(ids, np.fromiter(self._deleted, dtype=np.int64))]
        return np.sort(ids)

    # -- mutation -----------------------------------------------------------------
    def add(self, keys: Keys, vectors: Vectors) -> None:
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        vectors = self._check_vectors(vectors)
        if len(keys) != len(vectors):
            raise DimensionMismatchError(f"{len(keys)} keys but {len(vectors)} vectors")
        if not len(keys):
            return
        self.remove(keys)  # re-adding a key replaces it
        if self._ivf is not None:
            self._ivf.add(keys, vectors)
            if len(self) > _IVF_RETRAIN_GROWTH * self._ivf.trained_at and self.source is not None:
                log.info("vector index grew to %d vectors: retraining its IVF cells", len(self))
                with _one_omp_thread():
                    self._ivf = ivf.build(self.keys(), self.source, IVF_NPROBE)
            return
        if self._hnsw and self._deleted.intersection(keys.tolist()):
            # HNSW keeps tombstoned vectors under their ids; compact before an id comes back.
            self._rebuild(hnsw=True)
        self._index.add_with_ids(vectors, keys)
        if self._coarse is not None:
            self._coarse.add_with_ids(vectors, keys)
        if not self._hnsw and len(self) > self.settings.exact_threshold:
            if self.source is not None:
                self._to_ivf()
                return
            log.info("vector index passed %d vectors: switching to HNSW", self.settings.exact_threshold)
            self._rebuild(hnsw=True)
        self._refresh_coarse()

    def _to_ivf(self) -> None:
        """Encode the flat index's vectors as IVF-PQ codes and drop the float copy."""
        log.info("vector index passed %d vectors: switching to IVF-PQ codes", self.settings.exact_threshold)
        keys = self.keys()
        sample = self._reconstruct(keys[:: max(1, len(keys) // ivf.TRAIN_SAMPLE)])
        with _one_omp_thread():
            codes = IVFCodes.train(sample, len(keys), IVF_NPROBE, self.source)
            for start in range(0, len(keys), ivf.READ_BATCH):
                batch = keys[start : start + ivf.READ_BATCH]
                codes.add(batch, self._reconstruct(batch))
        self._ivf, self._index = codes, self._new_flat()
        self._coarse, self._coarse_trained_at = None, 0

    @classmethod
    def build(
        cls, keys: Keys, dim: int, source: VectorSource, settings: IndexSettings | None = None
    ) -> FaissIndex:
        """The index of ``keys``, reading their vectors from ``source`` in batches: the bulk path.

        The kind follows the final size (no flat index grown and converted on the way), and above
        ``exact_threshold`` the float vectors are never all in memory at once.
        """
        index = cls(dim, settings, source)
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        if len(keys) > index.settings.exact_threshold:
            with _one_omp_thread():
                index._ivf = ivf.build(keys, source, IVF_NPROBE)
            return index
        for start in range(0, len(keys), ivf.READ_BATCH):
            found, vectors = source(keys[start : start + ivf.READ_BATCH])
            index.add(found, vectors)
        return index

    def _refresh_coarse(self) -> None:
        """Keep the 4-bit candidate copy in exact mode at scale; retrain when the index has doubled."""
        size = len(self)
        if self._hnsw or size < _COARSE_MIN:
            self._coarse, self._coarse_trained_at = None, 0
            return
        if self._coarse is not None and size <= 2 * self._coarse_trained_at:
            return
        keys = self.keys()
        vectors = self._index.reconstruct_batch(keys)
        # One sub-quantizer per pair of dimensions: 16 levels each, fitted by k-means on an even sample.
        # One OpenMP thread: on a busy machine more threads spin-wait (measured 56 s vs 5 s at 100k).
        quantizer = faiss.IndexPQFastScan(self.dim, self._coarse_codes(), 4, faiss.METRIC_INNER_PRODUCT)
        with _omp_lock:
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                quantizer.train(vectors[:: max(1, size // _COARSE_TRAIN_MAX)])
                coarse = faiss.IndexIDMap(quantizer)
                coarse.add_with_ids(vectors, keys)
            finally:
                faiss.omp_set_num_threads(threads)
        self._coarse, self._coarse_trained_at = coarse, size

    def _coarse_codes(self) -> int:
        # Few dimensions carry too few bits when paired (16-d: 32 bits a vector); pair from 128 up.
        paired = self.dim >= _COARSE_PAIR_MIN_DIM and self.dim % _COARSE_DIMS_PER_CODE == 0
        return self.dim // _COARSE_DIMS_PER_CODE if paired else self.dim

    def remove(self, keys: Keys) -> None:
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        if self._ivf is not None:
            if len(keys) and len(self._ivf):
                self._ivf.remove(keys)
            return
        if not len(keys) or self._index.ntotal == 0:
            return
        if not self._hnsw:
            self._index.remove_ids(faiss.IDSelectorBatch(keys))
            if self._coarse is not None:
                self._coarse.remove_ids(faiss.IDSelectorBatch(keys))
            return
        present = keys[np.isin(keys, faiss.vector_to_array(self._index.id_map))]
        self._deleted.update(int(k) for k in present)
        if len(self._deleted) > _MAX_TOMBSTONE_FRACTION * self._index.ntotal:
            self._rebuild(hnsw=len(self) > self.settings.exact_threshold)

    def _rebuild(self, *, hnsw: bool) -> None:
        keys = self.keys()
        vectors = self._reconstruct(keys)
        self._index = self._new_hnsw() if hnsw else self._new_flat()
        self._hnsw = hnsw
        self._deleted = set()
        if len(keys):
            self._index.add_with_ids(vectors, keys)
        self._coarse, self._coarse_trained_at = None, 0
        self._refresh_coarse()

    def _reconstruct(self, keys: Keys) -> Vectors:
        if not len(keys):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(np.ascontiguousarray(keys, dtype=np.int64)), dtype=np.float32)

    def _check_vectors(self, vectors: Vectors) -> Vectors:
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"vector dimension {array.shape[-1] if array.ndim else 0} does not match the index dimension {self.dim}"
            )
        if not np.isfinite(array).all():
            raise DimensionMismatchError("vectors contain NaN or infinite values")
        return np.ascontiguousarray(array)

    # -- search -------------------------------------------------------------------
    def search(self, queries: Vectors, k: int, allow: Allow | None = None) -> list[ScoredKeys]:
        queries = self._check_vectors(queries)
        if k <= 0 or len(self) == 0 or (allow is not None and len(allow) == 0):
            return [[] for _ in range(len(queries))]
        if self._ivf is not None:
            faiss.omp_set_num_threads(max(1, self.settings.search_threads))
            return self._ivf.search(queries, min(k, len(self)), allow)
        if allow is not None and self._hnsw and len(allow) <= _EXACT_ALLOW_LIMIT:
            return self._exact_over(queries, k, allow)
        if allow is None and self._coarse is not None:
            return self._coarse_search(queries, min(k, len(self)))
        if allow is None and not self._hnsw and not self._deleted and len(queries) >= _BLAS_MIN_QUERIES:
            return self._blas_batch(queries, min(k, len(self)))
        params, keepalive = self._search_params(allow)
        k = min(k, len(self) if allow is None else min(len(self), len(allow)))
        threads = self.settings.search_threads if len(queries) == 1 else max(1, faiss.omp_get_max_threads())
        faiss.omp_set_num_threads(max(1, threads))
        scores, ids = self._index.search(queries, k, params=params)
        del keepalive  # the selector and its bitmap had to outlive the search call
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def _coarse_search(self, queries: Vectors, k: int) -> list[ScoredKeys]:
        depth = min(len(self), max(_COARSE_FACTOR * k, _COARSE_MIN_CANDIDATES))
        faiss.omp_set_num_threads(max(1, self.settings.search_threads))
        _, ids = self._coarse.search(queries, depth)
        return [self._rescore(query, row[row != -1], k) for query, row in zip(queries, ids, strict=True)]

    def _blas_batch(self, queries: Vectors, k: int) -> list[ScoredKeys]:
        with _omp_lock:  # the BLAS threshold is a process-wide setting
            faiss.omp_set_num_threads(max(1, self.settings.search_threads))
            threshold = faiss.cvar.distance_compute_blas_threshold
            faiss.cvar.distance_compute_blas_threshold = 1
            try:
                scores, ids = self._index.search(queries, k)
            finally:
                faiss.cvar.distance_compute_blas_threshold = threshold
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def _search_params(self, allow: Allow | None) -> tuple[Any, tuple[Any, ...]]:
        """SWIG params hold raw pointers, so the caller keeps the selector and bitmap alive."""
        selector: Any = None
        bitmap: Any = None
        if allow is not None:
            allowed = allow if not self._deleted else np.setdiff1d(allow, list(self._deleted))
            selector, bitmap = _bitmap_selector(allowed)
        elif self._deleted:
            selector, bitmap = _bitmap_selector(self.keys())
        keepalive = (selector, bitmap)
        if self._hnsw:
            params = faiss.SearchParametersHNSW(efSearch=self.settings.hnsw_ef_search)
            if selector is not None:
                params.sel = selector
            return params, keepalive
        return (None if selector is None else faiss.SearchParameters(sel=selector)), keepalive

    def _rescore(self, query: Vectors, candidates: Keys, k: int) -> ScoredKeys:
        scores = self._reconstruct(candidates) @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(candidates[i]), float(scores[i])) for i in top]

    def _exact_over(self, queries: Vectors, k: int, allow: Allow) -> list[ScoredKeys]:
        keys = np.asarray([a for a in allow if int(a) not in self._deleted], dtype=np.int64)
        keys = keys[np.isin(keys, faiss.vector_to_array(self._index.id_map))]
        if not len(keys):
            return [[] for _ in range(len(queries))]
        scores = queries @ self._reconstruct(keys).T
        results: list[ScoredKeys] = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:k]
            results.append([(int(keys[i]), float(row[i])) for i in top])
        return results

    # -- persistence ----------------------------------------------------------------
    def save(self, path: Path, stamp: int) -> None:
        save_arrays(
            path,
            format=np.int64(_FORMAT),
            stamp=np.int64(stamp),
            dim=np.int64(self.dim),
            hnsw=np.bool_(self._hnsw),
            deleted=np.fromiter(sorted(self._deleted), dtype=np.int64),
            index=faiss.serialize_index(self._index),
            # The trained candidate copy (optional: a file without it retrains on load).
            coarse=faiss.serialize_index(self._coarse) if self._coarse is not None else np.zeros(0, np.uint8),
            coarse_trained_at=np.int64(self._coarse_trained_at),
            # IVF-PQ codes (large namespaces; then ``index`` is an empty flat index)
            ivf=self._ivf.to_bytes() if self._ivf is not None else np.zeros(0, np.uint8),
            ivf_trained_at=np.int64(self._ivf.trained_at if self._ivf is not None else 0),
        )

    @classmethod
    def load(
        cls, path: Path, settings: IndexSettings | None = None, source: VectorSource | None = None
    ) -> tuple[FaissIndex, int]:
        # The serialized index is mapped, not read: faiss copies what it needs from the page cache.
        arrays = load_arrays(path, mmap_from=1 << 22)
        try:
            if int(arrays["format"]) != _FORMAT:
                raise CorruptIndexError(f"{path}: unknown vector index format {int(arrays['format'])}")
            index = cls(int(arrays["dim"]), settings, source)
            if len(arrays.get("ivf", ())):
                index._ivf = IVFCodes.from_bytes(arrays["ivf"], int(arrays["ivf_trained_at"]), IVF_NPROBE, source)
                if index._ivf.index.d != index.dim:
                    raise CorruptIndexError(f"{path}: stored dimension disagrees with the index")
                return index, int(arrays["stamp"])
            index._index = faiss.deserialize_index(arrays["index"])
            index._hnsw = bool(arrays["hnsw"])
            index._deleted = {int(k) for k in arrays["deleted"]}
            if index._index.d != index.dim:
                raise CorruptIndexError(f"{path}: stored dimension disagrees with the index")
            if index._hnsw:
                faiss.downcast_index(index._index.index).hnsw.efSearch = index.settings.hnsw_ef_search
            if len(arrays.get("coarse", ())):
                index._coarse = faiss.deserialize_index(arrays["coarse"])
                index._coarse_trained_at = int(arrays["coarse_trained_at"])
                codes = faiss.downcast_index(faiss.downcast_index(index._coarse).index).M
                if index._coarse.ntotal != len(index) or codes != index._coarse_codes():
                    index._coarse, index._coarse_trained_at = None, 0  # stale, or saved by an older layout
            had_coarse = index._coarse is not None
            index._refresh_coarse()
            # a file saved without the candidate copy (or a stale one) is saved again, not retrained each open
            index.retrained_on_load = index._coarse is not None and not had_coarse
            return index, int(arrays["stamp"])
        except CorruptIndexError:
            raise
        except (AttributeError, KeyError, RuntimeError, ValueError) as e:
            raise CorruptIndexError(f"cannot read vector index {path}: {e}") from e


@contextlib.contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Training and encoding on one OpenMP thread: on a busy machine more threads spin-wait."""
    with _omp_lock:
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            yield
        finally:
            faiss.omp_set_num_threads(threads)


def _bitmap_selector(keys: NDArray[np.int64]) -> tuple[Any, NDArray[np.uint8]]:
    """IDSelectorBitmap over external ids: O(1) membership, built from numpy in microseconds."""
    size = int(keys.max()) + 1 if len(keys) else 1
    mask = np.zeros(size, dtype=bool)
    mask[keys] = True
    bitmap = np.packbits(mask, bitorder="little")
    # n counts bytes, not bits
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap
