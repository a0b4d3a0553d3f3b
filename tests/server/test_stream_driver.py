"""The answer streams' driver (server/routes.iterate): one thread per stream, closed however it ends.

llama.cpp's generator holds the model's RLock across its yields. Driven from the thread pool, steps and
the close could land on different threads; a client that stopped an answer then left the lock held by a
thread that would never release it, and every later generation waited for ever.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from starlette.concurrency import run_in_threadpool

from localrag.server.routes import iterate


class LockedStream:
    """Holds an RLock across its yields, as LlamaCppGenerator.stream does, and records its threads."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.threads: list[int] = []
        self.closed_on: int | None = None

    def run(self, n: int) -> Iterator[str]:
        with self.lock:
            try:
                for i in range(n):
                    self.threads.append(threading.get_ident())
                    yield f"t{i}"
            finally:
                self.closed_on = threading.get_ident()

    def free(self) -> bool:
        """Whether another thread can take the lock now."""
        got: list[bool] = []

        def take() -> None:
            got.append(self.lock.acquire(timeout=10))
            if got[0]:
                self.lock.release()

        other = threading.Thread(target=take)
        other.start()
        other.join()
        return got[0]


async def _first(stream: LockedStream, n: int, take: int) -> list[str]:
    """The first ``take`` items, then leave. After each item a blocker occupies the pool thread that just
    went idle (anyio hands out the most recently idle one), so a pool-driven stream would change threads."""
    items = []
    release = threading.Event()
    blockers = []
    agen = iterate(stream.run(n))
    async for item in agen:
        items.append(item)
        blockers.append(asyncio.create_task(run_in_threadpool(release.wait, 10)))
        await asyncio.sleep(0.05)
        if len(items) == take:
            break
    await agen.aclose()
    release.set()
    await asyncio.gather(*blockers)
    return items


def test_a_stream_left_early_is_closed_on_its_own_thread_and_frees_the_lock() -> None:
    stream = LockedStream()

    async def main() -> list[str]:
        items = await _first(stream, 50, 3)
        for _ in range(200):  # the close is queued to the stream's thread; wait for it
            if stream.closed_on is not None:
                break
            await asyncio.sleep(0.01)
        return items

    assert asyncio.run(main()) == ["t0", "t1", "t2"]
    assert len(set(stream.threads)) == 1 and stream.closed_on == stream.threads[0]
    assert stream.threads[0] != threading.get_ident()
    assert stream.free()


def test_a_stream_read_to_the_end_and_one_that_fails() -> None:
    stream = LockedStream()

    async def whole() -> list[str]:
        return [item async for item in iterate(stream.run(4))]

    assert asyncio.run(whole()) == ["t0", "t1", "t2", "t3"]
    assert stream.free()

    def broken() -> Iterator[str]:
        yield "a"
        raise ValueError("the model failed")

    async def failing() -> list[str]:
        return [item async for item in iterate(broken())]

    with pytest.raises(ValueError, match="the model failed"):
        asyncio.run(failing())


def test_a_cancelled_request_still_closes_the_stream() -> None:
    stream = LockedStream()
    gate = threading.Event()

    def slow() -> Iterator[str]:
        with stream.lock:
            try:
                yield "first"
                gate.wait(10)  # the request is cancelled while this step runs
                yield "second"
            finally:
                stream.closed_on = threading.get_ident()

    async def main() -> None:
        async def consume() -> None:
            async for _ in iterate(slow()):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        for _ in range(500):
            if stream.closed_on is not None:
                return
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert stream.closed_on is not None
    assert stream.free()
