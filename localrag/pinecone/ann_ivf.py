"""IVF over 4-bit PQ fast-scan codes for large clustered namespaces, with nprobe measured at build.

An inverted file scans only the lists nearest the query: on embeddings (which cluster by topic)
a few percent of the lists hold the true top 10; on random vectors (no clusters) even a quarter of
them misses most of it (recall@10 0.34 at nprobe 128 of 1024, 1M random 384-d). Which case a
namespace is cannot be known from its size, so the build measures it: ``calibrate`` takes stored
vectors as held-out queries (their own record excluded from the truth), finds their exact top 10,
and picks the smallest nprobe whose shortlist holds at least ``target`` of it. The caller re-scores
the shortlist exactly, so that fraction is the query's recall@10. No nprobe within the cost bound
reaching it (random data): the caller keeps the full fast scan.

Steps of nprobe go 1, 2, 3, 4, 6, 8, 12, ... (powers of two and halfway): at 1M clustered stand-ins
IVF1024 held 0.994 at 64 and 0.999 at 128, so a power-of-two ladder paid nearly twice the scan for a
margin it did not need. At the chosen nprobe the shortlist is trimmed too: faiss returns it best
first, so a shorter one is a prefix of the measured one, and the shortest of ``depths`` still holding
the target is kept (the caller re-scores fewer float rows). ``sample_passes`` rejects data that no IVF
will serve (random vectors) on a sample before the full IVF is trained and filled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import faiss as _faiss
import numpy as np
from numpy.typing import NDArray

faiss: Any = _faiss
Chunks = Callable[[], Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]]

_TOP = 10


@dataclass(frozen=True, slots=True)
class Calibration:
    """The chosen nprobe, the shortlist for a top 10 and the recall@10 measured with both (nprobe None:
    no nprobe reached the target)."""

    nprobe: int | None
    recall: float
    tried: tuple[tuple[int, float], ...]
    shortlist: int = 0  # 0: the settings' own shortlist


def nprobe_steps(limit: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, ... up to ``limit`` (powers of two and one and a half times them)."""
    steps = sorted({2**i for i in range(31)} | {3 * 2**i for i in range(30)})
    return [p for p in steps if p <= max(1, limit)]


def list_count(n: int) -> int:
    """Lists for ``n`` records: the power of two nearest sqrt(n) (1024 at 1M, 512 at 200k)."""
    return int(2 ** max(3, round(np.log2(max(n, 1)) / 2)))


def ivf_index(width: int, codes: int, lists: int, metric: str) -> Any:
    kind = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
    # the factory owns its coarse quantizer (one made here would be freed by Python under the index)
    index = faiss.index_factory(width, f"IVF{lists},PQ{codes}x4fs", kind)
    index.pq.cp.min_points_per_centroid = 1
    index.cp.min_points_per_centroid = 1  # few rows a list in small namespaces; silences faiss's warning
    return index


def _exact_top(queries: NDArray[np.float32], chunks: Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]],
               metric: str, top: int) -> NDArray[np.int64]:
    """Slots of each query's ``top`` best keys over every chunk, best first, in the ANN's own metric."""
    best_s = np.full((len(queries), 0), -np.inf)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for slots, keys in chunks:
        scores = queries.astype(np.float64) @ keys.T.astype(np.float64)
        if metric == "euclidean":  # -|k - q|^2 up to a per-query constant
            scores = 2 * scores - np.einsum("ij,ij->i", keys, keys)[None, :]
        scores = np.concatenate([best_s, scores], axis=1)
        ids = np.concatenate([best_i, np.broadcast_to(slots, (len(queries), len(slots)))], axis=1)
        keep = np.argpartition(-scores, min(top, scores.shape[1] - 1), axis=1)[:, :top]
        best_s = np.take_along_axis(scores, keep, axis=1)
        best_i = np.take_along_axis(ids, keep, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, axis=1)


def calibrate(index: Any, slot_of_pos: NDArray[np.int64], query_slots: NDArray[np.int64],
              queries: NDArray[np.float32], chunks: Chunks, metric: str, shortlist: int, target: float,
              max_fraction: float, depths: tuple[int, ...] = ()) -> Calibration:
    """The smallest nprobe of ``nprobe_steps`` (up to ``max_fraction`` of the lists) whose ``shortlist``
    candidates hold ``target`` of each query's exact top 10, its own record left out of both; then the
    shortest of ``depths`` (each under ``shortlist``) whose prefix of those candidates still holds it."""
    truth = _exact_top(queries, chunks(), metric, _TOP + 1)
    # the exact top 10 other than the query's own record (not always first: dotproduct, duplicates)
    wanted = [set([s for s in row.tolist() if s != int(own)][:_TOP])
              for row, own in zip(truth, query_slots, strict=True)]

    def recall(found: NDArray[np.int64], depth: int) -> float:
        hits = []
        for row, w, own in zip(found[:, :depth], wanted, query_slots, strict=True):
            got = set(slot_of_pos[row[row >= 0]].tolist()) - {int(own)}
            hits.append(len(got & w) / max(1, len(w)))
        return float(np.mean(hits))

    tried: list[tuple[int, float]] = []
    depth = min(int(index.ntotal), shortlist)
    for nprobe in nprobe_steps(int(index.nlist * max_fraction)):
        index.nprobe = nprobe
        _, found = index.search(np.ascontiguousarray(queries), depth)
        full = recall(found, depth)
        tried.append((nprobe, round(full, 4)))
        if full >= target:
            for short in sorted(d for d in depths if d < depth):
                if (held := recall(found, short)) >= target:
                    return Calibration(nprobe, held, tuple(tried), short)
            return Calibration(nprobe, full, tuple(tried), depth)
    return Calibration(None, tried[-1][1] if tried else 0.0, tuple(tried))


def sample_passes(keys: NDArray[np.float32], width: int, codes: int, metric: str, shortlist: int,
                  target: float, max_fraction: float, queries: int) -> Calibration:
    """Calibrate a small IVF over a sample of the keys (rows of ``keys``, all in memory): data on which
    even this one, allowed twice the fraction of lists, falls short of ``target`` gets no full IVF."""
    lists = list_count(len(keys))
    index = ivf_index(width, codes, lists, metric)
    index.train(keys[:: max(1, len(keys) // (32 * lists))])
    index.add(keys)
    ids = np.arange(len(keys), dtype=np.int64)
    picked = np.sort(np.random.default_rng(1).choice(len(keys), min(queries, len(keys)), replace=False))

    def chunks() -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        yield ids, keys

    return calibrate(index, ids, picked, keys[picked], chunks, metric, shortlist, target, min(1.0, 2 * max_fraction))
