"""The BM25 index's array building blocks: growable buffers, posting runs, and vectorised helpers.

Kept apart from localrag/index/bm25.py (the index's add/remove/search/save logic) so that module reads
as the algorithm; nothing here knows about terms or scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from localrag.errors import CorruptIndexError, InvalidInputError


class Buf:
    """A 1-D array that grows in place with amortised O(1) appends."""

    __slots__ = ("data", "dtype", "size")

    def __init__(self, dtype: Any, values: ArrayLike | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.data: np.ndarray = np.array([] if values is None else values, dtype=dtype)
        self.size = len(self.data)

    @classmethod
    def wrap(cls, dtype: Any, array: np.ndarray) -> Buf:
        """Use ``array`` as is (a read-only memory map stays one until the buffer grows)."""
        buf = cls(dtype)
        buf.data, buf.size = array, len(array)
        return buf

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.size]

    def extend(self, values: ArrayLike) -> None:
        values = np.asarray(values, dtype=self.dtype)
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data), 16), dtype=self.dtype)
            grown[: self.size] = self.view
            self.data = grown
        self.data[self.size : end] = values
        self.size = end


@dataclass(frozen=True)
class Run:
    """Postings of slots [lo, hi) grouped by term id: term t's are ``starts[t]:starts[t + 1]``
    (slot order kept within a term; terms newer than the run have none)."""

    lo: int
    hi: int
    starts: NDArray[np.int64]
    slots: NDArray[np.int32]
    tf: NDArray[np.integer[Any]]


def as_keys(keys: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(keys)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"keys must be a 1-D integer array, got {arr.dtype} with shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def term_starts(terms: NDArray[np.int32], n_terms: int) -> NDArray[np.int64]:
    """Offsets of each term's postings in ``terms`` sorted: term t's are ``starts[t]:starts[t + 1]``."""
    starts = np.zeros(n_terms + 1, np.int64)
    np.cumsum(np.bincount(terms, minlength=n_terms), out=starts[1:])
    return starts


def narrow_tf(tf: np.ndarray) -> np.ndarray:
    """Term frequencies as uint16 when they fit (a quarter of the postings' bytes on disk saved)."""
    return tf.astype(np.uint16) if not len(tf) or int(tf.max()) < 1 << 16 else tf


def concat_ranges(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenation of arange(s, s + n) for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(total)


def top_k(scores: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best by score desc then key asc; argpartition first so only k items get sorted."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)
        kth = scores[part[k - 1]]
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)
        tied = tied[np.argsort(keys[tied], kind="stable")[: k - len(above)]]
        chosen = np.concatenate([above, tied])
        scores, keys = scores[chosen], keys[chosen]
    order = np.lexsort((keys, -scores))
    return scores[order], keys[order]


def utf8_bytes(text: str) -> NDArray[np.uint8]:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def int_array(arr: np.ndarray) -> np.ndarray:
    require(arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer), "an array has the wrong type")
    return arr


def within(arr: np.ndarray, lo: int, hi: int | None) -> bool:
    if not len(arr):
        return True
    return int(arr.min()) >= lo and (hi is None or int(arr.max()) <= hi)


def require(ok: bool, what: str) -> None:
    if not ok:
        raise CorruptIndexError(f"BM25 index file is inconsistent: {what}")
