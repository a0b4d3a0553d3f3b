"""The model's own WordPiece tokenizer (``tokenizer.json``), for chunking and for the ONNX embedder.

Two tokenizer instances are kept because truncation and padding are state of the Rust object:
one without truncation (the chunker must see every token of a long document) and one that
truncates to the model's limit for embedding. Padding is done in numpy by the caller's batch
builder, so each batch is padded only to its own longest row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Encoding, Tokenizer

from localrag.errors import ModelNotFoundError

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"


class ModelTokenizer:
    """Implements the ``Tokenizer`` protocol; also counts tokens and builds model input batches."""

    def __init__(self, folder: Path, max_tokens: int = 256) -> None:
        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise ModelNotFoundError(f"no {TOKENIZER_FILE} in {folder}")
        if max_tokens < 3:
            raise ValueError("max_tokens must leave room for [CLS], one token and [SEP]")
        self.max_tokens = max_tokens
        self._plain = Tokenizer.from_file(str(path))
        file_padding = self._plain.padding  # the file's own settings, read before clearing them
        self.pad_id = int(file_padding["pad_id"]) if file_padding else self._token_id("[PAD]")
        self._plain.no_truncation()
        self._plain.no_padding()
        self._model = Tokenizer.from_file(str(path))
        self._model.no_padding()
        self._model.enable_truncation(max_length=max_tokens)

    def _token_id(self, token: str) -> int:
        found = self._plain.token_to_id(token)
        return int(found) if found is not None else 0

    # -- the Tokenizer protocol (chunking) ----------------------------------------------
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """(char_start, char_end) of every token of ``text``, special tokens excluded, never truncated."""
        if not text:
            return []
        encoding = self._plain.encode(text, add_special_tokens=False)
        return [(int(start), int(end)) for start, end in encoding.offsets]

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` without special tokens and without truncation."""
        if not text:
            return 0
        return len(self._plain.encode(text, add_special_tokens=False).ids)

    # -- model input --------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        """Encodings with [CLS]/[SEP], truncated to ``max_tokens``, unpadded."""
        return self._model.encode_batch(list(texts))

    def pad(self, encodings: Sequence[Encoding]) -> dict[str, NDArray[np.int64]]:
        """input_ids / attention_mask / token_type_ids, right-padded to the longest encoding."""
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> dict[str, NDArray[np.int64]]:
        """Cross-encoder inputs ``[CLS] a [SEP] b [SEP]``: the longer side is cut first to ``max_tokens``."""
        return self.pad(self._model.encode_batch([(a, b) for a, b in pairs]))

    def encode_batch(self, texts: Sequence[str]) -> dict[str, NDArray[np.int64]]:
        """Model inputs for ``texts``: truncated to ``max_tokens`` and padded to the longest."""
        return self.pad(self.encode(texts))
