"""An on-disk cache of LLM completions, keyed by model and prompt, so query expansions are computed once.

Each entry keeps the milliseconds the original generation took, so a benchmark that reads
from the cache still reports the latency a live query would have paid.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from localrag.protocols import Generator
from localrag.types import Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CachedText:
    text: str
    ms: float  # time the generation took when it was made
    hit: bool  # True when read from the cache


def prompt_key(model: str, prompt: Prompt, max_tokens: int) -> str:
    payload = json.dumps(
        [model, [[m.role, m.content] for m in prompt.messages], max_tokens], ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CompletionCache:
    """A tiny SQLite key-value table; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, text TEXT, ms REAL)")
        self._conn.commit()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[str, float] | None:
        with self._lock:
            row = self._conn.execute("SELECT text, ms FROM completions WHERE key = ?", (key,)).fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def put(self, key: str, text: str, ms: float) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?)", (key, text, ms))
            self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Completer:
    """Greedy completions from a generator, read through an optional cache."""

    def __init__(self, generator: Generator, cache: CompletionCache | None = None, max_tokens: int = 96) -> None:
        self.generator = generator
        self.cache = cache
        self.max_tokens = max_tokens

    def complete(self, prompt: Prompt) -> CachedText:
        key = prompt_key(self.generator.model, prompt, self.max_tokens)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return CachedText(cached[0], cached[1], True)
        started = time.perf_counter()
        completion = self.generator.generate(prompt, max_tokens=self.max_tokens, temperature=0.0)
        ms = (time.perf_counter() - started) * 1000
        # A provider without a language model (extractive) answers "" to these prompts: not cached,
        # so a later run with the model installed computes the real expansion.
        if self.cache is not None and completion.text.strip():
            self.cache.put(key, completion.text, ms)
        return CachedText(completion.text, ms, False)
