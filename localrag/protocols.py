"""The swappable parts of the engine, as structural protocols.

Index keys are the store's int64 chunk rowids. ``Allow`` is a pre-computed filter:
a sorted array of the keys a search may return, so a filtered search returns k
matches whenever k keys are allowed (single-stage filtering, as Pinecone does).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from localrag.types import Completion, Hit, Prompt

Keys = NDArray[np.int64]
Vectors = NDArray[np.float32]
Allow = NDArray[np.int64]
ScoredKeys = list[tuple[int, float]]


@runtime_checkable
class Tokenizer(Protocol):
    """Counts and splits text the way a model sees it (for token-aware chunking)."""

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """(char_start, char_end) of each token, special tokens excluded."""
        ...


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """(n, dim) float32, each row L2-normalised."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """(dim,) float32, L2-normalised."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """(n, dim) float32 for several queries in one call (the server's micro-batches)."""
        ...

    @property
    def tokenizer(self) -> Tokenizer: ...


@runtime_checkable
class VectorIndex(Protocol):
    dim: int

    def __len__(self) -> int: ...

    def add(self, keys: Keys, vectors: Vectors) -> None: ...

    def remove(self, keys: Keys) -> None: ...

    def search(self, queries: Vectors, k: int, allow: Allow | None = None) -> list[ScoredKeys]: ...

    def keys(self) -> Keys:
        """Every key in the index, sorted."""
        ...

    def save(self, path: Path, stamp: int) -> None:
        """Write atomically (temp file + os.replace), recording the store generation ``stamp``."""
        ...


@runtime_checkable
class KeywordIndex(Protocol):
    """Incremental: an add or remove is visible to the next search."""

    def __len__(self) -> int: ...

    def add(self, keys: Keys, texts: Sequence[str]) -> None: ...

    def remove(self, keys: Keys) -> None: ...

    def search(self, query: str, k: int, allow: Allow | None = None) -> ScoredKeys: ...

    def keys(self) -> Keys:
        """Every key in the index, sorted."""
        ...

    def save(self, path: Path, stamp: int) -> None:
        """Write atomically (temp file + os.replace), recording the store generation ``stamp``."""
        ...


@runtime_checkable
class Reranker(Protocol):
    def rerank(self, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]: ...


@runtime_checkable
class Generator(Protocol):
    """A text generator behind the answer pipeline (llama.cpp, OpenAI-compatible HTTP, extractive).

    ``stream`` yields text pieces and ends with the ``Completion`` (with token usage)
    whose text is the pieces joined.
    """

    @property
    def name(self) -> str:
        """The provider's name (``llamacpp``, ``openai``, ``extractive``, ...)."""
        ...

    @property
    def model(self) -> str:
        """The model that answers."""
        ...

    def generate(
        self, prompt: Prompt, *, max_tokens: int, temperature: float, stop: Sequence[str] = ()
    ) -> Completion: ...

    def stream(
        self, prompt: Prompt, *, max_tokens: int, temperature: float, stop: Sequence[str] = ()
    ) -> Iterator[str | Completion]: ...

    def count_tokens(self, text: str) -> int: ...

    @property
    def context_window(self) -> int:
        """The most tokens (prompt plus completion) one call can hold."""
        ...
