"""Micro-batching of concurrent searches, and the bounded queue in front of the LLM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool

from localrag.errors import OverloadedError
from localrag.types import SearchRequest, SearchResult

log = logging.getLogger(__name__)

# At most this many batch windows spent gathering one batch (the wait ends when arrivals stop).
_MAX_WINDOWS = 4

RunBatch = Callable[[Sequence[SearchRequest]], list[SearchResult]]


class MicroBatcher:
    """Searches that arrive within ``window_ms`` of each other run as one ``retrieve`` call:
    one embedding call and one FAISS search per namespace/filter group (see Retriever.search).

    While a batch runs in the thread pool, new arrivals queue up and form the next batch, so
    under load batches grow by themselves; the window only matters when the server is idle.
    ``workers`` batches may run at once (FAISS and ONNX release the GIL); one worker forms the
    largest batches, which cost the least CPU per search. ``sizes`` counts batches by size
    bucket (1, 2-3, 4-7, ...: powers of two) for the metrics.
    """

    def __init__(self, run: RunBatch, window_ms: float = 2.0, max_batch: int = 64, workers: int = 1) -> None:
        self._run = run
        self.window_s = max(0.0, window_ms) / 1000
        self.max_batch = max(1, max_batch)
        self.workers = max(1, workers)
        self._pending: list[tuple[SearchRequest, asyncio.Future[SearchResult]]] = []
        self._wakeup: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self.batches = 0
        self.batched_requests = 0
        self.sizes: dict[str, int] = {}

    async def submit(self, request: SearchRequest) -> SearchResult:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
            self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        future: asyncio.Future[SearchResult] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _worker(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._gather()
            # Share the queue with the idle workers (self included), so that on 2 cores two half
            # batches run side by side instead of one worker taking everything.
            idle = max(1, self.workers - self._busy)
            size = min(self.max_batch, -(-len(self._pending) // idle))
            batch = self._pending[:size]
            del self._pending[: len(batch)]
            if batch:
                self._busy += 1
                try:
                    await self._execute(batch)
                finally:
                    self._busy -= 1

    async def _gather(self) -> None:
        """Let concurrent arrivals join: wait one window, and more while requests keep coming.

        Right after a batch its clients are still sending their next requests; taking only the
        few already queued would alternate large and tiny batches (measured at c=32: a third of
        the batches were single searches), and a tiny batch costs the most CPU per search.
        """
        for _ in range(_MAX_WINDOWS):
            before = len(self._pending)
            if not self.window_s or before >= self.max_batch:
                return
            await asyncio.sleep(self.window_s)
            if len(self._pending) == before:
                return

    async def _execute(self, batch: list[tuple[SearchRequest, asyncio.Future[SearchResult]]]) -> None:
        self.batches += 1
        self.batched_requests += len(batch)
        low = 1 << (len(batch).bit_length() - 1)
        bucket = str(low) if low == 1 else f"{low}-{2 * low - 1}"
        self.sizes[bucket] = self.sizes.get(bucket, 0) + 1
        try:
            results = await run_in_threadpool(self._run, [request for request, _ in batch])
        except Exception as exc:
            if len(batch) > 1:  # one bad request must not fail the others: run them alone to place the error
                log.debug("a batch of %d searches failed; running them one by one", len(batch))
                for item in batch:
                    await self._execute([item])
            elif not batch[0][1].done():
                batch[0][1].set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


class LLMQueue:
    """At most ``concurrency`` generations at once and ``size`` waiting; beyond that, 503."""

    def __init__(self, concurrency: int = 1, size: int = 8) -> None:
        self.concurrency = max(1, concurrency)
        self.size = max(0, size)
        self._semaphore: asyncio.Semaphore | None = None
        self.waiting = 0
        self.running = 0
        self.rejected = 0

    async def acquire(self) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        if self._semaphore.locked() and self.waiting >= self.size:
            self.rejected += 1
            raise OverloadedError(f"the answer queue is full ({self.size} waiting); retry later")
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1

    def release(self) -> None:
        assert self._semaphore is not None
        self.running -= 1
        self._semaphore.release()


class Slot:
    """One acquired LLM slot, released exactly once (a stream may end in several ways)."""

    def __init__(self, queue: LLMQueue) -> None:
        self._queue = queue
        self._held = False

    async def __aenter__(self) -> Slot:
        await self._queue.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._queue.release()
