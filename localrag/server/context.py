"""What the RAG routes share: the engine, settings, metrics, caches, batcher and LLM queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from localrag.cache import LRUCache
from localrag.config import ServerSettings
from localrag.engine import LocalRAG
from localrag.errors import InvalidInputError
from localrag.ingest.watch import WatchStatus
from localrag.learn.selfquery_run import mode_of
from localrag.metrics import Metrics, labels_of
from localrag.query.run import resolve
from localrag.server.concurrency import LLMQueue, MicroBatcher
from localrag.server.security import RateLimiter, check_key, identity_of, presented_key
from localrag.types import Answer, SearchRequest, SearchResult


@dataclass
class ServerContext:
    rag: LocalRAG
    settings: ServerSettings
    api_keys: tuple[str, ...]
    metrics: Metrics = field(default_factory=Metrics)
    limiter: RateLimiter = field(init=False)
    batcher: MicroBatcher = field(init=False)
    llm: LLMQueue = field(init=False)
    answer_cache: LRUCache[Answer] = field(init=False)
    watch: WatchStatus | None = None  # the folders `serve --watch` keeps in sync (GET /v1/watch)

    def __post_init__(self) -> None:
        s = self.settings
        self.limiter = RateLimiter(s.rate_limit_rps, s.rate_limit_burst)
        self.batcher = MicroBatcher(self.rag.retrieve, s.batch_window_ms, s.batch_max, s.batch_workers)
        self.llm = LLMQueue(s.llm_concurrency, s.llm_queue_size)
        # Keyed by the local store's generation, which another replica's write to a shared hosted index
        # (vector.backend = "pinecone_documents") does not move: off there.
        answers = 0 if getattr(self.rag, "hosted", None) is not None else s.answer_cache_size
        self.answer_cache = LRUCache("answer", answers, s.result_cache_ttl_s)
        describe_metrics(self.metrics)
        self.metrics.add_collector(self._gauges)

    # -- requests -----------------------------------------------------------------------
    async def search(self, request: SearchRequest) -> SearchResult:
        self.rag.retriever.validate(request)  # a bad request fails alone, before it joins a batch
        # A query strategy waits on the LLM: it runs on its own rather than holding up a batch.
        learn = self.rag.settings.learn
        strategic = resolve(request, learn.strategy) != "none" or (
            learn.self_query_llm and mode_of(request, learn.self_query) != "off")  # self-query asking the LLM
        if self.settings.micro_batching and not strategic:
            result = await self.batcher.submit(request)
        else:
            result = (await run_in_threadpool(self.rag.retrieve, [request]))[0]
        if "cached" not in result.timings:
            self.metrics.observe_stages("search_stage_ms", result.timings)
        return result

    def answer_key(self, question: str, options: Mapping[str, Any]) -> tuple[Any, ...]:
        # The store and feedback generations are read fresh, so a write or a vote makes every older
        # answer unreachable.
        return (self.rag.store.generation(), self.rag.store.feedback_generation(), question,
                json.dumps(options, sort_keys=True, default=str))

    def record_answer(self, answer: Answer) -> None:
        self.metrics.observe_stages("answer_stage_ms", answer.timings)
        self.metrics.inc("tokens_total", answer.usage.get("prompt_tokens", 0), direction="in")
        self.metrics.inc("tokens_total", answer.usage.get("completion_tokens", 0), direction="out")
        self.metrics.inc("answers_total", provider=answer.provider or "none", abstained=answer.abstained)

    # -- metrics ------------------------------------------------------------------------
    def _gauges(self) -> dict[str, dict[Any, float]]:
        stats = self.rag.store.stats()
        caches = (self.rag.retriever.embed_cache, self.rag.retriever.result_cache, self.answer_cache)
        gauges: dict[str, dict[Any, float]] = {
            "documents": {labels_of(namespace=n): ns["documents"] for n, ns in stats["namespaces"].items()},
            "chunks": {labels_of(namespace=n): ns["chunks"] for n, ns in stats["namespaces"].items()},
            "documents_total": {(): stats["documents"]},
            "chunks_total": {(): stats["chunks"]},
            "store_generation": {(): stats["generation"]},
            "cache_hits": {labels_of(cache=c.name): c.hits for c in caches},
            "cache_misses": {labels_of(cache=c.name): c.misses for c in caches},
            "cache_hit_rate": {labels_of(cache=c.name): c.hit_rate() for c in caches},
            "cache_entries": {labels_of(cache=c.name): len(c) for c in caches},
            "llm_queue_waiting": {(): self.llm.waiting},
            "llm_queue_running": {(): self.llm.running},
            "llm_queue_rejected": {(): self.llm.rejected},
            "search_batches": {(): self.batcher.batches},
            "search_batched_requests": {(): self.batcher.batched_requests},
            "search_batch_sizes": {labels_of(size=b): n for b, n in self.batcher.sizes.items()},
        }
        return gauges


def describe_metrics(metrics: Metrics) -> None:
    for name, text in {
        "http_requests_total": "HTTP requests by route, method and status",
        "http_errors_total": "HTTP responses with status >= 400 by route and status",
        "http_request_ms": "request latency in milliseconds by route",
        "search_stage_ms": "search latency per stage (embed, dense, keyword, fuse, hydrate, search)",
        "answer_stage_ms": "answer latency per stage (retrieve, rerank, build, first_token, generate, total)",
        "tokens_total": "LLM tokens, direction in (prompt) or out (completion)",
        "answers_total": "answers by provider and abstention",
        "documents": "documents stored per namespace",
        "chunks": "chunks stored per namespace",
        "cache_hit_rate": "hits / (hits + misses) per cache (embedding, result, answer)",
    }.items():
        metrics.describe(name, text)


def context_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.rag
    return ctx


def authorize(request: Request) -> None:
    """Dependency of every RAG route: a valid key when keys are configured, then the rate limit."""
    ctx = context_of(request)
    key = presented_key(request.headers)
    check_key(key, ctx.api_keys)
    client = request.client.host if request.client else "?"
    ctx.limiter.take(identity_of(key, client))


def check_question(text: str) -> str:
    if not text.strip():
        raise InvalidInputError("question must not be blank")
    return text
