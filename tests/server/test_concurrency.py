"""Micro-batching, the result and embedding caches, and the bounded LLM queue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_serving import BEES, TIDES, extractive_settings, running_server

from localrag.cache import LRUCache
from localrag.engine import LocalRAG
from localrag.errors import InvalidInputError, OverloadedError
from localrag.generate.extractive import ExtractiveGenerator
from localrag.server.concurrency import LLMQueue, MicroBatcher
from localrag.types import Completion, Document, Prompt, SearchRequest, SearchResult

DOCS = [BEES, TIDES] + [
    Document(f"d{i}", f"Document {i} about {topic} and {other}.", title=f"T{i}", metadata={"n": i})
    for i, (topic, other) in enumerate([("honey", "bees"), ("moon", "oceans"), ("sun", "dance"), ("ships", "sea"),
                                        ("bread", "yeast"), ("bikes", "wheels"), ("flowers", "bees")])
]
QUERIES = ["honeybees dance", "moon tides", "bread yeast", "bees flowers", "ships at sea", "sun direction"]


@pytest.fixture
def rag(tmp_path: Path, fake_embedder: Any) -> Iterator[LocalRAG]:
    engine = LocalRAG(tmp_path / "d", settings=extractive_settings(result_cache_size=0, embed_cache_size=0),
                      embedder=fake_embedder)
    engine.add(DOCS)
    engine.add(DOCS[:3], namespace="other")
    yield engine
    engine.close()


def requests() -> list[SearchRequest]:
    out = []
    for i, q in enumerate(QUERIES):
        out.append(SearchRequest(q, 3, ("hybrid", "dense", "keyword")[i % 3]))
        out.append(SearchRequest(q, 2, "hybrid", filter={"n": {"$gte": 2}}))
        out.append(SearchRequest(q, 2, "dense", namespace="other"))
    return out


def test_a_batch_returns_exactly_what_single_searches_return(rag: LocalRAG) -> None:
    batch = rag.retrieve(requests())
    singles = [rag.retrieve([r])[0] for r in requests()]
    for got, want in zip(batch, singles, strict=True):
        assert [(h.chunk_id, round(h.score, 6)) for h in got.hits] == [(h.chunk_id, round(h.score, 6))
                                                                      for h in want.hits]
        assert got.hits  # every request here has matches
    assert all(h.metadata["n"] >= 2 for r in batch[1::3] for h in r.hits)
    assert all(h.namespace == "other" for r in batch[2::3] for h in r.hits)


def test_a_batch_embeds_once_and_searches_faiss_once_per_group(rag: LocalRAG, fake_embedder: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    space = rag.indexes.get(rag.store.namespace_id(""))
    original = space.dense.search

    def counting(queries: Any, k: int, allow: Any = None) -> Any:
        calls.append(len(queries))
        return original(queries, k, allow)

    monkeypatch.setattr(space.dense, "search", counting)
    before = fake_embedder.calls
    rag.retrieve([SearchRequest(q, 3, "hybrid") for q in QUERIES])
    assert fake_embedder.calls == before + 1  # one embedding call for six queries
    assert calls == [len(QUERIES)]  # one FAISS search with a 6-row query matrix


def test_result_cache_hits_and_a_write_invalidates_it(tmp_path: Path, fake_embedder: Any) -> None:
    with LocalRAG(tmp_path / "d", settings=extractive_settings(), embedder=fake_embedder) as rag:
        rag.add([BEES])
        cache = rag.retriever.result_cache
        first = rag.search("waggle dance", k=5)
        again = rag.search("waggle dance", k=5)
        assert cache.hits == 1 and again == first
        rag.add([Document("dance2", "Another waggle dance, of a different hive.")])
        fresh = rag.search("waggle dance", k=5)
        assert cache.hits == 1 and {h.doc_id for h in fresh} == {"bees", "dance2"}
        assert rag.retriever.embed_cache.hits >= 1  # the query's embedding was reused across generations


def test_lru_cache_evicts_and_expires() -> None:
    now = [0.0]
    cache: LRUCache[int] = LRUCache("t", 2, ttl_s=10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("c") == 3
    now[0] = 11
    assert cache.get("a") is None and cache.figures()["hits"] == 2
    off: LRUCache[int] = LRUCache("off", 0)
    off.put("a", 1)
    assert off.get("a") is None and not off.enabled


def test_micro_batcher_groups_concurrent_searches_and_isolates_a_failure() -> None:
    seen: list[int] = []

    def run(batch: Sequence[SearchRequest]) -> list[SearchResult]:
        seen.append(len(batch))
        if any(r.query == "bad" for r in batch):
            raise InvalidInputError("bad query")
        return [SearchResult((), {"n": float(len(batch))}) for _ in batch]

    async def main() -> list[Any]:
        batcher = MicroBatcher(run, window_ms=20, max_batch=64)
        jobs = [batcher.submit(SearchRequest(f"q{i}")) for i in range(10)] + [batcher.submit(SearchRequest("bad"))]
        out = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.close()
        return out

    results = asyncio.run(main())
    assert all(isinstance(r, SearchResult) for r in results[:10])
    assert isinstance(results[10], InvalidInputError)
    assert seen[0] == 11 and len(seen) == 12  # one batch of 11, then each alone to place the error


def test_llm_queue_answers_503_when_full() -> None:
    async def main() -> None:
        queue = LLMQueue(concurrency=1, size=1)
        await queue.acquire()
        waiter = asyncio.create_task(queue.acquire())
        await asyncio.sleep(0.01)
        assert queue.waiting == 1
        with pytest.raises(OverloadedError, match="queue is full"):
            await queue.acquire()
        queue.release()
        await waiter
        assert queue.running == 1 and queue.rejected == 1

    asyncio.run(main())


class GatedGenerator(ExtractiveGenerator):
    """The extractive generator, held at a gate so a generation stays in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def stream(self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0,
               stop: Sequence[str] = ()) -> Iterator[str | Completion]:
        self.entered.set()
        self.gate.wait(30)
        yield from super().stream(prompt, max_tokens=max_tokens, temperature=temperature, stop=stop)


