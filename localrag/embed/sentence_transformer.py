"""Sentence embeddings on torch via sentence-transformers (the optional ``localrag[torch]`` path).

It is the reference the ONNX exports are checked against. torch and sentence-transformers are
imported only when an instance is made, so the rest of the library runs without them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localrag.embed.tokenizer import ModelTokenizer
from localrag.errors import DependencyMissingError, ModelNotFoundError
from localrag.models import ensure_offline
from localrag.protocols import Vectors

log = logging.getLogger(__name__)

TORCH_HINT = "pip install 'localrag[torch]'"


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' weight-loading progress bar (the library never prints)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """Implements ``Embedder`` with ``SentenceTransformer`` loaded from a local folder only."""

    def __init__(
        self,
        folder: Path,
        threads: int = 0,
        batch_size: int = 32,
        max_tokens: int = 256,
        *,
        name: str = "sentence-transformers",
        vector_space: str = "",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        ensure_offline()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise DependencyMissingError(
                f"the {name!r} embedder needs torch and sentence-transformers: {TORCH_HINT}"
            ) from e
        if threads > 0:
            # Process-wide setting: torch has one intra-op pool per process.
            torch.set_num_threads(threads)
        try:
            with quiet_transformers():
                self._model: Any = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        except (OSError, ValueError) as e:
            raise ModelNotFoundError(f"cannot load sentence-transformers model from {folder}: {e}") from e
        self._model.max_seq_length = max_tokens
        self.name = name
        self.vector_space = vector_space or name  # read by the engine to refuse mixed vectors
        self.batch_size = batch_size
        # sentence-transformers 6 renamed get_sentence_embedding_dimension (still kept, deprecated).
        getter = getattr(self._model, "get_embedding_dimension", None)
        dim = getter() if getter is not None else self._model.get_sentence_embedding_dimension()
        if dim is None:
            dim = int(self.embed_query("dimension probe").shape[0])
        self.dim = int(dim)
        self._tokenizer = ModelTokenizer(folder, max_tokens=max_tokens)

    @property
    def tokenizer(self) -> ModelTokenizer:
        return self._tokenizer

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.embed_documents(texts)
