"""The SQLite store's feedback table: judgments on (query, chunk) pairs, read back by learn/feedback.py.

A mixin of ``SQLiteStore`` (localrag/store/sqlite.py).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from typing import Any

from localrag.errors import NotFoundError


class FeedbackRows:
    """Stored judgments: one row per vote, with its grade, voter and the query's embedding."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError  # the store's (localrag/store/sqlite.py)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the store's

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