@pytest.mark.server
def test_a_full_llm_queue_gets_503_over_http(tmp_path: Path, fake_embedder: Any) -> None:
    generator = GatedGenerator()
    settings = extractive_settings(llm_queue_size=0, answer_cache_size=0)
    with LocalRAG(tmp_path / "d", settings=settings, embedder=fake_embedder, generator=generator) as rag:
        rag.add([BEES])
        with running_server(rag.path, rag=rag) as url, httpx.Client(base_url=url, timeout=60) as c:
            result: dict[str, Any] = {}
            first = threading.Thread(target=lambda: result.update(r=c.post("/v1/ask", json={"question": "waggle?"})))
            first.start()
            assert generator.entered.wait(30)
            busy = c.post("/v1/ask", json={"question": "where are the flowers?"})
            assert busy.status_code == 503 and "queue is full" in busy.json()["error"]["message"]
            assert c.post("/v1/search", json={"query": "waggle"}).status_code == 200  # searches still served
            generator.gate.set()
            first.join(30)
            assert result["r"].status_code == 200


def test_faiss_batch_search_is_exact_and_matches_single_queries() -> None:
    import numpy as np

    from localrag.index.faiss_index import FaissIndex

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(25_000, 32)).astype(np.float32)  # past the coarse-candidate threshold
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FaissIndex(32)
    index.add(np.arange(100, 25_100, dtype=np.int64), vectors)
    queries = vectors[rng.choice(25_000, 12, replace=False)] + rng.normal(0, 0.1, (12, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    batch = index.search(queries, 10)  # the batched (one matrix product) path
    expected = [list(np.argsort(-(vectors @ q), kind="stable")[:10] + 100) for q in queries]
    assert [[k for k, _ in row] for row in batch] == expected
    singles = [index.search(q.reshape(1, -1), 10)[0] for q in queries]
    assert [[k for k, _ in row] for row in singles] == expected
