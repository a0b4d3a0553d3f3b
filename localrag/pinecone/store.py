"""Persistence for Pinecone-mode indexes: one folder per index, SQLite as the truth.

``<root>/<name>/index.json`` is the index's configuration (written atomically, last, so
an index exists once it is complete); ``<root>/<name>/records.sqlite3`` holds every
record (WAL mode, one transaction per request, so an acknowledged write survives a
crash). In-memory search structures are rebuilt from these files on open, except a namespace's
ANN, which may be loaded from ``<root>/<name>/ann/`` when its file carries the namespace's current
write generation (bumped in the same transaction as every write, so a file never outlives a change).
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localrag import failpoints
from localrag.errors import StoreError
from localrag.fileio import atomic_write_bytes
from localrag.pinecone.wire import Record, Sparse
from localrag.store.connections import SQLiteConnections

log = logging.getLogger(__name__)

CONFIG_FILE = "index.json"
DB_FILE = "records.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, created_at REAL NOT NULL, schema TEXT);
CREATE TABLE IF NOT EXISTS records (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    dense BLOB,
    sparse_indices BLOB,
    sparse_values BLOB,
    metadata TEXT,
    PRIMARY KEY (namespace, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS generations (namespace TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


@dataclass(slots=True)
class IndexConfig:
    name: str
    dimension: int | None
    metric: str
    vector_type: str = "dense"
    deletion_protection: str = "disabled"
    tags: dict[str, str] | None = None
    cloud: str = "aws"
    region: str = "us-east-1"
    created_at: float = field(default_factory=time.time)
    schema: dict[str, Any] | None = None  # a document index's resolved schema; None for a vector index
    # the deployment as created (2026-07 shape, see localrag.pinecone.deployment); None in configs
    # written before it was kept: serverless at cloud/region
    deployment: dict[str, Any] | None = None

    def save(self, folder: Path) -> None:
        atomic_write_bytes(folder / CONFIG_FILE, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, folder: Path) -> IndexConfig:
        try:
            data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise StoreError(f"cannot read index configuration in {folder}: {e}") from e


@dataclass(frozen=True, slots=True)
class Row:
    namespace: str
    id: str
    values: np.ndarray | None
    sparse: Sparse | None
    metadata: dict[str, Any] | None


class RecordStore:
    """One index's records. Thread-safe: a connection per thread, writes serialised."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / DB_FILE
        self._db = SQLiteConnections(self.path)
        try:
            self._conn().executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a readable index store: {e}") from e

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction()

    def close(self) -> None:
        self._db.close()

    # -- writes (each call one transaction) -------------------------------------------
    def upsert(self, namespace: str, records: Sequence[Record]) -> None:
        rows = [(namespace, r.id, None if r.values is None else r.values.tobytes(),
                 None if r.sparse is None else r.sparse[0].tobytes(),
                 None if r.sparse is None else r.sparse[1].tobytes(),
                 None if r.metadata is None else json.dumps(r.metadata, separators=(",", ":")))
                for r in records]
        with self.transaction() as conn:
            self._ensure_namespace(conn, namespace)
            conn.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._bump(conn, namespace)
            failpoints.hit("pinecone.upsert.before_commit")
        failpoints.hit("pinecone.upsert.after_commit")

    def replace(self, namespace: str, rows: Sequence[Row]) -> None:
        """Write whole records (updates are read-modify-write in memory, then stored here)."""
        self.upsert(namespace, [Record(r.id, r.values, r.sparse, r.metadata) for r in rows])

    def delete(self, namespace: str, ids: Sequence[str]) -> None:
        with self.transaction() as conn:
            conn.executemany("DELETE FROM records WHERE namespace = ? AND id = ?", [(namespace, i) for i in ids])
            self._bump(conn, namespace)
            failpoints.hit("pinecone.delete.before_commit")
        failpoints.hit("pinecone.delete.after_commit")

    def delete_all(self, namespace: str, *, drop_namespace: bool = False) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM records WHERE namespace = ?", (namespace,))
            self._bump(conn, namespace)  # kept when the namespace goes: a recreated one never reuses a number
            if drop_namespace:
                conn.execute("DELETE FROM namespaces WHERE name = ?", (namespace,))

    def create_namespace(self, namespace: str, schema: dict[str, Any] | None) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO namespaces VALUES (?, ?, ?)",
                         (namespace, time.time(), None if schema is None else json.dumps(schema)))

    @staticmethod
    def _bump(conn: sqlite3.Connection, namespace: str) -> None:
        conn.execute("INSERT INTO generations VALUES (?, 1) ON CONFLICT(namespace) DO UPDATE SET value = value + 1",
                     (namespace,))

    @staticmethod
    def _ensure_namespace(conn: sqlite3.Connection, namespace: str) -> None:
        conn.execute("INSERT OR IGNORE INTO namespaces VALUES (?, ?, NULL)", (namespace, time.time()))

    # -- reads ------------------------------------------------------------------------
    def namespaces(self) -> dict[str, dict[str, Any] | None]:
        rows = self._conn().execute("SELECT name, schema FROM namespaces ORDER BY name").fetchall()
        return {name: None if schema is None else json.loads(schema) for name, schema in rows}

    def generation(self, namespace: str) -> int:
        """How many write transactions ``namespace`` has seen (0 before the first)."""
        row = self._conn().execute("SELECT value FROM generations WHERE namespace = ?", (namespace,)).fetchone()
        return 0 if row is None else int(row[0])

    def rows(self, dimension: int | None) -> Iterator[Row]:
        cursor = self._conn().execute(
            "SELECT namespace, id, dense, sparse_indices, sparse_values, metadata FROM records ORDER BY namespace, id")
        for ns, rid, dense, s_idx, s_val, meta in cursor:
            values = None if dense is None else np.frombuffer(dense, dtype=np.float32)
            if values is not None and dimension is not None and len(values) != dimension:
                raise StoreError(f"{self.path}: record {rid!r} has {len(values)} values, the index {dimension}")
            sparse = None if s_idx is None else (np.frombuffer(s_idx, dtype=np.uint32),
                                                 np.frombuffer(s_val, dtype=np.float32))
            yield Row(ns, rid, values, sparse, None if meta is None else json.loads(meta))

    def list_ids(self, namespace: str, prefix: str, after: str | None, limit: int) -> list[str]:
        """Ids in bytewise order (SQLite's BINARY collation compares UTF-8 bytes)."""
        sql = "SELECT id FROM records WHERE namespace = ?"
        args: list[Any] = [namespace]
        if prefix:
            sql += " AND id >= ? AND substr(id, 1, ?) = ?"
            args += [prefix, len(prefix), prefix]
        if after is not None:
            sql += " AND id > ?"
            args.append(after)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [r[0] for r in self._conn().execute(sql, args)]


class Catalog:
    """The index folders under one root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, name: str) -> Path:
        return self.root / name

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / CONFIG_FILE).is_file())

    def create(self, config: IndexConfig) -> RecordStore:
        folder = self.folder(config.name)
        if folder.exists():  # a leftover of a create that died before its config was written
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        store = RecordStore(folder)
        config.save(folder)  # the commit point: the index exists from here on
        return store

    def delete(self, name: str) -> None:
        folder = self.folder(name)
        trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
        folder.rename(trash)  # atomic: the index is gone for every reader at once
        shutil.rmtree(trash, ignore_errors=True)

    def purge_trash(self) -> None:
        for p in self.root.glob(".deleted-*"):
            shutil.rmtree(p, ignore_errors=True)
