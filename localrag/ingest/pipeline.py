"""Ingest: batch documents, skip unchanged ones by content hash, chunk, embed, write.

It is a two-lane pipeline (``stages.EmbedLane``): this thread reads, hashes, chunks and writes while
one background thread embeds the group before. Chunks are gathered into groups of about
``_MAX_BATCH_CHUNKS`` across input batches: a group is the window sorted by length for embedding
(less padding) and one store transaction. The indexes are updated only after that transaction
commits, and a document is acknowledged (its event published, its state reported) only after its
group reached the indexes, so a crash leaves each group whole or absent, and indexes catch up on open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from localrag.config import Settings
from localrag.events import EventBus, ProgressTracker
from localrag.ingest.chunking import Chunker
from localrag.ingest.stages import EmbedLane, IngestProfile, StageClock
from localrag.protocols import Embedder
from localrag.store.files import stored_vectors
from localrag.store.sqlite import PreparedDocument, SQLiteStore, WriteResult, index_text
from localrag.types import Chunk, Document, IngestReport, SkippedFile

log = logging.getLogger(__name__)

OnCommit = Callable[[WriteResult, np.ndarray, list[str]], None]
Progress = Callable[[int, int], None]  # (documents seen, chunks written)
_MAX_BATCH_CHUNKS = 512
# Groups embedded ahead of the writer: one keeps the lane busy while the writer commits the last;
# more would only hold more chunks in memory.
_LANE_DEPTH = 1


def content_hash(document: Document, salt: str) -> str:
    """Changes whenever the text, title, metadata or the chunking/embedding setup changes."""
    payload = json.dumps(
        [document.text, document.title, document.source, dict(document.metadata), list(document.page_starts), salt],
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class _Group:
    """Documents to write in one transaction, with the texts to embed and the vectors already stored."""

    documents: tuple[tuple[Document, str, list[Chunk]], ...]
    updated: frozenset[str]  # doc ids already in the store (an update, not an add)
    texts: list[str]
    reuse: Mapping[str, np.ndarray]


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
        self.last_profile: IngestProfile | None = None  # where the latest run spent its time

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
        self._clock = StageClock()
        self._namespace, self._on_commit = namespace, on_commit
        self._states: dict[str, str] = {}
        self._skipped: list[SkippedFile] = []
        self._written = 0
        self._open: list[tuple[Document, str, list[Chunk]]] = []  # the group being gathered
        self._open_known: set[str] = set()  # its documents that the store already holds
        self._open_chunks = 0
        self._unacked: set[str] = set()  # doc ids gathered or in the lane, not yet committed
        self._lane: EmbedLane[_Group] = EmbedLane(self._embed_group, self._clock, _LANE_DEPTH)
        seen = 0
        batch: dict[str, Document] = {}
        try:
            for item in self._timed_items(items):
                seen += 1
                if isinstance(item, SkippedFile):
                    log.warning("skipped %s: %s", item.path, item.reason)
                    self._skipped.append(item)
                    self.events.publish("skip", path=item.path, namespace=namespace, reason=item.reason)
                else:
                    document = replace(item, metadata={**item.metadata, **metadata}) if metadata else item
                    batch[document.doc_id] = document  # a repeated id in one batch: the last one wins
                    if len(batch) >= self.settings.ingest.batch_documents:
                        self._add_batch(list(batch.values()))
                        batch.clear()
                if progress is not None:
                    progress(seen, self._written)
            self._add_batch(list(batch.values()))
            self._submit_open()
            self._commit_all(self._lane.drain())
        finally:
            self._lane.close()
        if progress is not None:
            progress(seen, self._written)
        wall = time.perf_counter() - started
        self.last_profile = IngestProfile(wall, self._clock.snapshot(), self._written)
        log.info("ingested %d chunks in %.1f s (%.0f%% of it embedding)", self._written, wall,
                 100 * self.last_profile.embedding_share)
        by_state: dict[str, list[str]] = {"added": [], "updated": [], "unchanged": []}
        for doc_id, state in self._states.items():
            by_state[state].append(doc_id)
        return IngestReport(
            tuple(by_state["added"]),
            tuple(by_state["updated"]),
            tuple(by_state["unchanged"]),
            tuple(self._skipped),
            self._written,
            wall,
        )

    def _timed_items(self, items: Iterable[Document | SkippedFile]) -> Iterator[Document | SkippedFile]:
        """The input, with the time spent producing it (reading and parsing files) on the clock."""
        iterator = iter(items)
        while True:
            with self._clock.measure("loading"):
                item = next(iterator, None)
            if item is None:
                return
            yield item

    def _add_batch(self, documents: list[Document]) -> None:
        """Hash a batch against the store, chunk what changed and gather it into groups."""
        if not documents:
            return
        if self._unacked.intersection(d.doc_id for d in documents):
            # The same document again while its earlier version is still on its way: the stored hash
            # (and the add/update state) must be read after that version is written.
            self._submit_open()
            self._commit_all(self._lane.drain())
        with self._clock.measure("hashing"):
            known = self.store.content_hashes(self._namespace, [d.doc_id for d in documents])
            pending: list[tuple[Document, str]] = []
            for document in documents:
                digest = content_hash(document, self.salt)
                if known.get(document.doc_id) == digest:
                    self._states[document.doc_id] = "unchanged"
                    self._tracker.documents_done(1)
                else:
                    pending.append((document, digest))
        for document, digest in pending:
            with self._clock.measure("chunking"):
                chunks = self.chunker.split(document)
            if not chunks:
                empty = SkippedFile(document.source or document.doc_id, "no text to index (empty document)")
                self._skipped.append(empty)
                self.events.publish("skip", doc_id=document.doc_id, path=empty.path, namespace=self._namespace,
                                    reason=empty.reason)
                continue
            self._open.append((document, digest, chunks))
            if document.doc_id in known:
                self._open_known.add(document.doc_id)
            self._unacked.add(document.doc_id)
            self._open_chunks += len(chunks)
            if self._open_chunks >= _MAX_BATCH_CHUNKS:
                self._submit_open()

    def _submit_open(self) -> None:
        """Hand the gathered group to the embedding lane; commit the groups it has finished."""
        if not self._open:
            return
        documents, updated = tuple(self._open), frozenset(self._open_known)
        self._open, self._open_known, self._open_chunks = [], set(), 0
        with self._clock.measure("hashing"):
            reuse = stored_vectors(self.store, self._namespace, sorted(updated)) if updated else {}
        texts = [index_text(doc.title, chunk.text) for doc, _, chunks in documents for chunk in chunks]
        self._commit_all(self._lane.submit(_Group(documents, updated, texts, reuse)))

    def _commit_all(self, ready: list[tuple[_Group, np.ndarray]]) -> None:
        for group, vectors in ready:
            self._commit(group, vectors)

    def _commit(self, group: _Group, vectors: np.ndarray) -> None:
        prepared, offset = [], 0
        for doc, digest, chunks in group.documents:
            prepared.append(PreparedDocument(doc, digest, chunks, vectors[offset : offset + len(chunks)]))
            offset += len(chunks)
        with self._clock.measure("writing"):
            result = self.store.write_documents(self._namespace, prepared, self.embedder.dim)
        with self._clock.measure("indexing"):
            self._on_commit(result, vectors, group.texts)
        for doc, _, chunks in group.documents:  # published after the indexes took the write: the document is searchable
            state = "updated" if doc.doc_id in group.updated else "added"
            self._states[doc.doc_id] = state
            self._unacked.discard(doc.doc_id)
            self.events.publish("update" if state == "updated" else "ingest", doc_id=doc.doc_id, path=doc.source,
                                namespace=self._namespace, data={"chunks": len(chunks)})
        self._tracker.documents_done(len(group.documents), len(group.texts))
        self._written += len(group.texts)

    def _embed_group(self, group: _Group) -> np.ndarray:
        """Runs on the lane's thread. Texts are embedded in order of length, so each batch pads little;
        with listeners, in slices of the embedder's batch size so progress moves as chunks are embedded
        rather than once per group. A text whose vector the store already holds (``reuse``: the chunks
        of the documents being rewritten) is not embedded again."""
        texts, reuse = group.texts, group.reuse
        self._tracker.start_group(len(group.documents), len(texts))
        vectors = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        todo = [i for i, text in enumerate(texts) if text not in reuse]
        for i, text in enumerate(texts):
            if text in reuse:
                vectors[i] = reuse[text]
        if len(todo) < len(texts):
            self._tracker.embedded(len(texts) - len(todo))
        todo.sort(key=lambda i: len(texts[i]))  # characters track tokens closely enough to group lengths
        step = max(1, self.settings.embed.batch_size) if self.events.active else max(1, len(todo))
        for start in range(0, len(todo), step):
            rows = todo[start : start + step]
            vectors[rows] = np.asarray(self.embedder.embed_documents([texts[i] for i in rows]), dtype=np.float32)
            self._tracker.embedded(len(rows))
        return vectors
