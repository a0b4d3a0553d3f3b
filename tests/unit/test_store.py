from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from localrag.errors import DimensionMismatchError, NotFoundError, StoreError, StoreLockedError
from localrag.store.lock import WriterLock
from localrag.store.sqlite import PreparedDocument, SQLiteStore
from localrag.types import Chunk, Document

DIM = 4


def prepared(doc_id: str, text: str, n_chunks: int = 2, metadata: dict | None = None) -> PreparedDocument:
    step = max(1, len(text) // n_chunks)
    chunks = [Chunk(text[i * step : (i + 1) * step], i * step, (i + 1) * step, i) for i in range(n_chunks)]
    vectors = np.random.default_rng(len(text)).standard_normal((n_chunks, DIM)).astype(np.float32)
    return PreparedDocument(
        Document(doc_id, text, source=f"/src/{doc_id}", title=doc_id.upper(), metadata=metadata or {}),
        f"hash-{text}",
        chunks,
        vectors,
    )


def test_write_replace_delete_with_change_log(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    first = store.write_documents("", [prepared("a", "alpha text here"), prepared("b", "bravo text here")], DIM)
    assert first.generation == 1
    assert len(first.added_keys) == 4 and len(first.removed_keys) == 0
    assert store.content_hashes("", ["a", "b", "zz"]) == {"a": "hash-alpha text here", "b": "hash-bravo text here"}

    second = store.write_documents("", [prepared("a", "alpha changed text", n_chunks=3)], DIM)
    assert second.generation == 2
    assert sorted(second.removed_keys.tolist()) == sorted(first.added_keys[:2].tolist())
    assert len(second.added_keys) == 3
    assert min(second.added_keys) > max(first.added_keys)  # rowids are never reused

    ns_id = store.namespace_id("")
    assert ns_id is not None
    assert sorted(store.chunk_keys(ns_id).tolist()) == sorted(
        first.added_keys[2:].tolist() + second.added_keys.tolist()
    )
    vectors = store.vectors(second.added_keys, ns_id, DIM)
    assert vectors.shape == (3, DIM)

    deleted = store.delete_documents("", ["b", "missing"])
    assert deleted is not None and deleted.generation == 3
    assert sorted(deleted.removed_keys.tolist()) == sorted(first.added_keys[2:].tolist())
    assert store.delete_documents("", ["missing"]) is None
    ops = [(c.generation, c.op) for c in store.changes_since(1)]
    assert (2, "remove") in ops and (2, "add") in ops and (3, "remove") in ops
    assert all(c.generation > 1 for c in store.changes_since(1))
    store.prune_changes(2)
    assert store.changes_floor() == 2
    assert {c.generation for c in store.changes_since(0)} == {3}
    store.close()


def test_namespaces_isolate(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    store.write_documents("one", [prepared("a", "same id in one")], DIM)
    store.write_documents("two", [prepared("a", "same id in two")], DIM)
    assert store.get_document("one", "a").text == "same id in one"
    assert store.get_document("two", "a").text == "same id in two"
    store.delete_documents("one", ["a"])
    with pytest.raises(NotFoundError):
        store.get_document("one", "a")
    assert store.get_document("two", "a").text == "same id in two"
    assert store.stats()["namespaces"]["two"] == {"documents": 1, "chunks": 2}


def test_bad_vectors_roll_back_the_whole_batch(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    store.write_documents("", [prepared("keep", "kept document")], DIM)
    bad = prepared("bad", "bad document")
    bad = PreparedDocument(bad.document, bad.content_hash, bad.chunks, np.zeros((2, DIM + 1), np.float32))
    with pytest.raises(DimensionMismatchError, match="expected vectors of shape"):
        store.write_documents("", [prepared("ok", "fine document"), bad], DIM)
    assert store.content_hashes("", ["keep", "ok", "bad"]) == {"keep": "hash-kept document"}
    assert store.generation() == 1


def test_crash_mid_transaction_keeps_committed_rows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    store.write_documents("", [prepared("a", "committed document")], DIM)
    with pytest.raises(RuntimeError), store._transaction() as conn:
        conn.execute("DELETE FROM chunks")
        raise RuntimeError("simulated failure inside the transaction")
    ns_id = store.namespace_id("")
    assert ns_id is not None and len(store.chunk_keys(ns_id)) == 2


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "store.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable localrag store"):
        SQLiteStore(tmp_path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "store.sqlite3")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer than this localrag supports"):
        SQLiteStore(tmp_path)


def test_second_writer_gets_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    first = WriterLock(tmp_path)
    first.acquire()
    second = WriterLock(tmp_path)
    with pytest.raises(StoreLockedError, match="another process"):
        second.acquire()
    first.release()
    second.acquire()
    assert second.held
    second.release()
