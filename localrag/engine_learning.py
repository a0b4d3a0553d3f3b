"""The engine's learning parts: feedback evidence, the learned router, self-query and stored judgments.

A mixin of ``LocalRAG`` (localrag/engine.py), kept apart so the engine module holds the write and search
paths. Each part is made on first use, so an engine that never learns never imports them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from localrag.config import Settings
from localrag.errors import InvalidInputError, LocalRagError
from localrag.index.manager import IndexManager
from localrag.jsonsafe import check_namespace
from localrag.retrieval import Retriever
from localrag.store.sqlite import SQLiteStore
from localrag.types import SearchRequest

if TYPE_CHECKING:
    from localrag.engine import LocalRAG
    from localrag.learn.feedback import FeedbackModel
    from localrag.learn.router import Router
    from localrag.learn.selfquery_run import SelfQueryRunner

log = logging.getLogger(__name__)


class LearningParts:
    """Feedback, routing and self-query on top of the engine's search; the attributes below are the engine's."""

    path: Path
    settings: Settings
    store: SQLiteStore
    indexes: IndexManager
    retriever: Retriever
    read_only: bool
    _write_mutex: threading.Lock
    _learner: FeedbackModel | None
    _router: Router | None
    _self_query: SelfQueryRunner | None

    def _begin_write(self, *, catch_up: bool = True) -> None:
        raise NotImplementedError  # the engine's (localrag/engine.py)

    @property
    def learner(self) -> FeedbackModel:
        """Stored feedback as ranking evidence (learn/feedback.py)."""
        if self._learner is None:
            from localrag.learn.feedback import FeedbackModel

            self._learner = FeedbackModel(self.store, self.retriever._query_vectors, self.settings.learn)
        return self._learner

    @property
    def router(self) -> Router:
        """The learned search router (learn/router.py): its table is ``<data>/router.json``, read once."""
        if self._router is None:
            from localrag.learn.router import TABLE_FILE, Router

            self._router = Router(self.path / TABLE_FILE, self.doc_freq)
        return self._router

    def doc_freq(self, namespace: str) -> Callable[[str], tuple[int, list[int]]] | None:
        """The BM25 document frequencies of ``namespace`` (``BM25Index.doc_freqs``); None when it has no index."""
        ns_id = self.store.namespace_id(namespace)
        space = self.indexes.get(ns_id) if ns_id is not None else None
        return None if space is None else space.keyword.doc_freqs

    @property
    def self_query(self) -> SelfQueryRunner:
        """Metadata filters read from questions (learn/selfquery_run.py); its ``propose`` shows one."""
        if self._self_query is None:
            from localrag.learn.selfquery_run import SelfQueryRunner

            self._self_query = SelfQueryRunner(cast("LocalRAG", self))  # the runner searches through the engine
        return self._self_query

    def feedback(
        self, query: str, chunk_id: int, relevant: bool | None = None, namespace: str = "", *,
        grade: float | None = None, source: str = "",
    ) -> None:
        """Record that chunk ``chunk_id`` is (or is not) relevant to ``query``: a thumbs up/down, or a ``grade``
        in [-1, 1]. With learn.feedback the next search of this or a similar query is re-ordered at once
        (learn/feedback.py); train-reranker and tune learn from the same judgments. ``source``: who voted
        (the server passes the API key's digest), so one voter cannot dominate."""
        from localrag.learn.feedback import check_grade, vector_blob

        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("feedback needs a non-empty query")
        check_namespace(namespace)
        relevant, grade = check_grade(relevant, grade)
        text = query.strip()
        try:
            vector: bytes | None = vector_blob(self.retriever._query_vectors([text])[text])
        except LocalRagError as e:  # no usable embedder here (e.g. another vector space): embedded when read
            log.warning("feedback stored without its query's embedding: %s", e)
            vector = None
        with self._write_mutex:
            self._begin_write()
            self.store.add_feedback(namespace, text, chunk_id, relevant, grade=grade, source=source, vector=vector)
            vote = grade if grade is not None else (1.0 if relevant else -1.0)
            if vote and self.router.table.entries and not self.read_only:
                # learned routes answer to votes on their hits (learn/router.py: enough down-votes demote one)
                self.router.vote(SearchRequest(text, namespace=namespace), up=vote > 0)

    def feedback_items(
        self, namespace: str | None = None, limit: int = 0, newest_first: bool = False
    ) -> list[dict[str, Any]]:
        """Stored judgments, oldest (or newest) first: dicts with namespace, query, chunk_id, doc_id, relevant,
        created_at."""
        return self.store.feedback_items(namespace, limit, newest_first)

