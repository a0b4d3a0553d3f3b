"""Test doubles for unit tests of other layers. Never used outside tests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from localrag.generate.base import approx_tokens, collect
from localrag.types import Completion, Prompt

_WORD = re.compile(r"\w+", re.UNICODE)


class RegexTokenizer:
    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]


class HashingEmbedder:
    """Bag of hashed words: similar texts get similar unit vectors, deterministically."""

    name = "fake-hashing"
    vector_space = "fake-hashing"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self._tokenizer = RegexTokenizer()
        self.calls = 0

    @property
    def tokenizer(self) -> RegexTokenizer:
        return self._tokenizer

    def _one(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] % 2 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            vector[0] = 1.0
            return vector
        return vector / norm

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._one(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._one(text)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


class Scripted:
    """Streams a fixed reply (or a reply chosen by a function of the prompt), piece by piece."""

    name = "scripted"
    model = "scripted-1"

    def __init__(self, reply: str | Any, fail: list[BaseException] | None = None,
                 logprob: float | None = None) -> None:
        self.reply = reply
        self.fail = list(fail or [])
        self.logprob = logprob
        self.prompts: list[Prompt] = []

    @property
    def context_window(self) -> int:
        return 4096

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def generate(self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0,
                 stop: Sequence[str] = ()) -> Completion:
        return collect(self.stream(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop))

    def stream(self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0,
               stop: Sequence[str] = ()) -> Iterator[str | Completion]:
        self.prompts.append(prompt)
        if self.fail:
            raise self.fail.pop(0)
        text = self.reply(prompt) if callable(self.reply) else self.reply
        for i in range(0, len(text), 3):
            yield text[i : i + 3]
        yield Completion(text, 100, 10, self.model, "stop", self.name, mean_logprob=self.logprob)
