"""The local models behind ``embed`` and ``sparse_embed`` fields of document indexes.

``embed`` uses localrag's configured embedder (``[embed] model`` of the data directory), loaded
on first use so a server without embedded fields never loads a model. ``sparse_embed`` uses a
hashed-token encoder. Pinecone's hosted models cannot run offline: scores differ from theirs.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from localrag.index.tokenize import TextTokenizer
from localrag.pinecone.wire import Sparse
from localrag.protocols import Embedder

SPARSE_DIMENSIONS = 2**31  # the hashed vocabulary of the local sparse encoder


class EmbedderSource:
    """The local embedder behind ``embed`` fields, loaded on first use (a model load takes seconds)."""

    def __init__(self, load: Any, dim: Any) -> None:
        self._load = load
        self._dim = dim
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return int(self._dim() if callable(self._dim) else self._dim)

    def get(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._load()
            return self._embedder


def default_embedder(data_dir: Path) -> EmbedderSource:
    """The embedder ``[embed]`` in ``<data_dir>/localrag.toml`` names (the defaults without one)."""
    from localrag.config import load_settings
    from localrag.embed.factory import embedder_dim, load_embedder

    embed = load_settings(data_dir if (data_dir / "localrag.toml").is_file() else None).embed
    return EmbedderSource(lambda: load_embedder(embed.model, threads=embed.threads, batch_size=embed.batch_size,
                                                max_tokens=embed.max_tokens),
                          lambda: embedder_dim(embed.model))


class SparseEncoder:
    """Text -> sparse vector by hashed tokens: documents weigh ``1 + ln(tf)``, queries 1 per term.

    It stands in for Pinecone's hosted sparse models (pinecone-sparse-english-v0 and others), which
    cannot run offline: results rank by shared terms, but the scores are not those models'.
    """

    def __init__(self, tokenize: TextTokenizer) -> None:
        self.tokenize = tokenize

    @staticmethod
    def _index(term: str) -> int:
        return zlib.crc32(term.encode()) % SPARSE_DIMENSIONS

    def _encode(self, counts: dict[int, float]) -> Sparse | None:
        if not counts:
            return None
        order = sorted(counts)
        return (np.asarray(order, dtype=np.uint32), np.asarray([counts[i] for i in order], dtype=np.float32))

    def document(self, text: str) -> Sparse | None:
        counts: dict[int, float] = {}
        for term, tf in Counter(self.tokenize(text)).items():
            index = self._index(term)
            counts[index] = counts.get(index, 0.0) + 1.0 + math.log(tf)
        return self._encode(counts)

    def query(self, text: str) -> Sparse | None:
        return self._encode({self._index(t): 1.0 for t in self.tokenize(text)})
