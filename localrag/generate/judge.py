"""A llama.cpp model read as a classifier: the logits of label words ("yes", "no") for the first
token of the reply, with no text generated.

Used by the LLM reranker (is this passage relevant?) and by claim grounding (does this passage
state this claim?). Each item is a user message in two parts, ``head`` and ``tail``; items that
share a head (one passage checked against several claims) evaluate it once: the system message is
kept in the KV cache as the fixed prefix (``LlamaCppGenerator.prefill``), the head after it, and
only each tail is evaluated per item. The evaluation schedule (fixed prefix alone from position 0,
then the head, then the tail) depends on the item alone, so its logits never depend on what the
model evaluated before.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from localrag.generate.llamacpp import LlamaCppGenerator, _common_prefix, _import_llama_cpp
from localrag.types import ChatMessage, Prompt

YES = ("yes", "Yes", " yes", " Yes", "YES")
NO = ("no", "No", " no", " No", "NO")


class LabelJudge:
    """Scores items by the largest logit among each label's words (first token of each word)."""

    def __init__(self, generator: LlamaCppGenerator, system: str, labels: Sequence[Sequence[str]] = (YES, NO),
                 *, max_tokens: int = 256, keep_state: bool = True) -> None:
        self.generator = generator
        self.system = system
        self.labels = [tuple(words) for words in labels]
        self.max_tokens = max(8, max_tokens)  # a head or tail longer than this is cut
        # put back what the context held before (the answer prompt's cached prefix), so judging an answer
        # does not cost the next question the re-evaluation of its system message
        self.keep_state = keep_state
        self._ids: list[list[int]] = []

    def truncate(self, text: str) -> str:
        """``text`` cut to ``max_tokens`` model tokens."""
        with self.generator._lock:
            llm = self.generator._model()
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if len(tokens) <= self.max_tokens:
                return text
            return str(llm.detokenize(tokens[: self.max_tokens]).decode("utf-8", "ignore"))

    def logits(self, items: Sequence[tuple[str, str]]) -> np.ndarray:
        """One row per ``(head, tail)`` item, one column per label."""
        llama_cpp = _import_llama_cpp()
        gen = self.generator
        out = np.empty((len(items), len(self.labels)), dtype=np.float32)
        # The generator's lock serialises every use of its llama.cpp context (shared with answering).
        with gen._lock:
            llm = gen._model()
            if not self._ids:
                self._ids = [_first_ids(llm, words) for words in self.labels]
            saved = _save_kv(llama_cpp, llm) if self.keep_state and llm.n_tokens else None
            try:
                self._score(llama_cpp, items, out)
            finally:
                if saved is not None and gen._llm is llm:
                    _restore_kv(llama_cpp, llm, saved)
        return out

    def _score(self, llama_cpp: Any, items: Sequence[tuple[str, str]], out: np.ndarray) -> None:
        gen = self.generator
        llm = gen._model()
        for i, (head, tail) in enumerate(items):
            prompt = self._prompt(head + tail)
            tokens = gen.render(prompt)
            llm = gen._model(len(tokens) + 1)
            head_tokens = gen.render(self._prompt(head))
            shared = min(_common_prefix(head_tokens, tokens), len(tokens) - 1)
            if not _holds(llm, tokens[:shared]):
                # prefill brings the context to the fixed prefix, evaluated alone from position 0
                fixed = gen.prefill(prompt, tokens)
                fixed = llm.n_tokens if fixed == 0 else fixed
                shared = max(shared, fixed)
                llm.eval(tokens[fixed:shared])
            llm.n_tokens = shared
            llm.eval(tokens[shared:])
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(llm.n_vocab(),))
            out[i] = [float(row[ids].max()) for ids in self._ids]

    def _prompt(self, user: str) -> Prompt:
        return Prompt((ChatMessage("system", self.system), ChatMessage("user", user)))


def _save_kv(llama_cpp: Any, llm: Any) -> tuple[Any, int, Any]:
    """The KV cells of the context's sequence and the tokens they hold. Only these: ``Llama.save_state``
    also copies the logits of every evaluated token and zeroes its whole logits buffer on load (about
    1 GB of memory touched for Qwen2.5-0.5B)."""
    size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(llm.ctx, buffer, size, 0)
    return buffer, int(written), llm.input_ids[: llm.n_tokens].copy()


def _restore_kv(llama_cpp: Any, llm: Any, saved: tuple[Any, int, Any]) -> None:
    buffer, size, ids = saved
    llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), 0, -1, -1)
    llm.n_tokens = 0
    if size and llama_cpp.llama_state_seq_set_data(llm.ctx, buffer, size, 0) == size:
        llm.input_ids[: len(ids)] = ids
        llm.n_tokens = len(ids)
    else:  # nothing restored: the next prompt is evaluated from the start, as after a reset
        llm.reset()


def _first_ids(llm: Any, words: Sequence[str]) -> list[int]:
    ids = set()
    for word in words:
        tokens = llm.tokenize(word.encode("utf-8"), add_bos=False, special=False)
        if tokens:
            ids.add(int(tokens[0]))
    return sorted(ids)


def _holds(llm: Any, tokens: Sequence[int]) -> bool:
    """Whether the context's KV cache holds exactly ``tokens`` as its first entries."""
    n = len(tokens)
    return bool(n) and llm.n_tokens >= n and _common_prefix(list(llm.input_ids[:n]), tokens) == n
