"""Read-only queries for browsing the store (the web app's library): one document's chunk spans, and
the document list narrowed by a search string with its total count.

Kept apart from ``sqlite.py`` (the write path and the index feeds) because nothing here writes or
feeds an index; it shares the store's per-thread connections.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localrag.store.sqlite import SQLiteStore

_MATCH = "localrag_contains"


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """Where one stored chunk lies in its document's text (``text[char_start:char_end]``)."""

    chunk_id: int
    ordinal: int
    char_start: int
    char_end: int
    page: int | None


class StoreBrowser:
    """Read-only views of a ``SQLiteStore`` (same connections, so it sees every committed write)."""

    def __init__(self, store: SQLiteStore) -> None:
        self._db = store._db

    def _conn(self) -> sqlite3.Connection:
        conn = self._db.get()
        conn.create_function(_MATCH, 4, _contains, deterministic=True)
        return conn

    def chunk_spans(self, namespace: str, doc_id: str) -> list[ChunkSpan]:
        """The chunks of one document in reading order; empty when there is no such document."""
        rows = self._conn().execute(
            "SELECT c.id, c.ordinal, c.char_start, c.char_end, c.page FROM chunks c"
            " JOIN documents d ON d.id = c.document_id JOIN namespaces n ON n.id = d.namespace_id"
            " WHERE n.name = ? AND d.doc_id = ? ORDER BY c.ordinal, c.id",
            (namespace, doc_id),
        )
        return [ChunkSpan(int(i), int(o), int(s), int(e), None if p is None else int(p)) for i, o, s, e, p in rows]

    def documents(
        self, namespace: str, limit: int = 100, offset: int = 0, q: str = ""
    ) -> tuple[list[dict[str, Any]], int]:
        """(one page of documents by doc_id, how many match in all). ``q``: a case-insensitive substring
        of the doc_id, title or source ("" matches every document)."""
        where = "n.name = ?"
        args: list[Any] = [namespace]
        if q:
            where += f" AND {_MATCH}(?, d.doc_id, d.title, d.source)"
            args.append(q.casefold())
        conn = self._conn()
        base = " FROM documents d JOIN namespaces n ON n.id = d.namespace_id WHERE " + where
        total = int(conn.execute("SELECT count(*)" + base, args).fetchone()[0])
        rows = conn.execute(
            "SELECT d.doc_id, d.source, d.title, d.metadata, d.updated_at,"
            " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)" + base
            + " ORDER BY d.doc_id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        docs = [
            {"doc_id": r[0], "source": r[1], "title": r[2], "metadata": json.loads(r[3]), "updated_at": r[4],
             "chunks": int(r[5])}
            for r in rows
        ]
        return docs, total


def _contains(needle: str, *fields: str | None) -> bool:
    # SQLite's lower() and LIKE fold ASCII letters only; "ärger" must find "Ärger" too.
    return any(needle in (field or "").casefold() for field in fields)
