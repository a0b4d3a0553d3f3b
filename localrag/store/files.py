"""File states of synced folders (table ``file_states``, migration 3) and the stored vectors sync reuses.

A row says what sync last made of one file: its size, mtime and content hash, and whether it is
indexed (under which doc ids), a near-duplicate of an indexed document, or skipped for a lasting
reason. Rows are written after the documents they describe commit; a crash between the two leaves
a row missing or stale, which the next reconcile repairs (re-reading the file finds its document
unchanged by content hash, so nothing is embedded twice).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from localrag.store.sqlite import index_text

if TYPE_CHECKING:
    from localrag.store.sqlite import SQLiteStore

FileStatus = Literal["indexed", "duplicate", "skipped"]
_COLUMNS = "path, root, size, mtime_ns, sha256, status, doc_ids, duplicate_of, reason, signature"


@dataclass(frozen=True, slots=True)
class FileState:
    path: str
    root: str
    size: int
    mtime_ns: int
    sha256: str
    status: FileStatus
    doc_ids: tuple[str, ...] = ()
    duplicate_of: str = ""
    reason: str = ""
    signature: bytes | None = None


def _state(row: tuple[object, ...]) -> FileState:
    path, root, size, mtime_ns, sha, status, doc_ids, dup, reason, signature = row
    return FileState(
        str(path), str(root), int(str(size)), int(str(mtime_ns)), str(sha), status,  # type: ignore[arg-type]
        tuple(json.loads(str(doc_ids))), str(dup), str(reason), signature if isinstance(signature, bytes) else None,
    )  # fmt: skip


class FileStates:
    """Reads and writes ``file_states`` through the store's connections (the store owns the file)."""

    def __init__(self, store: SQLiteStore) -> None:
        self._db = store._db  # same connections and write lock as the document writes

    def under(self, namespace: str, root: str) -> dict[str, FileState]:
        """Every state recorded for files under ``root`` (one indexed query; 10k rows in milliseconds)."""
        rows = self._db.get().execute(
            f"SELECT {_COLUMNS} FROM file_states WHERE namespace = ? AND root = ?", (namespace, root)
        ).fetchall()
        return {str(r[0]): _state(r) for r in rows}

    def get(self, namespace: str, paths: Sequence[str]) -> dict[str, FileState]:
        found: dict[str, FileState] = {}
        conn = self._db.get()
        for start in range(0, len(paths), 500):
            batch = list(paths[start : start + 500])
            marks = ",".join("?" * len(batch))
            for r in conn.execute(
                f"SELECT {_COLUMNS} FROM file_states WHERE namespace = ? AND path IN ({marks})", (namespace, *batch)
            ):
                found[str(r[0])] = _state(r)
        return found

    def with_sha(self, namespace: str, sha256: str) -> list[FileState]:
        rows = self._db.get().execute(
            f"SELECT {_COLUMNS} FROM file_states WHERE namespace = ? AND sha256 = ?", (namespace, sha256)
        ).fetchall()
        return [_state(r) for r in rows]

    def duplicates_of(self, namespace: str, doc_ids: Iterable[str]) -> list[FileState]:
        ids = list(doc_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._db.get().execute(
            f"SELECT {_COLUMNS} FROM file_states WHERE namespace = ? AND status = 'duplicate'"
            f" AND duplicate_of IN ({marks})", (namespace, *ids)
        ).fetchall()
        return [_state(r) for r in rows]

    def signatures(self, namespace: str) -> tuple[list[str], np.ndarray]:
        """(doc id, MinHash signature) of every indexed single-document file of ``namespace``."""
        ids: list[str] = []
        sigs: list[np.ndarray] = []
        for doc_ids, blob in self._db.get().execute(
            "SELECT doc_ids, signature FROM file_states WHERE namespace = ? AND status = 'indexed'"
            " AND signature IS NOT NULL", (namespace,)
        ):
            listed = json.loads(doc_ids)
            if len(listed) == 1:
                ids.append(listed[0])
                sigs.append(np.frombuffer(blob, dtype=np.uint64))
        if not sigs:
            return [], np.zeros((0, 0), dtype=np.uint64)
        return ids, np.stack(sigs)

    def put(self, namespace: str, states: Iterable[FileState], remove: Iterable[str] = ()) -> None:
        """Record ``states`` and drop the rows of ``remove`` (a rename's old path) in one transaction, so
        a crash never leaves a document claimed by two paths."""
        now = time.time()
        dropped = [(namespace, p) for p in remove]
        rows = [
            (namespace, s.path, s.root, s.size, s.mtime_ns, s.sha256, s.status, json.dumps(list(s.doc_ids)),
             s.duplicate_of, s.reason, s.signature, now)
            for s in states
        ]  # fmt: skip
        if rows or dropped:
            with self._db.transaction() as conn:
                conn.executemany("DELETE FROM file_states WHERE namespace = ? AND path = ?", dropped)
                conn.executemany(
                    "INSERT OR REPLACE INTO file_states (namespace, path, root, size, mtime_ns, sha256, status,"
                    " doc_ids, duplicate_of, reason, signature, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows
                )

    def remove(self, namespace: str, paths: Iterable[str]) -> None:
        listed = [(namespace, p) for p in paths]
        if listed:
            with self._db.transaction() as conn:
                conn.executemany("DELETE FROM file_states WHERE namespace = ? AND path = ?", listed)

    def doc_ids_in_use(self, namespace: str, doc_ids: Iterable[str], excluding: Iterable[str] = ()) -> set[str]:
        """Which of ``doc_ids`` a recorded file other than ``excluding`` holds: after a crash between a
        rename's commit and its state write, the old path's row still names the moved document."""
        wanted, skip = set(doc_ids), set(excluding)
        used: set[str] = set()
        for path, listed in self._db.get().execute(
            "SELECT path, doc_ids FROM file_states WHERE namespace = ? AND status = 'indexed'", (namespace,)
        ):
            if path not in skip:
                used.update(d for d in json.loads(listed) if d in wanted)
        return used


def stored_vectors(store: SQLiteStore, namespace: str, doc_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """The stored vector of every chunk of ``doc_ids``, keyed by the text that was embedded for it
    (``title + "\\n" + chunk``): a rewritten document (a renamed file, an edited one) re-embeds only the
    chunks whose text changed. A store with its own ``stored_vectors`` (the hosted document index of
    vector.backend = "pinecone_documents") answers for itself."""
    own = getattr(store, "stored_vectors", None)
    if own is not None:
        return dict(own(namespace, doc_ids))
    found: dict[str, np.ndarray] = {}
    conn = store._db.get()
    for start in range(0, len(doc_ids), 500):
        batch = list(doc_ids[start : start + 500])
        marks = ",".join("?" * len(batch))
        for title, text, blob in conn.execute(
            "SELECT d.title, c.text, c.vector FROM chunks c JOIN documents d ON c.document_id = d.id"
            f" JOIN namespaces n ON d.namespace_id = n.id WHERE n.name = ? AND d.doc_id IN ({marks})",
            (namespace, *batch),
        ):
            found[index_text(str(title), str(text))] = np.frombuffer(blob, dtype=np.float32)
    return found
