"""Cross-encoders from a local path: an ONNX model (the project's own, or any exported one) or a
sentence-transformers ``CrossEncoder`` folder. Nothing is downloaded: a path that holds neither
raises ModelNotFoundError.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from localrag.embed.onnx import make_session
from localrag.embed.tokenizer import TOKENIZER_FILE, ModelTokenizer
from localrag.errors import DependencyMissingError, ModelNotFoundError
from localrag.rerank.base import ScoringReranker

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256


def _model_limit(folder: Path) -> int:
    """The most tokens the model takes, from its own files (reranker.json, config.json, tokenizer_config.json)."""
    for name, key in (("reranker.json", "max_tokens"), ("tokenizer_config.json", "model_max_length"),
                      ("config.json", "max_position_embeddings")):
        try:
            value = json.loads((folder / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and 3 <= value <= 100_000:
            return value
    return DEFAULT_MAX_TOKENS


class OnnxCrossEncoder(ScoringReranker):
    """Scores pairs with an ONNX cross-encoder; passages are cut to the model's token limit.

    ``path``: a ``.onnx`` file or a folder holding ``model.onnx`` (or ``onnx/model.onnx``);
    ``tokenizer_folder``: where ``tokenizer.json`` is (default: beside the model). The first
    output is the score: shape (batch,), (batch, 1), or (batch, 2) read as the second class's
    logit minus the first's.
    """

    name = "cross-encoder"

    def __init__(
        self, path: Path, tokenizer_folder: Path | None = None, *, threads: int = 1, batch_size: int = 32,
        max_tokens: int = 0, blend: float = 0.0,
    ) -> None:
        super().__init__(blend)
        path = Path(path).expanduser()
        model_file = path if path.is_file() else next(
            (p for p in (path / "model.onnx", path / "onnx" / "model.onnx") if p.is_file()), None
        )
        if model_file is None:
            raise ModelNotFoundError(f"no ONNX cross-encoder at {path} (expected model.onnx)")
        folder = Path(tokenizer_folder) if tokenizer_folder is not None else _tokenizer_folder(model_file)
        limit = _model_limit(folder)
        self.max_tokens = min(max_tokens, limit) if max_tokens > 0 else limit
        self.batch_size = max(1, batch_size)
        self.path = model_file
        self._tokenizer = ModelTokenizer(folder, max_tokens=self.max_tokens)
        self._session = make_session(model_file, threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._output = self._session.get_outputs()[0].name

    def score_pairs(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return self.score_pairs_raw([(query, p) for p in passages])

    def score_pairs_raw(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        out = np.empty(len(pairs), dtype=np.float32)
        for start in range(0, len(pairs), self.batch_size):
            batch = self._tokenizer.encode_pairs(pairs[start : start + self.batch_size])
            (logits,) = self._session.run([self._output], {k: v for k, v in batch.items() if k in self._inputs})
            out[start : start + len(logits)] = _to_scores(np.asarray(logits, dtype=np.float32))
        return out


def _tokenizer_folder(model_file: Path) -> Path:
    for folder in (model_file.parent, model_file.parent.parent):
        if (folder / TOKENIZER_FILE).is_file():
            return folder
    raise ModelNotFoundError(f"no {TOKENIZER_FILE} beside {model_file}")


def _to_scores(logits: np.ndarray) -> np.ndarray:
    if logits.ndim == 2 and logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]
    return logits.reshape(len(logits), -1)[:, 0]


class SentenceTransformersCrossEncoder(ScoringReranker):
    """A sentence-transformers ``CrossEncoder`` folder, run with torch (``localrag[torch]``)."""

    name = "cross-encoder"

    def __init__(self, folder: Path, *, threads: int = 1, batch_size: int = 32, max_tokens: int = 0,
                 blend: float = 0.0) -> None:
        super().__init__(blend)
        try:
            import torch
            from sentence_transformers import CrossEncoder
        except ImportError as e:
            raise DependencyMissingError(f"a CrossEncoder folder needs sentence-transformers and torch: {e}; "
                                         "pip install 'localrag[torch]' (or export the model to ONNX)") from e
        if threads > 0:
            torch.set_num_threads(threads)
        limit = _model_limit(Path(folder))
        self.max_tokens = min(max_tokens, limit) if max_tokens > 0 else limit
        self.batch_size = max(1, batch_size)
        self._model: Any = CrossEncoder(str(folder), device="cpu", max_length=self.max_tokens,
                                        local_files_only=True)

    def score_pairs(self, query: str, passages: Sequence[str]) -> np.ndarray:
        scores = self._model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                     show_progress_bar=False, activation_fn=None)
        return _to_scores(np.asarray(scores, dtype=np.float32).reshape(len(passages), -1))


def load_cross_encoder(path: str | Path, *, threads: int = 1, batch_size: int = 32, max_tokens: int = 0,
                       blend: float = 0.0) -> ScoringReranker:
    """The cross-encoder at ``path``: ONNX when it holds ``model.onnx`` (or is a ``.onnx`` file), else a
    sentence-transformers folder (``config.json`` with weights)."""
    target = Path(path).expanduser()
    if not target.exists():
        raise ModelNotFoundError(f"reranker path {target} does not exist")
    onnx = target.is_file() or (target / "model.onnx").is_file() or (target / "onnx" / "model.onnx").is_file()
    if onnx:
        return OnnxCrossEncoder(target, threads=threads, batch_size=batch_size, max_tokens=max_tokens, blend=blend)
    if (target / "config.json").is_file():
        return SentenceTransformersCrossEncoder(target, threads=threads, batch_size=batch_size,
                                                max_tokens=max_tokens, blend=blend)
    raise ModelNotFoundError(f"{target} holds neither model.onnx nor a sentence-transformers CrossEncoder")
