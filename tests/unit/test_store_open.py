"""A missing, empty or table-less store file beside index caches or uploads is lost data, refused with
CorruptStoreError; only a directory with no trace of data gets a new, empty store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from localrag.engine import LocalRAG
from localrag.errors import CorruptStoreError, StoreError
from localrag.store.sqlite import DB_FILE, SQLiteStore
from localrag.types import Document


def indexed_directory(path: Path, embedder: object) -> Path:
    with LocalRAG(path, embedder=embedder) as rag:  # type: ignore[arg-type]
        rag.add([Document(f"d{i}", f"document number {i} about bees") for i in range(5)])
        rag.add([Document("other", "a second namespace")], namespace="b")
    assert any((path / "indexes").rglob("*.npz"))
    for leftover in (path / f"{DB_FILE}-wal", path / f"{DB_FILE}-shm"):
        leftover.unlink(missing_ok=True)
    return path


def test_zero_byte_store_beside_index_caches_is_refused(tmp_path: Path, fake_embedder: object) -> None:
    data = indexed_directory(tmp_path / "data", fake_embedder)
    (data / DB_FILE).write_bytes(b"")
    with pytest.raises(CorruptStoreError) as info:
        LocalRAG(data, embedder=fake_embedder)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{data / DB_FILE} is empty (0 bytes), but the data directory holds index caches of "
                              "2 namespace(s) in indexes/ (")
    assert "not opened as a new, empty one" in message and "`localrag recover`" in message and "backup" in message
    assert isinstance(info.value, StoreError) and info.value.http_status == 500
    assert (data / DB_FILE).stat().st_size == 0  # left as found, not turned into an empty store


def test_missing_store_beside_index_caches_is_refused_and_not_created(tmp_path: Path, fake_embedder: object) -> None:
    data = indexed_directory(tmp_path / "data", fake_embedder)
    (data / DB_FILE).unlink()
    with pytest.raises(CorruptStoreError, match=r"store\.sqlite3 is missing, but the data directory holds index"):
        SQLiteStore(data)
    assert not (data / DB_FILE).exists()


def test_store_without_tables_beside_uploads_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "uploads" / "ns").mkdir(parents=True)
    (data / "uploads" / "ns" / "report.pdf").write_bytes(b"%PDF-1.4")
    with sqlite3.connect(data / DB_FILE) as conn:  # a valid SQLite file that holds nothing
        conn.execute("PRAGMA user_version = 1")
    assert (data / DB_FILE).stat().st_size > 0
    with pytest.raises(CorruptStoreError, match=r"holds no tables, but the data directory holds 1 uploaded file"):
        SQLiteStore(data)


def test_write_ahead_log_counts_as_a_trace_of_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / f"{DB_FILE}-wal").write_bytes(b"\x00" * 32)
    with pytest.raises(CorruptStoreError, match=r"is missing, but .* write-ahead log store\.sqlite3-wal of 32 bytes"):
        SQLiteStore(data)


@pytest.mark.parametrize("beside", [None, "localrag.toml", "empty-indexes", "empty-store"])
def test_new_directory_still_gets_a_store(tmp_path: Path, fake_embedder: object, beside: str | None) -> None:
    data = tmp_path / "fresh"
    data.mkdir()
    if beside == "localrag.toml":
        (data / "localrag.toml").write_text("[search]\nrrf_k = 30\n", encoding="utf-8")
    elif beside == "empty-indexes":
        (data / "indexes").mkdir()
        (data / "uploads").mkdir()
    elif beside == "empty-store":
        (data / DB_FILE).write_bytes(b"")
    with LocalRAG(data, embedder=fake_embedder) as rag:  # type: ignore[arg-type]
        rag.add([Document("a", "a first document")])
        assert [h.doc_id for h in rag.search("first document", k=1)] == ["a"]
    store = SQLiteStore(data)
    assert store.generation() >= 1
    store.close()
