"""Keeps each namespace's vector and keyword indexes in step with the store.

Index files are caches stamped with the store generation they reflect. On open a
missing, damaged or stale file is rebuilt or caught up by replaying the store's change
log, and its key set is checked against the store's chunk keys: never trusted blindly.
Replay is idempotent (re-adding a key replaces it; removing an absent key is a no-op),
so applying a change twice is harmless.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from localrag.config import Settings
from localrag.errors import CorruptIndexError
from localrag.index.bm25 import BM25Index
from localrag.index.faiss_index import FaissIndex
from localrag.index.ivf import VectorSource
from localrag.index.tokenize import TextTokenizer
from localrag.protocols import Keys
from localrag.store.sqlite import Change, SQLiteStore, WriteResult

log = logging.getLogger(__name__)

INDEX_DIR = "indexes"
DENSE_FILE = "dense.npz"
KEYWORD_FILE = "keyword.npz"
# Generations of change log kept after a save, so reader processes that fell a little behind
# catch up by replay instead of rebuilding.
CHANGE_LOG_KEEP = 1000


@dataclass(slots=True)
class NamespaceIndexes:
    dense: FaissIndex
    keyword: BM25Index
    dirty: bool = False


class IndexManager:
    def __init__(self, store: SQLiteStore, directory: Path, dim: int, settings: Settings) -> None:
        self.store = store
        self.directory = Path(directory) / INDEX_DIR
        self.dim = dim
        self.settings = settings
        self.generation = 0
        self._spaces: dict[int, NamespaceIndexes] = {}
        self._last_save = time.monotonic()

    # -- open / sync ---------------------------------------------------------------
    def open(self) -> None:
        target = self.store.generation()
        for ns_id in sorted(self.store.namespaces().values()):
            self._spaces[ns_id] = self._load_namespace(ns_id, target)
        self.generation = target

    def remove_stale_temp_files(self) -> int:
        """Delete temp files an index save left when its process was killed before ``os.replace``.

        Only the writer may call this: it is the only process that saves, so no live save owns them.
        """
        removed = 0
        if self.directory.is_dir():
            for tmp in self.directory.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info("removed %d temp file(s) left by an interrupted index save", removed)
        return removed

    def get(self, ns_id: int) -> NamespaceIndexes | None:
        return self._spaces.get(ns_id)

    def sync(self) -> bool:
        """Catch up with writes other processes committed; True when anything changed."""
        target = self.store.generation()
        if target == self.generation:
            return False
        if self.generation < self.store.changes_floor():
            log.info("change log no longer reaches generation %d: rebuilding indexes", self.generation)
            for ns_id in sorted(self.store.namespaces().values()):
                self._spaces[ns_id] = self._rebuild(ns_id)
        else:
            by_namespace: dict[int, list[Change]] = defaultdict(list)
            for change in self.store.changes_since(self.generation):
                if change.generation <= target:
                    by_namespace[change.namespace_id].append(change)
            for ns_id, changes in by_namespace.items():
                space = self._spaces.get(ns_id)
                if space is None:
                    self._spaces[ns_id] = self._rebuild(ns_id)
                else:
                    self._replay(ns_id, space, changes)
        self.generation = target
        return True

    def apply_write(self, result: WriteResult, vectors: np.ndarray, texts: list[str]) -> None:
        """Apply this process's own committed write without re-reading it from the store."""
        space = self._spaces.get(result.namespace_id)
        if space is None:
            space = self._spaces[result.namespace_id] = self._empty(result.namespace_id)
        if len(result.removed_keys):
            space.dense.remove(result.removed_keys)
            space.keyword.remove(result.removed_keys)
        if len(result.added_keys):
            space.dense.add(result.added_keys, vectors)
            space.keyword.add(result.added_keys, texts)
        space.dirty = True
        self.generation = result.generation

    # -- persistence -----------------------------------------------------------------
    def save(self, force: bool = False) -> None:
        """Write dirty indexes (writer only); then forget change-log entries far behind them."""
        if not force and time.monotonic() - self._last_save < self.settings.index.save_every_seconds:
            return
        wrote = False
        for ns_id, space in self._spaces.items():
            if space.dirty:
                folder = self.directory / str(ns_id)
                space.dense.save(folder / DENSE_FILE, self.generation)
                space.keyword.save(folder / KEYWORD_FILE, self.generation)
                space.dirty = False
                wrote = True
        self._last_save = time.monotonic()
        if wrote and self.generation > CHANGE_LOG_KEEP:
            self.store.prune_changes(self.generation - CHANGE_LOG_KEEP)

    def rebuild(self, ns_id: int | None = None) -> None:
        for nid in [ns_id] if ns_id is not None else sorted(self.store.namespaces().values()):
            self._spaces[nid] = self._rebuild(nid)
        self.generation = self.store.generation()

    # -- internals -------------------------------------------------------------------
    def _empty(self, ns_id: int) -> NamespaceIndexes:
        bm = self.settings.bm25
        tokenizer = TextTokenizer(stem=bm.stem, stopwords=bm.stopwords)
        return NamespaceIndexes(self._new_dense(ns_id), BM25Index(tokenizer, k1=bm.k1, b=bm.b))

    def _new_dense(self, ns_id: int) -> Any:
        if self.settings.vector.backend == "pinecone":
            from localrag.pinecone.remote import PineconeVectorIndex

            return PineconeVectorIndex.create(self.settings.vector, self.dim, ns_id)
        return FaissIndex(self.dim, self.settings.index, self._source(ns_id))

    def _source(self, ns_id: int) -> VectorSource:
        """Exact vectors from the store, for a compressed index's rerank (index/ivf.py)."""
        store, dim = self.store, self.dim
        return lambda keys: store.find_vectors(keys, ns_id, dim)

    def _load_dense(self, path: Path, ns_id: int) -> tuple[Any, int]:
        if self.settings.vector.backend == "pinecone":
            from localrag.pinecone.remote import PineconeVectorIndex

            return PineconeVectorIndex.load(path, self.settings.vector, ns_id)
        return FaissIndex.load(path, self.settings.index, self._source(ns_id))

    def _load_namespace(self, ns_id: int, target: int) -> NamespaceIndexes:
        folder = self.directory / str(ns_id)
        try:
            dense, dense_stamp = self._load_dense(folder / DENSE_FILE, ns_id)
            keyword, keyword_stamp = BM25Index.load(folder / KEYWORD_FILE)
        except FileNotFoundError:
            log.info("namespace %d has no saved indexes: building them from the store", ns_id)
            return self._rebuild(ns_id)
        except CorruptIndexError as e:
            log.warning("rebuilding namespace %d indexes from the store: %s", ns_id, e)
            return self._rebuild(ns_id)
        if dense.dim != self.dim or not self._config_matches(keyword):
            log.info("namespace %d indexes were built with other settings: rebuilding", ns_id)
            return self._rebuild(ns_id)
        space = NamespaceIndexes(dense, keyword, dirty=bool(getattr(dense, "retrained_on_load", False)))
        stamp = min(dense_stamp, keyword_stamp)
        if stamp > target or stamp < self.store.changes_floor():
            log.info("namespace %d index stamp %d cannot be caught up to %d: rebuilding", ns_id, stamp, target)
            return self._rebuild(ns_id)
        if stamp < target:
            changes = [c for c in self.store.changes_since(stamp) if c.namespace_id == ns_id and c.generation <= target]
            self._replay(ns_id, space, changes)
        expected = self.store.chunk_keys(ns_id)
        if not (np.array_equal(space.dense.keys(), expected) and np.array_equal(space.keyword.keys(), expected)):
            log.warning("namespace %d indexes disagree with the store: rebuilding", ns_id)
            return self._rebuild(ns_id)
        return space

    def _config_matches(self, keyword: BM25Index) -> bool:
        bm = self.settings.bm25
        wanted = TextTokenizer(stem=bm.stem, stopwords=bm.stopwords).config()
        return keyword.tokenizer.config() == wanted and (keyword.k1, keyword.b) == (bm.k1, bm.b)

    def _replay(self, ns_id: int, space: NamespaceIndexes, changes: list[Change]) -> None:
        removed = np.asarray(sorted({c.chunk_id for c in changes if c.op == "remove"}), dtype=np.int64)
        added_all = {c.chunk_id for c in changes if c.op == "add"}
        added = np.asarray(sorted(added_all - set(removed.tolist())), dtype=np.int64)
        if len(removed):
            space.dense.remove(removed)
            space.keyword.remove(removed)
        if len(added):
            # A chunk added inside the window may since be gone (removed after target): the store
            # returns only live rows, so those are skipped without scanning the namespace's keys.
            self._add_from_store(ns_id, space, added)
        space.dirty = True
        log.debug("namespace %d: replayed %d removals, %d additions", ns_id, len(removed), len(added))

    def _rebuild(self, ns_id: int) -> NamespaceIndexes:
        """Both indexes from the store in batches: the vector index built at its final kind
        (``FaissIndex.build``), the keyword index fed ``iter_index_texts`` batches; peak memory stays
        one batch of texts (and, up to ``exact_threshold``, the float vectors) at any size."""
        space = self._empty(ns_id)
        if isinstance(space.dense, FaissIndex):
            space.dense = FaissIndex.build(self.store.chunk_keys(ns_id), self.dim, self._source(ns_id),
                                           self.settings.index)
            for keys, texts in self.store.iter_index_texts(ns_id):
                space.keyword.add(keys, texts)
        else:
            self._add_from_store(ns_id, space, None)
        space.dirty = True
        return space

    def _add_from_store(self, ns_id: int, space: NamespaceIndexes, keys: Keys | None) -> None:
        text_keys, texts = self.store.index_texts(keys, ns_id)
        if not len(text_keys):
            return
        space.dense.add(text_keys, self.store.vectors(text_keys, ns_id, self.dim))
        space.keyword.add(text_keys, texts)
