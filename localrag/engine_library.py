"""The engine's read side over stored documents: listing, fetching, viewing and statistics.

A mixin of ``LocalRAG`` (localrag/engine.py), kept apart so the engine module holds the write and search
paths. Each read goes to the hosted document index when ``vector.backend = "pinecone_documents"``
(the local store is empty there), else to the SQLite store, with the indexes caught up first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localrag.config import Settings
from localrag.index.manager import IndexManager
from localrag.rwlock import ReadWriteLock
from localrag.store.browse import StoreBrowser
from localrag.store.sqlite import SQLiteStore
from localrag.types import Document

if TYPE_CHECKING:
    from localrag.docview import DocumentView
    from localrag.pinecone.hosted_docs import HostedCorpus


class LibraryReads:
    """Document reads and statistics; the attributes below are the engine's."""

    path: Path
    settings: Settings
    store: SQLiteStore
    indexes: IndexManager
    hosted: HostedCorpus | None
    _rw: ReadWriteLock

    def _sync(self) -> None:
        if self.indexes.generation != self.store.generation():
            with self._rw.write():
                self.indexes.sync()

    def get_document(self, doc_id: str, namespace: str = "") -> Document:
        if self.hosted is not None:
            return self.hosted.get_document(namespace, doc_id)
        return self.store.get_document(namespace, doc_id)

    def documents(self, namespace: str = "", limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        if self.hosted is not None:
            return self.hosted.list_documents(namespace, limit, offset)[0]
        return self.store.list_documents(namespace, limit, offset)

    def find_documents(
        self, namespace: str = "", q: str = "", limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the documents whose doc_id, title or source contain ``q`` (any case), and how many match."""
        if self.hosted is not None:
            return self.hosted.list_documents(namespace, limit, offset, q)
        return StoreBrowser(self.store).documents(namespace, limit, offset, q)

    def document_view(self, doc_id: str, namespace: str = "") -> DocumentView:
        """A stored document with its chunks' spans and its kind (pdf, sheet, media, mail, text): see docview."""
        from localrag.docview import document_view

        return document_view(self.store, doc_id, namespace)

    def iter_documents(self, namespace: str = "", page: int = 500) -> Iterator[Document]:
        """Every stored document of ``namespace``, by doc_id, read a page at a time."""
        offset = 0
        while True:
            listed = self.documents(namespace, limit=page, offset=offset)
            for item in listed:
                yield self.get_document(str(item["doc_id"]), namespace)
            if len(listed) < page:
                return
            offset += page

    def stats(self) -> dict[str, Any]:
        if self.hosted is not None:
            return {**self.hosted.stats(), "path": str(self.path), "embedder": self.settings.embed.model}
        self._sync()
        stats = self.store.stats()
        stats["path"] = str(self.path)
        stats["embedder"] = self.settings.embed.model
        stats["vector_space"] = self.store.get_meta("vector_space")
        with self._rw.read():
            for name, ns_id in self.store.namespaces().items():
                space = self.indexes.get(ns_id)
                if space is not None and name in stats["namespaces"]:
                    stats["namespaces"][name].update(
                        {
                            "vector_index": space.dense.kind,
                            "vectors": len(space.dense),
                            "keyword_docs": len(space.keyword),
                        }
                    )
        return stats

