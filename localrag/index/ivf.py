"""Compressed vector index for large namespaces: IVF over 4-bit PQ codes, exact rerank from the store.

At a million 384-d vectors the float copy alone is 1.5 GB, and HNSW keeps it resident besides its
graph. Here only the codes live in memory: an inverted file of ``nlist`` ~ sqrt(n) cells (a few
seconds of k-means at 1M, lists of ~1,000) holding one 4-bit PQ code per pair of dimensions (96 bytes
a vector, scanned with faiss fast-scan SIMD lookups). A search probes ``nprobe`` cells, keeps the best
``max(2k, 100)`` by the approximate score and rescores that short list with the exact float vectors
read from the store (the SQLite rows, which are the truth anyway), so scores are exact and only the
candidate set is approximate. Codes are trained on the raw vectors (not residuals), so one lookup
table serves every probed cell.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import faiss as _faiss
import numpy as np

from localrag.protocols import Allow, Keys, ScoredKeys, Vectors

log = logging.getLogger(__name__)
faiss: Any = _faiss

# keys -> (keys found, their float vectors): the exact vectors, read from the store. Keys that are
# gone (deleted by another process this one has not caught up with) are simply left out.
VectorSource = Callable[[Keys], tuple[Keys, Vectors]]

TRAIN_SAMPLE = 32_768  # ~32 points a cell at 1M: k-means converges well enough, in seconds
# Rerank depth max(2k, 100): each candidate is one SQLite row read (~5-15 us on a busy machine); at 1M a
# depth of 100, 200 or 400 gave the same recall@10 (the cells probed limit it)
RERANK_FACTOR = 2
RERANK_MIN = 100
_EXACT_ALLOW = 4_096  # a filter this selective is scanned exactly (vectors read from the store)
_FILTER_PROBE_FACTOR = 4  # filtered searches probe more cells: allowed keys are sparser in each
READ_BATCH = 50_000


def cells_for(size: int) -> int:
    return int(min(8192, max(64, round(math.sqrt(max(size, 1))))))


class IVFCodes:
    """IVF-PQ fast-scan codes keyed by int64 ids; reranked exactly through a ``VectorSource``."""

    def __init__(self, index: Any, trained_at: int, nprobe: int, source: VectorSource | None) -> None:
        self.index = index
        self.trained_at = trained_at
        self.nprobe = nprobe
        self.source = source
        self.rerank_factor, self.rerank_min = RERANK_FACTOR, RERANK_MIN
        self._keys: Keys | None = None

    @classmethod
    def train(cls, sample: Vectors, size: int, nprobe: int, source: VectorSource | None) -> IVFCodes:
        dim = sample.shape[1]
        nlist = min(cells_for(size), max(1, len(sample) // 8))
        codes = dim // 2 if dim % 2 == 0 and dim >= 128 else dim
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, codes, 4, faiss.METRIC_INNER_PRODUCT)
        index.by_residual = False
        index.cp.niter = 10
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        # The Python object owns the quantizer; round-trip through bytes so the C++ index owns its own.
        index = faiss.deserialize_index(faiss.serialize_index(index))
        log.info("trained an IVF-PQ index: %d cells, %d codes a vector, for ~%d vectors", nlist, codes, size)
        return cls(index, size, nprobe, source)

    @classmethod
    def from_bytes(cls, data: np.ndarray, trained_at: int, nprobe: int, source: VectorSource | None) -> IVFCodes:
        return cls(faiss.deserialize_index(data), trained_at, nprobe, source)

    def to_bytes(self) -> np.ndarray:
        return np.asarray(faiss.serialize_index(self.index))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def keys(self) -> Keys:
        if self._keys is None:
            lists = self.index.invlists
            parts = [np.zeros(0, np.int64)]
            for cell in range(self.index.nlist):
                n = lists.list_size(cell)
                if n:
                    parts.append(faiss.rev_swig_ptr(lists.get_ids(cell), n).astype(np.int64))
            self._keys = np.sort(np.concatenate(parts))
        return self._keys

    def add(self, keys: Keys, vectors: Vectors) -> None:
        self.index.add_with_ids(vectors, keys)
        self._keys = None

    def remove(self, keys: Keys) -> None:
        self.index.remove_ids(faiss.IDSelectorBatch(keys))
        self._keys = None

    # -- search ---------------------------------------------------------------------------------
    def search(self, queries: Vectors, k: int, allow: Allow | None) -> list[ScoredKeys]:
        if allow is not None and len(allow) <= _EXACT_ALLOW and self.source is not None:
            return self._exact_over(queries, k, np.asarray(allow, np.int64))
        depth = min(len(self), max(self.rerank_factor * k, self.rerank_min)) if self.source is not None else k
        params = faiss.SearchParametersIVF()
        params.nprobe = min(self.index.nlist, self.nprobe * (1 if allow is None else _FILTER_PROBE_FACTOR))
        keepalive: tuple[Any, ...] = ()
        if allow is not None:
            from localrag.index.faiss_index import _bitmap_selector

            selector, bitmap = _bitmap_selector(np.asarray(allow, np.int64))
            params.sel, keepalive = selector, (selector, bitmap)
        scores, ids = self.index.search(queries, depth, params=params)
        del keepalive
        if self.source is None:  # no exact vectors reachable: approximate scores
            return [[(int(i), float(s)) for i, s in zip(r_ids, r_sc, strict=True) if i != -1][:k]
                    for r_ids, r_sc in zip(ids, scores, strict=True)]
        return [self._rescore(query, row[row != -1], k) for query, row in zip(queries, ids, strict=True)]

    def _rescore(self, query: Vectors, candidates: Keys, k: int) -> ScoredKeys:
        assert self.source is not None
        found, vectors = self.source(candidates)
        if not len(found):
            return []
        scores = vectors @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(found[i]), float(scores[i])) for i in top]

    def _exact_over(self, queries: Vectors, k: int, allow: Keys) -> list[ScoredKeys]:
        assert self.source is not None
        found, vectors = self.source(allow)
        if not len(found):
            return [[] for _ in range(len(queries))]
        results: list[ScoredKeys] = []
        for row in queries @ vectors.T:
            top = np.argsort(-row, kind="stable")[:k]
            results.append([(int(found[i]), float(row[i])) for i in top])
        return results


def build(keys: Keys, source: VectorSource, nprobe: int) -> IVFCodes:
    """Train on an even sample of ``keys`` and encode them all, reading the source in batches
    (the float vectors are never all in memory at once)."""
    sample_keys = keys[:: max(1, len(keys) // TRAIN_SAMPLE)]
    _, sample = source(sample_keys)
    codes = IVFCodes.train(sample, len(keys), nprobe, source)
    for start in range(0, len(keys), READ_BATCH):
        found, vectors = source(keys[start : start + READ_BATCH])
        if len(found):
            codes.add(found, np.ascontiguousarray(vectors, dtype=np.float32))
    return codes
