"""A small thread-safe LRU cache with an optional time-to-live and hit/miss counters.

Used for query embeddings, search results and answers. Keys that depend on the data
carry the store generation, so a write makes old entries unreachable (they age out);
the TTL bounds how long anything is served at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRUCache(Generic[V]):
    def __init__(self, name: str, size: int, ttl_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.size = max(0, int(size))
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> V | None:
        if not self.size:
            return None
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and self.ttl_s and self._clock() - entry[0] > self.ttl_s:
                del self._data[key]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, value: V) -> None:
        if not self.size:
            return
        with self._lock:
            self._data[key] = (self._clock(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def figures(self) -> dict[str, float]:
        return {"size": len(self._data), "capacity": self.size, "hits": self.hits, "misses": self.misses,
                "hit_rate": round(self.hit_rate(), 4)}
