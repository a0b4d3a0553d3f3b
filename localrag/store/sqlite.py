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
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from localrag import failpoints
from localrag.errors import CorruptStoreError, DimensionMismatchError, NotFoundError, StoreError
from localrag.store.connections import SQLiteConnections
from localrag.store.migrations import migrate
from localrag.types import Chunk, Document

log = logging.getLogger(__name__)

DB_FILE = "store.sqlite3"
_EMPTY_KEYS = np.zeros(0, dtype=np.int64)


# Written only beside a store that held data (index.manager.INDEX_DIR, server.uploads.UPLOADS_DIR);
# named here because the store sits below both layers.
_INDEX_DIR = "indexes"
_UPLOADS_DIR = "uploads"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _files_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob("*") if p.is_file()]


def _refuse_lost_store(path: Path, state: str) -> None:
    """A blank store is a new one only in a directory with no trace of data; otherwise the data was lost.

    Creating a fresh store there would silently drop every document the index caches still describe.
    """
    found: list[str] = []
    caches = _files_under(path.parent / _INDEX_DIR)
    if caches:
        spaces = {p.relative_to(path.parent / _INDEX_DIR).parts[0] for p in caches}
        size = sum(_size(p) for p in caches)
        found.append(f"index caches of {len(spaces)} namespace(s) in {_INDEX_DIR}/ ({len(caches)} files, {size} bytes)")
    uploads = _files_under(path.parent / _UPLOADS_DIR)
    if uploads:
        found.append(f"{len(uploads)} uploaded file(s) in {_UPLOADS_DIR}/")
    wal = path.with_name(path.name + "-wal")
    if _size(wal) > 0:
        found.append(f"a write-ahead log {wal.name} of {_size(wal)} bytes")
    if found:
        raise CorruptStoreError(
            f"{path} {state}, but the data directory holds {' and '.join(found)}: the store was lost or "
            f"truncated, so it is not opened as a new, empty one. Restore {path.name} from a backup, or run "
            "`localrag recover` on the directory"
        )


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document ready to be written: chunked, embedded and hashed."""

    document: Document
    content_hash: str
    chunks: Sequence[Chunk]
    vectors: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class WriteResult:
    generation: int
    namespace_id: int
    added_keys: NDArray[np.int64]
    removed_keys: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    chunk_id: int
    doc_id: str
    namespace: str
    text: str
    source: str
    title: str
    char_start: int
    char_end: int
    page: int | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    generation: int
    namespace_id: int
    chunk_id: int
    op: str  # "add" | "remove"


class SQLiteStore:
    """Thread-safe: each thread reads on its own connection; writes are serialised."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / DB_FILE
        if not self.path.exists():
            _refuse_lost_store(self.path, "is missing")
        size = _size(self.path)
        if size == 0 and _size(self.path.with_name(DB_FILE + "-wal")) == 0:
            _refuse_lost_store(self.path, "is empty (0 bytes)")  # before the WAL pragma writes a header into it
        self._db = SQLiteConnections(self.path, foreign_keys=True)
        try:
            conn = self._conn()
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                try:
                    _refuse_lost_store(self.path, "is empty (0 bytes)" if size == 0 else "holds no tables")
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

    # -- feedback ----------------------------------------------------------------
    def add_feedback(
        self, namespace: str, query: str, chunk_id: int, relevant: bool, *, grade: float | None = None,
        source: str = "", vector: bytes | None = None,
    ) -> None:
        """Store one judgment; the chunk must exist in ``namespace`` (NotFoundError otherwise)."""
        row = self._conn().execute(
            "SELECT d.doc_id FROM chunks c JOIN documents d ON d.id = c.document_id"
            " JOIN namespaces n ON n.id = c.namespace_id WHERE c.id = ? AND n.name = ?",
            (int(chunk_id), namespace),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no chunk {chunk_id} in namespace {namespace!r}")
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO feedback (namespace, query, chunk_id, doc_id, relevant, created_at, grade, source,"
                " vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (namespace, query, int(chunk_id), row[0], int(relevant), time.time(), grade, source, vector),
            )

    def feedback_generation(self) -> int:
        """Changes whenever a judgment is stored (the newest row id), so caches can key on it."""
        row = self._conn().execute("SELECT max(id) FROM feedback").fetchone()
        return int(row[0] or 0)

    def feedback_votes(self, namespace: str) -> list[tuple[str, int, float, str, float, bytes | None]]:
        """(query, chunk_id, grade, source, created_at, query vector or None) of a namespace's judgments."""
        return [
            (str(r[0]), int(r[1]), float(r[2] if r[2] is not None else (1.0 if r[3] else -1.0)), str(r[4]),
             float(r[5]), r[6])
            for r in self._conn().execute(
                "SELECT query, chunk_id, grade, relevant, source, created_at, vector FROM feedback"
                " WHERE namespace = ? ORDER BY id", (namespace,))
        ]

    def feedback_items(
        self, namespace: str | None = None, limit: int = 0, newest_first: bool = False
    ) -> list[dict[str, Any]]:
        """Judgments oldest (or newest) first, of one namespace or all; ``limit`` 0: every one."""
        sql = "SELECT namespace, query, chunk_id, doc_id, relevant, created_at FROM feedback"
        args: tuple[Any, ...] = ()
        if namespace is not None:
            sql, args = sql + " WHERE namespace = ?", (namespace,)
        sql += " ORDER BY id" + (" DESC" if newest_first else "") + (f" LIMIT {int(limit)}" if limit > 0 else "")
        names = ("namespace", "query", "chunk_id", "doc_id", "relevant", "created_at")
        return [
            {**dict(zip(names, r, strict=True)), "relevant": bool(r[4])} for r in self._conn().execute(sql, args)
        ]

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
        return WriteResult(generation, ns_id, _keys(added), _keys(removed))

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
            for batch in _batches(list(doc_ids), 500):
                marks = ",".join("?" * len(batch))
                rows = conn.execute(
                    f"SELECT id FROM documents WHERE namespace_id = ? AND doc_id IN ({marks})", (ns_id, *batch)
                ).fetchall()
                doc_rows.extend(int(r[0]) for r in rows)
            if not doc_rows:
                return None
            generation = self._bump_generation(conn)
            for batch in _batches(doc_rows, 500):
                marks = ",".join("?" * len(batch))
                removed.extend(
                    r[0] for r in conn.execute(f"SELECT id FROM chunks WHERE document_id IN ({marks})", batch)
                )
                conn.execute(f"DELETE FROM chunks WHERE document_id IN ({marks})", batch)
                conn.execute(f"DELETE FROM documents WHERE id IN ({marks})", batch)
            self._log_changes(conn, generation, ns_id, [], removed)
            failpoints.hit("store.delete.before_commit")
        failpoints.hit("store.delete.after_commit")
        return WriteResult(generation, ns_id, _EMPTY_KEYS, _keys(removed))

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
        for batch in _batches(list(doc_ids), 500):
            marks = ",".join("?" * len(batch))
            rows = self._conn().execute(
                f"SELECT doc_id, content_hash FROM documents WHERE namespace_id = ? AND doc_id IN ({marks})",
                (ns_id, *batch),
            )
            found.update({str(d): str(h) for d, h in rows})
        return found

    def chunk_keys(self, namespace_id: int) -> NDArray[np.int64]:
        rows = self._conn().execute("SELECT id FROM chunks WHERE namespace_id = ? ORDER BY id", (namespace_id,))
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def vectors(self, keys: NDArray[np.int64] | None, namespace_id: int, dim: int) -> NDArray[np.float32]:
        """Vectors of ``keys`` (in that order), or of the whole namespace in key order when None."""
        if keys is None:
            rows = (
                self._conn()
                .execute("SELECT vector FROM chunks WHERE namespace_id = ? ORDER BY id", (namespace_id,))
                .fetchall()
            )
            blobs = [r[0] for r in rows]
        else:
            by_key: dict[int, bytes] = {}
            for batch in _batches([int(k) for k in keys], 900):
                marks = ",".join("?" * len(batch))
                by_key.update(
                    self._conn().execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", batch).fetchall()
                )
            missing = [int(k) for k in keys if int(k) not in by_key]
            if missing:
                raise NotFoundError(f"chunks {missing[:5]} are not in the store")
            blobs = [by_key[int(k)] for k in keys]
        if not blobs:
            return np.zeros((0, dim), dtype=np.float32)
        return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim).copy()

    def find_vectors(
        self, keys: NDArray[np.int64], namespace_id: int, dim: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(keys found, their vectors) for ``keys`` in that order; keys not in the namespace (deleted
        since an index listed them) are left out. The exact vectors a compressed index reranks with."""
        by_key: dict[int, bytes] = {}
        conn = self._conn()
        for batch in _batches([int(k) for k in keys], 900):
            marks = ",".join("?" * len(batch))
            by_key.update(conn.execute(
                f"SELECT id, vector FROM chunks WHERE namespace_id = ? AND id IN ({marks})", (namespace_id, *batch)
            ).fetchall())
        found = [int(k) for k in keys if int(k) in by_key]
        if not found:
            return _EMPTY_KEYS, np.zeros((0, dim), dtype=np.float32)
        blob = b"".join([by_key[k] for k in found])
        return _keys(found), np.frombuffer(blob, dtype=np.float32).reshape(len(found), dim).copy()

    def iter_index_texts(
        self, namespace_id: int, batch: int = 50_000
    ) -> Iterator[tuple[NDArray[np.int64], list[str]]]:
        """The whole namespace as ``index_texts`` gives it, ``batch`` chunks at a time in key order, so
        a rebuild never holds every text at once."""
        after = -1
        while True:
            rows = self._conn().execute(
                "SELECT c.id, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.document_id"
                " WHERE c.namespace_id = ? AND c.id > ? ORDER BY c.id LIMIT ?",
                (namespace_id, after, batch),
            ).fetchall()
            if not rows:
                return
            yield _keys([r[0] for r in rows]), [index_text(r[1], r[2]) for r in rows]
            after = int(rows[-1][0])

    def index_texts(self, keys: NDArray[np.int64] | None, namespace_id: int) -> tuple[NDArray[np.int64], list[str]]:
        """(keys, title-prefixed chunk texts) for the keyword index, in key order."""
        sql = (
            "SELECT c.id, d.title, c.text FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE c.namespace_id = ?"
        )
        rows: list[tuple[int, str, str]] = []
        if keys is None:
            rows = self._conn().execute(sql + " ORDER BY c.id", (namespace_id,)).fetchall()
        else:
            for batch in _batches([int(k) for k in keys], 900):
                marks = ",".join("?" * len(batch))
                rows.extend(self._conn().execute(sql + f" AND c.id IN ({marks})", (namespace_id, *batch)))
            rows.sort()
        return _keys([r[0] for r in rows]), [index_text(r[1], r[2]) for r in rows]

    def chunk_records(self, keys: Sequence[int]) -> dict[int, ChunkRecord]:
        found: dict[int, ChunkRecord] = {}
        for batch in _batches([int(k) for k in keys], 900):
            marks = ",".join("?" * len(batch))
            rows = self._conn().execute(
                "SELECT c.id, d.doc_id, n.name, c.text, d.source, d.title, c.char_start, c.char_end, c.page,"
                " d.metadata FROM chunks c JOIN documents d ON d.id = c.document_id"
                f" JOIN namespaces n ON n.id = c.namespace_id WHERE c.id IN ({marks})",
                batch,
            )
            for cid, doc_id, ns, text, source, title, start, end, page, meta in rows:
                found[int(cid)] = ChunkRecord(
                    int(cid),
                    doc_id,
                    ns,
                    text,
                    source,
                    title,
                    int(start),
                    int(end),
                    None if page is None else int(page),
                    json.loads(meta),
                )
        return found

    def filter_table(
        self, namespace_id: int
    ) -> tuple[list[str], list[dict[str, Any]], NDArray[np.int64], NDArray[np.int64]]:
        """(doc ids, doc metadata, chunk keys, chunk's document position) for filter evaluation."""
        docs = (
            self._conn()
            .execute("SELECT id, doc_id, metadata FROM documents WHERE namespace_id = ? ORDER BY id", (namespace_id,))
            .fetchall()
        )
        position = {int(row_id): i for i, (row_id, _, _) in enumerate(docs)}
        chunks = (
            self._conn()
            .execute("SELECT id, document_id FROM chunks WHERE namespace_id = ? ORDER BY id", (namespace_id,))
            .fetchall()
        )
        return (
            [str(d[1]) for d in docs],
            [json.loads(d[2]) for d in docs],
            _keys([c[0] for c in chunks]),
            _keys([position[int(c[1])] for c in chunks]),
        )

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


def index_text(title: str, text: str) -> str:
    """What both indexes see for a chunk: its document title, then its text."""
    return f"{title}\n{text}" if title and not text.startswith(title) else text


def _keys(values: Sequence[int]) -> NDArray[np.int64]:
    return np.asarray(values, dtype=np.int64) if len(values) else _EMPTY_KEYS


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
