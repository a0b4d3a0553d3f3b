"""The SQLite store's reads for the indexes: chunk keys, vectors, index texts, records and filter tables.

A mixin of ``SQLiteStore`` (localrag/store/sqlite.py): each read runs on the calling thread's own
connection. Key lists are sent in batches of 900, under SQLite's bound on host parameters.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from localrag.errors import NotFoundError
from localrag.store.records import EMPTY_KEYS, ChunkRecord, batches, index_text, keys_array


class ChunkReads:
    """Index-feeding reads over the ``chunks`` and ``documents`` tables."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError  # the store's (localrag/store/sqlite.py)

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
            for batch in batches([int(k) for k in keys], 900):
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
        for batch in batches([int(k) for k in keys], 900):
            marks = ",".join("?" * len(batch))
            by_key.update(conn.execute(
                f"SELECT id, vector FROM chunks WHERE namespace_id = ? AND id IN ({marks})", (namespace_id, *batch)
            ).fetchall())
        found = [int(k) for k in keys if int(k) in by_key]
        if not found:
            return EMPTY_KEYS, np.zeros((0, dim), dtype=np.float32)
        blob = b"".join([by_key[k] for k in found])
        return keys_array(found), np.frombuffer(blob, dtype=np.float32).reshape(len(found), dim).copy()

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
            yield keys_array([r[0] for r in rows]), [index_text(r[1], r[2]) for r in rows]
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
            for batch in batches([int(k) for k in keys], 900):
                marks = ",".join("?" * len(batch))
                rows.extend(self._conn().execute(sql + f" AND c.id IN ({marks})", (namespace_id, *batch)))
            rows.sort()
        return keys_array([r[0] for r in rows]), [index_text(r[1], r[2]) for r in rows]

    def chunk_records(self, keys: Sequence[int]) -> dict[int, ChunkRecord]:
        found: dict[int, ChunkRecord] = {}
        for batch in batches([int(k) for k in keys], 900):
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
            keys_array([c[0] for c in chunks]),
            keys_array([position[int(c[1])] for c in chunks]),
        )

