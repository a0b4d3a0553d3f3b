"""Ingest: batch documents, skip unchanged ones by content hash, chunk, embed, write.

Each batch is one store transaction; the indexes are updated only after it commits,
so a crash leaves either the whole batch or none of it, and indexes catch up on open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from localrag.config import Settings
from localrag.events import EventBus, ProgressTracker
from localrag.ingest.chunking import Chunker
from localrag.protocols import Embedder
from localrag.store.files import stored_vectors
from localrag.store.sqlite import PreparedDocument, SQLiteStore, WriteResult, index_text
from localrag.types import Document, IngestReport, SkippedFile

log = logging.getLogger(__name__)

OnCommit = Callable[[WriteResult, np.ndarray, list[str]], None]
Progress = Callable[[int, int], None]  # (documents seen, chunks written)
_MAX_BATCH_CHUNKS = 512


def content_hash(document: Document, salt: str) -> str:
    """Changes whenever the text, title, metadata or the chunking/embedding setup changes."""
    payload = json.dumps(
        [document.text, document.title, document.source, dict(document.metadata), list(document.page_starts), salt],
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class IngestPipeline:
    def __init__(
        self, store: SQLiteStore, embedder: Embedder, settings: Settings, events: EventBus | None = None
    ) -> None:
        self.store = store
        self.events = events or EventBus()
        self.embedder = embedder
        self.settings = settings
        self.chunker = Chunker(embedder.tokenizer, settings.chunk.chunk_tokens, settings.chunk.overlap_tokens)
        self.salt = f"{embedder.name}|{settings.chunk.chunk_tokens}|{settings.chunk.overlap_tokens}"

    def run(
        self,
        items: Iterable[Document | SkippedFile],
        *,
        namespace: str,
        metadata: Mapping[str, Any] | None,
        on_commit: OnCommit,
        progress: Progress | None = None,
        docs_total: int | None = None,
        tracker: ProgressTracker | None = None,
    ) -> IngestReport:
        """``tracker``: one shared across several runs (folder sync's batches) so progress spans them all."""
        started = time.perf_counter()
        self._tracker = tracker or ProgressTracker(self.events, namespace, docs_total)
        states: dict[str, str] = {}
        skipped: list[SkippedFile] = []
        chunks_written = 0
        seen = 0
        batch: dict[str, Document] = {}
        for item in items:
            seen += 1
            if isinstance(item, SkippedFile):
                log.warning("skipped %s: %s", item.path, item.reason)
                skipped.append(item)
                self.events.publish("skip", path=item.path, namespace=namespace, reason=item.reason)
            else:
                document = replace(item, metadata={**item.metadata, **metadata}) if metadata else item
                batch[document.doc_id] = document  # a repeated id in one batch: the last one wins
                if len(batch) >= self.settings.ingest.batch_documents:
                    chunks_written += self._write_batch(list(batch.values()), namespace, on_commit, skipped, states)
                    batch.clear()
            if progress is not None:
                progress(seen, chunks_written)
        chunks_written += self._write_batch(list(batch.values()), namespace, on_commit, skipped, states)
        if progress is not None:
            progress(seen, chunks_written)
        by_state: dict[str, list[str]] = {"added": [], "updated": [], "unchanged": []}
        for doc_id, state in states.items():
            by_state[state].append(doc_id)
        return IngestReport(
            tuple(by_state["added"]),
            tuple(by_state["updated"]),
            tuple(by_state["unchanged"]),
            tuple(skipped),
            chunks_written,
            time.perf_counter() - started,
        )

    def _write_batch(
        self,
        documents: list[Document],
        namespace: str,
        on_commit: OnCommit,
        skipped: list[SkippedFile],
        states: dict[str, str],
    ) -> int:
        """Write one batch (in groups of about _MAX_BATCH_CHUNKS chunks); returns chunks written."""
        if not documents:
            return 0
        written = 0
        known = self.store.content_hashes(namespace, [d.doc_id for d in documents])
        pending: list[tuple[Document, str]] = []
        for document in documents:
            digest = content_hash(document, self.salt)
            if known.get(document.doc_id) == digest:
                states[document.doc_id] = "unchanged"
                self._tracker.documents_done(1)
            else:
                pending.append((document, digest))
        group: list[tuple[Document, str, list[Any]]] = []
        group_chunks = 0
        for document, digest in pending:
            chunks = self.chunker.split(document)
            if not chunks:
                empty = SkippedFile(document.source or document.doc_id, "no text to index (empty document)")
                skipped.append(empty)
                self.events.publish("skip", doc_id=document.doc_id, path=empty.path, namespace=namespace,
                                    reason=empty.reason)
                continue
            group.append((document, digest, chunks))
            group_chunks += len(chunks)
            if group_chunks >= _MAX_BATCH_CHUNKS:
                written += self._commit(group, namespace, on_commit, known, states)
                group, group_chunks = [], 0
        return written + self._commit(group, namespace, on_commit, known, states)

    def _commit(
        self,
        group: list[tuple[Document, str, list[Any]]],
        namespace: str,
        on_commit: OnCommit,
        known: dict[str, str],
        states: dict[str, str],
    ) -> int:
        if not group:
            return 0
        texts = [index_text(doc.title, chunk.text) for doc, _, chunks in group for chunk in chunks]
        updated = [doc.doc_id for doc, _, _ in group if doc.doc_id in known]
        # (a hosted store, vector.backend = "pinecone_documents", keeps no vectors to reuse)
        hosted = not isinstance(self.store, SQLiteStore)
        reuse = stored_vectors(self.store, namespace, updated) if updated and not hosted else {}
        vectors = self._embed(texts, len(group), reuse)
        prepared, offset = [], 0
        for doc, digest, chunks in group:
            prepared.append(PreparedDocument(doc, digest, chunks, vectors[offset : offset + len(chunks)]))
            offset += len(chunks)
        result = self.store.write_documents(namespace, prepared, self.embedder.dim)
        on_commit(result, vectors, texts)
        for doc, _, chunks in group:  # published after the indexes took the write: the document is searchable
            states[doc.doc_id] = "updated" if doc.doc_id in known else "added"
            self.events.publish("update" if doc.doc_id in known else "ingest", doc_id=doc.doc_id, path=doc.source,
                                namespace=namespace, data={"chunks": len(chunks)})
        self._tracker.documents_done(len(group))
        return len(texts)

    def _embed(self, texts: list[str], documents: int, reuse: Mapping[str, np.ndarray]) -> np.ndarray:
        """Embed in slices of the embedder's batch size, so progress moves as chunks are embedded
        rather than once per committed group (one large file is one group). A text whose vector the
        store already holds (``reuse``: the chunks of the documents being rewritten) is not embedded again."""
        self._tracker.start_group(documents, len(texts))
        vectors = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        todo = [i for i, text in enumerate(texts) if text not in reuse]
        for i, text in enumerate(texts):
            if text in reuse:
                vectors[i] = reuse[text]
        if len(todo) < len(texts):
            self._tracker.embedded(len(texts) - len(todo))
        step = max(1, self.settings.embed.batch_size) if self.events.active else max(1, len(todo))
        for start in range(0, len(todo), step):
            rows = todo[start : start + step]
            vectors[rows] = np.asarray(self.embedder.embed_documents([texts[i] for i in rows]), dtype=np.float32)
            self._tracker.embedded(len(rows))
        return vectors
