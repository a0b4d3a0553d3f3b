"""The rows that flow between the SQLite store and its callers, and the small helpers on chunk keys.

Kept apart from localrag/store/sqlite.py so the store's read and feedback parts (store/reads.py,
store/feedback_rows.py) share them without importing the store itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from localrag.types import Chunk, Document

EMPTY_KEYS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document ready to be written: chunked, embedded and hashed."""

    document: Document
    content_hash: str
    chunks: Sequence[Chunk]
    vectors: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class WriteResult:
    generation: int
    namespace_id: int
    added_keys: NDArray[np.int64]
    removed_keys: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    chunk_id: int
    doc_id: str
    namespace: str
    text: str
    source: str
    title: str
    char_start: int
    char_end: int
    page: int | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    generation: int
    namespace_id: int
    chunk_id: int
    op: str  # "add" | "remove"


def index_text(title: str, text: str) -> str:
    """What both indexes see for a chunk: its document title, then its text."""
    return f"{title}\n{text}" if title and not text.startswith(title) else text


def keys_array(values: Sequence[int]) -> NDArray[np.int64]:
    return np.asarray(values, dtype=np.int64) if len(values) else EMPTY_KEYS


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
