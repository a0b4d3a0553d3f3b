"""The ingest pipeline's moving parts: a stage clock, and the embedding lane that runs beside the writer.

Embedding is nearly all of an ingest's work; everything else (reading, chunking, hashing, SQLite
writes, index updates) is done on the caller's thread while the lane embeds the previous group.
onnxruntime and the tokenizer release the GIL, so the two really overlap. The lane holds at most
``depth`` groups, which bounds memory whatever the size of the input.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")

STAGES = ("loading", "hashing", "chunking", "embedding", "waiting", "writing", "indexing")


class StageClock:
    """Busy seconds per stage. Stages run on two threads, so their sum may exceed the wall time:
    ``embedding`` is the lane's busy time, ``waiting`` the writer's time blocked on the lane."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - began)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.seconds)


@dataclass(frozen=True, slots=True)
class IngestProfile:
    """Where one ``IngestPipeline.run`` spent its time (seconds), for logs and benchmarks."""

    wall: float
    stages: dict[str, float]
    chunks_embedded: int

    @property
    def embedding_share(self) -> float:
        return self.stages.get("embedding", 0.0) / self.wall if self.wall > 0 else 0.0


@dataclass(slots=True)
class _Pending(Generic[T]):
    item: T
    future: Future[np.ndarray]


class EmbedLane(Generic[T]):
    """Embeds groups on one background thread, handing them back in submission order.

    ``submit`` returns the groups whose vectors are ready once more than ``depth`` are in flight;
    ``drain`` waits for all. A failure in the lane is raised by the ``submit``/``drain`` that meets it.
    ``close`` drops what is queued and waits for the running group: nothing outlives the run.
    """

    def __init__(self, embed: Callable[[T], np.ndarray], clock: StageClock, depth: int = 1) -> None:
        self._embed = embed
        self._clock = clock
        self._depth = max(0, depth)
        self._pending: deque[_Pending[T]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="localrag-embed")

    def _timed(self, item: T) -> np.ndarray:
        with self._clock.measure("embedding"):
            return self._embed(item)

    def submit(self, item: T) -> list[tuple[T, np.ndarray]]:
        self._pending.append(_Pending(item, self._pool.submit(self._timed, item)))
        done = []
        while len(self._pending) > self._depth:
            done.append(self._next())
        return done

    def drain(self) -> list[tuple[T, np.ndarray]]:
        return [self._next() for _ in range(len(self._pending))]

    def __len__(self) -> int:
        return len(self._pending)

    def _next(self) -> tuple[T, np.ndarray]:
        pending = self._pending.popleft()
        with self._clock.measure("waiting"):
            return pending.item, pending.future.result()

    def close(self) -> None:
        for pending in self._pending:
            pending.future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
