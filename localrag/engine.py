"""LocalRAG: the public Python API that wires store, indexes, embedder and retriever together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from localrag import failpoints
from localrag.backends import open_backend, write_target
from localrag.config import Settings, load_settings
from localrag.engine_learning import LearningParts
from localrag.engine_library import LibraryReads
from localrag.errors import ConfigError, InvalidInputError, StoreLockedError
from localrag.events import EventBus, ProgressTracker
from localrag.index.manager import IndexManager
from localrag.ingest.pipeline import IngestPipeline, Progress
from localrag.ingest.sources import Source, check_given, count_sources, iter_sources
from localrag.jsonsafe import check_metadata, check_namespace
from localrag.protocols import Embedder, Generator, Reranker
from localrag.rwlock import ReadWriteLock
from localrag.store.lock import WriterLock
from localrag.store.sqlite import SQLiteStore, WriteResult
from localrag.types import (
    Document,
    FusionMethod,
    Hit,
    IngestReport,
    SearchMode,
    SearchRequest,
    SearchResult,
    SkippedFile,
)

if TYPE_CHECKING:
    from localrag.answer.chat import ChatSession
    from localrag.answer.pipeline import AnswerPipeline
    from localrag.ingest.sync import SyncReport
    from localrag.learn.feedback import FeedbackModel
    from localrag.learn.router import Router
    from localrag.learn.selfquery_run import SelfQueryRunner
    from localrag.pinecone.hosted_docs import HostedCorpus
    from localrag.query.run import StrategyRunner
    from localrag.types import Answer

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "./localrag-data"


class LocalRAG(LearningParts, LibraryReads):
    """An offline RAG engine over one data directory.

    Thread-safe: searches run concurrently; writes are serialised and block searches
    only while one committed batch is applied to the in-memory indexes. One process at
    a time may write to a directory (a lock file enforces it); any number may read.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_DATA_DIR,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        reranker: Reranker | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.settings = settings if settings is not None else load_settings(self.path)
        self.read_only = read_only
        self.store = SQLiteStore(self.path)
        self._writer = WriterLock(self.path)
        self._rw = ReadWriteLock()
        self._write_mutex = threading.Lock()
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._reranker_lock = threading.Lock()  # apart from the embedder lock: loading one never waits on the other
        self._generator = generator
        self._answers: AnswerPipeline | None = None
        self._reranker = reranker  # None: rerank.model, loaded on first use
        self._reranker_loaded = reranker is not None
        self._pipeline: IngestPipeline | None = None
        self._closed = False
        self._learner: FeedbackModel | None = None  # learn/feedback.py, made on first use
        self._strategies: StrategyRunner | None = None  # query/run.py, made on first use
        self._self_query: SelfQueryRunner | None = None  # learn/selfquery_run.py, made on first use
        self._router: Router | None = None  # learn/router.py, made on first use
        self.events = EventBus()  # ingest/update/delete/skip/progress, for the CLI, GET /v1/events and embedders
        if embedder is not None:
            self._check_vector_space(embedder)
        self.indexes = IndexManager(self.store, self.path, self._vector_dim(), self.settings)
        with self._rw.write():
            self.indexes.open()
        # vector.backend = "pinecone_documents": one hosted document index shared by replicas (backends.py)
        self.hosted: HostedCorpus | None
        self.hosted, self.retriever = open_backend(self.settings, self.store, self.indexes, self._get_embedder)

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> LocalRAG:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._strategies is not None:
            self._strategies.close()
        if self._writer.held:
            with self._rw.write():
                self.indexes.save(force=True)
            self._writer.release()
        self.store.close()

    # -- models ----------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        return self._get_embedder()

    def _get_embedder(self) -> Embedder:
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    from localrag.embed.factory import load_embedder

                    embed = self.settings.embed
                    self._embedder = load_embedder(
                        embed.model, threads=embed.threads, batch_size=embed.batch_size, max_tokens=embed.max_tokens
                    )
                    self._check_vector_space(self._embedder)
        return self._embedder

    def _vector_dim(self) -> int:
        stored = self.store.get_meta("dim")
        if stored is not None:
            return int(stored)
        if self._embedder is not None:
            return int(self._embedder.dim)
        from localrag.embed.factory import embedder_dim

        return embedder_dim(self.settings.embed.model)

    def _check_vector_space(self, embedder: Embedder) -> None:
        space = getattr(embedder, "vector_space", embedder.name)
        stored = self.store.get_meta("vector_space")
        if stored is not None and stored != space:
            raise ConfigError(
                f"{self.path} was indexed with embedding model {stored!r}, but the configured model "
                f"{embedder.name!r} produces {space!r} vectors; use the original model or re-ingest "
                "into a new data directory"
            )
        stored_dim = self.store.get_meta("dim")
        if stored_dim is not None and embedder.dim != int(stored_dim):
            raise ConfigError(f"embedder {embedder.name!r} has dimension {embedder.dim}, the store {stored_dim}")

    # -- writes ------------------------------------------------------------------------
    def _begin_write(self, *, catch_up: bool = True) -> None:
        if self._closed:
            raise InvalidInputError("this LocalRAG is closed")
        if self.read_only:
            raise StoreLockedError(f"{self.path} was opened read-only")
        if not self._writer.held and self.hosted is None:  # hosted replicas write side by side
            self._writer.acquire()
            self.indexes.remove_stale_temp_files()
        if catch_up:
            self._sync()

    def add(
        self,
        sources: Source | Iterable[Source],
        *,
        namespace: str = "",
        metadata: Mapping[str, Any] | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files, directories or Documents. Unchanged documents are skipped; changed ones replaced."""
        check_namespace(namespace)
        if metadata is not None:
            check_metadata(metadata)
        check_given(sources)  # a bad one refused before any batch commits
        total = count_sources(sources, include, exclude)
        items = iter_sources(sources, include, exclude, self.settings.ingest)
        return self._ingest(items, namespace, metadata, progress, total)

    def _ingest(
        self,
        items: Iterable[Document | SkippedFile],
        namespace: str,
        metadata: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        docs_total: int | None = None,
        tracker: ProgressTracker | None = None,
    ) -> IngestReport:
        with self._write_mutex:
            self._begin_write()
            embedder = self._get_embedder()
            if self.store.get_meta("vector_space") is None:
                self.store.set_meta("vector_space", getattr(embedder, "vector_space", embedder.name))
                self.store.set_meta("dim", str(embedder.dim))
            if self._pipeline is None:
                target = write_target(self.store, self.hosted, embedder)
                self._pipeline = IngestPipeline(target, embedder, self.settings, self.events)
            report = self._pipeline.run(
                items,
                namespace=namespace,
                metadata=metadata,
                on_commit=self._apply if self.hosted is None else _nothing_local,
                progress=progress,
                docs_total=docs_total,
                tracker=tracker,
            )
            with self._rw.write():
                self.indexes.save()
        return report

    def sync(
        self,
        roots: str | Path | Sequence[str | Path],
        *,
        namespace: str = "",
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        default_excludes: bool = True,
        dedup: bool = True,
    ) -> SyncReport:
        """Make the store match folders: new and changed files ingested, deleted ones removed, renames
        keeping their documents, near-duplicates linked instead of indexed (see ``localrag.ingest.sync``)."""
        from localrag.ingest.sync import Syncer, SyncOptions

        check_namespace(namespace)
        listed = [roots] if isinstance(roots, (str, Path)) else list(roots)
        options = SyncOptions(namespace, tuple(include), tuple(exclude), default_excludes, dedup)
        return Syncer(self, options).reconcile(listed)

    def _apply(self, result: WriteResult, vectors: Any, texts: list[str]) -> None:
        with self._rw.write():
            self.indexes.apply_write(result, vectors, texts)
        failpoints.hit("engine.after_apply")

    def delete(
        self, *, doc_ids: Sequence[str] | None = None, filter: Mapping[str, Any] | None = None, namespace: str = ""
    ) -> int:
        """Delete documents by id or by metadata filter; returns how many were deleted."""
        if (doc_ids is None) == (filter is None):
            raise InvalidInputError("delete needs exactly one of doc_ids or filter")
        if filter is not None and not filter:
            raise InvalidInputError("an empty filter would delete every document; name the documents instead")
        if isinstance(doc_ids, str):
            doc_ids = [doc_ids]
        with self._write_mutex:
            self._begin_write()
            if self.hosted is not None:  # filtered and counted on the hosted index
                targets = self.hosted.delete(namespace, doc_ids, filter)
                present = len(targets)
            else:
                ns_id = self.store.namespace_id(namespace)
                if ns_id is None:
                    return 0
                targets = list(doc_ids) if doc_ids is not None else self.retriever.matching_doc_ids(ns_id, filter or {})
                present = len(self.store.content_hashes(namespace, targets))
                result = self.store.delete_documents(namespace, targets)
                if result is None:
                    return 0
                self._apply(result, None, [])
                with self._rw.write():
                    self.indexes.save()
        if self.events.active:
            for doc_id in targets:
                self.events.publish("delete", doc_id=doc_id, namespace=namespace)
        return present

    def reindex(self, namespace: str | None = None) -> None:
        """Rebuild indexes from the store (the store is the truth; indexes are caches)."""
        with self._write_mutex:
            ns_id = None if namespace is None else self.store.namespace_id(namespace)
            # Rebuilding every namespace reads the whole store anyway: catching up first would build a
            # new or stale namespace twice (at a million chunks, minutes). One namespace: the others catch up.
            self._begin_write(catch_up=ns_id is not None)
            with self._rw.write():
                self.indexes.rebuild(ns_id)
                self.indexes.save(force=True)

    # -- reads -------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: SearchMode | None = None,
        filter: Mapping[str, Any] | None = None,
        namespace: str = "",
        fusion: FusionMethod | None = None,
        alpha: float | None = None,
        rrf_k: int | None = None,
        candidates: int | None = None,
        rerank: bool | None = None,
        strategy: str | None = None,
        user: str = "",
        self_query: str | None = None,
    ) -> list[Hit]:
        """``strategy``: none, multi_query, hyde, decompose or auto (default learn.strategy); ``user``: who
        searches, for learn.scope = "source". ``retrieve`` returns the result with the strategy that ran."""
        request = SearchRequest(
            query, k, mode or self.settings.search.mode, namespace, filter, fusion, alpha, rrf_k, candidates,
            rerank=rerank, strategy=strategy, user=user, self_query=self_query,
        )
        return list(self.retrieve([request])[0].hits)

    def retrieve(self, requests: Sequence[SearchRequest]) -> list[SearchResult]:
        """Run several searches (query embeddings batched); results carry per-stage timings.

        Requests with ``rerank`` (default ``rerank.enabled``) fetch k1 candidates and rerank them to k.
        A request with a query ``strategy`` runs on its own through query/run.py; stored feedback near a
        query re-orders its hits last (learn/feedback.py). With ``self_query`` (default learn.self_query) a
        filter read from the query applies first (learn/selfquery_run.py). Strategy ``auto`` (or learn.router)
        takes mode, alpha, candidates and reranking from the learned router (learn/router.py; ``result.route``).
        """
        from localrag.learn.selfquery_run import mode_of

        if self._closed:
            raise InvalidInputError("this LocalRAG is closed")
        modes = [mode_of(r, self.settings.learn.self_query) for r in requests]
        if any(mode != "off" for mode in modes):
            return self.self_query.run(requests, modes)
        learn = self.settings.learn
        routed = [learn.router or (r.strategy or learn.strategy) == "auto" for r in requests]
        if any(routed):
            # learn/router.py: a route (mode, alpha, candidates, rerank) per query, reported on the result
            pairs = [self.router.route(r) if w else (r, None) for r, w in zip(requests, routed, strict=True)]
            results = self._search([r for r, _ in pairs])
            return [res if c is None else replace(res, route=c.label)
                    for res, (_, c) in zip(results, pairs, strict=True)]
        return self._search(requests)

    def _search(self, requests: Sequence[SearchRequest]) -> list[SearchResult]:
        from localrag.query.run import StrategyRunner, resolve
        from localrag.rerank import stage

        names = [resolve(r, self.settings.learn.strategy) for r in requests]
        if any(name != "none" for name in names):
            if self._strategies is None:
                self._strategies = StrategyRunner(self)
            runner = self._strategies
            plain_requests = [replace(r, strategy="none") for r, n in zip(requests, names, strict=True) if n == "none"]
            plain = iter(self._search(plain_requests) if plain_requests else [])
            return [next(plain) if n == "none" else runner.run(r, n) for r, n in zip(requests, names, strict=True)]
        original = requests
        evidence: list[dict[int, float]] = [{} for _ in requests]
        if self.settings.learn.feedback:
            requests, evidence = self.learner.plan(requests)
        settings = self.settings.rerank
        wanted = [stage.wants_rerank(r, settings) for r in requests]
        reranker = self.reranker if any(wanted) else None
        if reranker is None and any(r.rerank for r in requests):
            raise ConfigError("rerank=True, but no reranker is configured (rerank.model is empty or 'none')")
        first = [stage.widen(r, settings) if w and reranker else r for r, w in zip(requests, wanted, strict=True)]
        self._sync()
        with self._rw.read():
            results = self.retriever.search(first)
        results = stage.apply(reranker, requests, results, settings)
        return self.learner.finish(original, results, evidence) if any(evidence) else results

    @property
    def reranker(self) -> Reranker | None:
        """The configured reranker (``rerank.model``), loaded on first use; None when none is configured."""
        if not self._reranker_loaded:
            with self._reranker_lock:
                if not self._reranker_loaded:
                    from localrag.rerank.factory import load_reranker

                    self._reranker = load_reranker(self.settings, self.path)
                    self._reranker_loaded = True
        return self._reranker

    # -- answers (the logic lives in localrag.answer) ------------------------------------
    @property
    def answers(self) -> AnswerPipeline:
        """The ask pipeline; its generator chain (``generate.providers``) loads on first use."""
        if self._answers is None:
            with self._embedder_lock:
                if self._answers is None:
                    from localrag.answer.pipeline import AnswerPipeline
                    from localrag.generate.factory import build_generator

                    settings = self.settings
                    generator = self._generator or build_generator(settings.generate, settings.answer)
                    self._answers = AnswerPipeline(self, generator, settings.generate, settings.answer)
        return self._answers

    def ask(self, question: str, **options: Any) -> Answer:
        """Answer ``question`` from the indexed documents with verified citations.

        Options: ``k``, ``mode``, ``filter``, ``namespace``, ``max_tokens``, ``temperature``.
        """
        return self.answers.ask(question, **options)

    def stream(self, question: str, **options: Any) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they are generated, then the final ``Answer``."""
        return self.answers.stream(question, **options)

    async def aask(self, question: str, **options: Any) -> Answer:
        return await self.answers.aask(question, **options)

    def ask_many(self, questions: Sequence[str], *, concurrency: int = 1, **options: Any) -> list[Answer]:
        """Answer a batch (retrieval batched; generation ``concurrency`` at a time)."""
        return self.answers.ask_many(questions, concurrency=concurrency, **options)

    def chat(self, **options: Any) -> ChatSession:
        """A conversation: follow-ups are rewritten into standalone questions before retrieval."""
        from localrag.answer.chat import ChatSession

        return ChatSession(self.answers, **options)


def _nothing_local(result: WriteResult, vectors: Any, texts: list[str]) -> None:
    """The hosted mode's commit hook: the write is on the hosted index already; nothing local to update."""
