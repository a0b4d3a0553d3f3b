"""The SQLite store: the source of truth for documents, chunks, vectors and metadata.

WAL mode; every write is one ``BEGIN IMMEDIATE`` transaction that also bumps the
generation counter and logs the chunk keys it added or removed, so indexes (which are
only caches) can catch up by replaying the log, or be rebuilt from the rows.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from localrag import failpoints
from localrag.errors import CorruptStoreError, DimensionMismatchError, NotFoundError, StoreError
from localrag.store.connections import SQLiteConnections
from localrag.store.feedback_rows import FeedbackRows
from localrag.store.lost import file_size, refuse_lost_store
from localrag.store.migrations import migrate
from localrag.store.reads import ChunkReads
from localrag.store.records import (
    EMPTY_KEYS,
    Change,
    ChunkRecord,
    PreparedDocument,
    WriteResult,
    batches,
    index_text,
    keys_array,
)
from localrag.types import Document

log = logging.getLogger(__name__)

# the store's rows live in store/records.py; callers import them from here, with the store
__all__ = ["DB_FILE", "Change", "ChunkRecord", "PreparedDocument", "SQLiteStore", "WriteResult", "index_text"]

DB_FILE = "store.sqlite3"


class SQLiteStore(ChunkReads, FeedbackRows):
    """Thread-safe: each thread reads on its own connection; writes are serialised."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / DB_FILE
        if not self.path.exists():
            refuse_lost_store(self.path, "is missing")
        size = file_size(self.path)
        if size == 0 and file_size(self.path.with_name(DB_FILE + "-wal")) == 0:
            refuse_lost_store(self.path, "is empty (0 bytes)")  # before the WAL pragma writes a header into it
        self._db = SQLiteConnections(self.path, foreign_keys=True)
        try:
            conn = self._conn()
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                try:
                    refuse_lost_store(self.path, "is empty (0 bytes)" if size == 0 else "holds no tables")
                except CorruptStoreError:
                    self._db.close()
                    raise
            migrate(conn)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a readable localrag store: {e}") from e

    # -- connections -------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction()

    def close(self) -> None:
        self._db.close()

    # -- meta ----------------------------------------------------------------------
    def generation(self) -> int:
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def changes_floor(self) -> int:
        """Oldest generation from which the change log is complete."""
        return int(self.get_meta("changes_floor") or 0)

    # -- namespaces -------------------------------------------------------------
    def namespace_id(self, name: str) -> int | None:
        row = self._conn().execute("SELECT id FROM namespaces WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def namespaces(self) -> dict[str, int]:
        return {name: nid for nid, name in self._conn().execute("SELECT id, name FROM namespaces")}

    def _ensure_namespace(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM namespaces WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        cur = conn.execute("INSERT INTO namespaces (name, created_at) VALUES (?, ?)", (name, time.time()))
        return int(cur.lastrowid or 0)

    # -- writes -------------------------------------------------------------------
    def write_documents(self, namespace: str, prepared: Sequence[PreparedDocument], dim: int) -> WriteResult:
        """Insert or replace documents and their chunks in one transaction."""
        for item in prepared:
            vectors = np.asarray(item.vectors)
            if vectors.ndim != 2 or vectors.shape != (len(item.chunks), dim):
                raise DimensionMismatchError(
                    f"document {item.document.doc_id!r}: expected vectors of shape "
                    f"({len(item.chunks)}, {dim}), got {vectors.shape}"
                )
        now = time.time()
        added: list[int] = []
        removed: list[int] = []
        with self._transaction() as conn:
            ns_id = self._ensure_namespace(conn, namespace)
            generation = self._bump_generation(conn)
            for item in prepared:
                doc = item.document
                doc_row_id, old_chunks = self._upsert_document_row(conn, ns_id, item, now)
                removed.extend(old_chunks)
                vectors = np.ascontiguousarray(item.vectors, dtype=np.float32)
                for chunk, vector in zip(item.chunks, vectors, strict=True):
                    cur = conn.execute(
                        "INSERT INTO chunks (document_id, namespace_id, ordinal, text, char_start, char_end,"
                        " page, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            doc_row_id,
                            ns_id,
                            chunk.ordinal,
                            chunk.text,
                            chunk.char_start,
                            chunk.char_end,
                            chunk.page,
                            vector.tobytes(),
                        ),
                    )
                    added.append(int(cur.lastrowid or 0))
                log.debug("stored %s (%d chunks)", doc.doc_id, len(item.chunks))
            self._log_changes(conn, generation, ns_id, added, removed)
            failpoints.hit("store.write.before_commit")
        failpoints.hit("store.write.after_commit")
        return WriteResult(generation, ns_id, keys_array(added), keys_array(removed))

    def _upsert_document_row(
        self, conn: sqlite3.Connection, ns_id: int, item: PreparedDocument, now: float
    ) -> tuple[int, list[int]]:
        doc = item.document
        values = (
            doc.source,
            doc.title,
            item.content_hash,
            json.dumps(dict(doc.metadata), sort_keys=True),
            doc.text,
            json.dumps(list(doc.page_starts)),
        )
        row = conn.execute(
            "SELECT id FROM documents WHERE namespace_id = ? AND doc_id = ?", (ns_id, doc.doc_id)
        ).fetchone()
        if row is None:
            cur = conn.execute(
                "INSERT INTO documents (namespace_id, doc_id, source, title, content_hash, metadata, text,"
                " page_starts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ns_id, doc.doc_id, *values, now, now),
            )
            return int(cur.lastrowid or 0), []
        doc_row_id = int(row[0])
        old = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE document_id = ?", (doc_row_id,))]
        conn.execute("DELETE FROM chunks WHERE document_id = ?", (doc_row_id,))
        conn.execute(
            "UPDATE documents SET source = ?, title = ?, content_hash = ?, metadata = ?, text = ?,"
            " page_starts = ?, updated_at = ? WHERE id = ?",
            (*values, now, doc_row_id),
        )
        return doc_row_id, old

    def delete_documents(self, namespace: str, doc_ids: Sequence[str]) -> WriteResult | None:
        """Delete documents (missing ids are ignored); None when nothing was deleted."""
        ns_id = self.namespace_id(namespace)
        if ns_id is None or not doc_ids:
            return None
        with self._transaction() as conn:
            removed: list[int] = []
            doc_rows: list[int] = []
            for batch in batches(list(doc_ids), 500):
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT id FROM documents WHERE namespace_id = ? AND doc_id IN ({marks})", (ns_id, *batch)
                ).fetchall()
                doc_rows.extend(int(r[0]) for r in rows)
            if not doc_rows:
                return None
            generation = self._bump_generation(conn)
            for batch in batches(doc_rows, 500):
                marks = ",".join("?" * len(batch))
                removed.extend(
                    r[0] for r in conn.execute(f"SELECT id FROM chunks WHERE document_id IN ({marks})", batch)
                )
                conn.execute(f"DELETE FROM chunks WHERE document_id IN ({marks})", batch)
                conn.execute(f"DELETE FROM documents WHERE id IN ({marks})", batch)
            self._log_changes(conn, generation, ns_id, [], removed)
            failpoints.hit("store.delete.before_commit")
        failpoints.hit("store.delete.after_commit")
        return WriteResult(generation, ns_id, EMPTY_KEYS, keys_array(removed))

    def _bump_generation(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = int(row[0]) + 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
        return generation

    def _log_changes(
        self, conn: sqlite3.Connection, generation: int, ns_id: int, added: list[int], removed: list[int]
    ) -> None:
        conn.executemany(
            "INSERT INTO changes (generation, namespace_id, chunk_id, op) VALUES (?, ?, ?, ?)",
            [(generation, ns_id, key, "remove") for key in removed]
            + [(generation, ns_id, key, "add") for key in added],
        )

    def prune_changes(self, up_to_generation: int) -> None:
        """Forget log entries at or below a generation every persisted index has reached."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM changes WHERE generation <= ?", (up_to_generation,))
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('changes_floor', ?)", (str(up_to_generation),)
            )

    # -- reads ---------------------------------------------------------------------
    def changes_since(self, generation: int) -> list[Change]:
        rows = self._conn().execute(
            "SELECT generation, namespace_id, chunk_id, op FROM changes WHERE generation > ?"
            " ORDER BY generation, rowid",
            (generation,),
        )
        return [Change(int(g), int(n), int(c), str(o)) for g, n, c, o in rows]

    def content_hashes(self, namespace: str, doc_ids: Sequence[str]) -> dict[str, str]:
        ns_id = self.namespace_id(namespace)
        if ns_id is None:
            return {}
        found: dict[str, str] = {}
        for batch in batches(list(doc_ids), 500):
            marks = ",".join("?" * len(batch))
            rows = self._conn().execute(
                f"SELECT doc_id, content_hash FROM documents WHERE namespace_id = ? AND doc_id IN ({marks})",
                (ns_id, *batch),
            )
            found.update({str(d): str(h) for d, h in rows})
        return found

    def get_document(self, namespace: str, doc_id: str) -> Document:
        row = (
            self._conn()
            .execute(
                "SELECT d.doc_id, d.text, d.source, d.title, d.metadata, d.page_starts FROM documents d"
                " JOIN namespaces n ON n.id = d.namespace_id WHERE n.name = ? AND d.doc_id = ?",
                (namespace, doc_id),
            )
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no document {doc_id!r} in namespace {namespace!r}")
        return Document(row[0], row[1], row[2], row[3], json.loads(row[4]), tuple(json.loads(row[5])))

    def list_documents(self, namespace: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        from localrag.store.browse import StoreBrowser

        return StoreBrowser(self).documents(namespace, limit, offset)[0]

    def stats(self) -> dict[str, Any]:
        db = sqlite_utils.Database(self._conn())
        per_ns = (
            self._conn()
            .execute(
                "SELECT n.name, (SELECT count(*) FROM documents d WHERE d.namespace_id = n.id),"
                " (SELECT count(*) FROM chunks c WHERE c.namespace_id = n.id) FROM namespaces n ORDER BY n.name"
            )
            .fetchall()
        )
        return {
            "documents": db["documents"].count,
            "chunks": db["chunks"].count,
            "generation": self.generation(),
            "namespaces": {name: {"documents": d, "chunks": c} for name, d, c in per_ns},
            "store_bytes": self.path.stat().st_size if self.path.exists() else 0,
        }


