"""``recover`` on a store whose pages were overwritten with garbage: the documents on undamaged pages
come back, searchable, and the damaged file is kept. Real SQLite, FAISS and BM25; fake embedder."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from fakes import HashingEmbedder

from localrag.engine import LocalRAG
from localrag.errors import StoreError, StoreLockedError
from localrag.store.recover import recover
from localrag.store.sqlite import index_text
from localrag.types import Document

N = 200
# A document row's values lie side by side (doc_id, source, title), so this marks the page of the
# documents table that holds doc-0100's row (the doc_id alone would first be found in an index page).
PAGE_MARKER = b"doc-0100100.txtRecord 100"
ROW = re.compile(rb"doc-(\d{4})\d+\.txtRecord ")


def _text(i: int) -> str:
    return (f"Record {i} is filed under the codeword zq{i}x. " + "It describes the weather of one ordinary day. " * 8)


def _damaged_store(data: Path) -> list[str]:
    """A store of N documents with the page holding doc-0100's row overwritten; returns the ids of the
    documents whose rows were on that page (those cannot come back)."""
    with LocalRAG(data, embedder=HashingEmbedder()) as rag:
        rag.add([Document(f"doc-{i:04d}", _text(i), f"{i}.txt", f"Record {i}") for i in range(N)])
    path = data / "store.sqlite3"
    raw = path.read_bytes()
    page_size = int.from_bytes(raw[16:18], "big")
    page = raw.index(PAGE_MARKER) // page_size
    assert page > 0, "the test would destroy the schema page"
    lost = sorted({f"doc-{int(m):04d}" for m in ROW.findall(raw[page * page_size:(page + 1) * page_size])})
    with path.open("r+b") as fh:
        fh.seek(page * page_size)
        fh.write(b"\xde\xad\xbe\xef" * (page_size // 4))  # 0xde is no b-tree page type: always caught
    assert _integrity(path) != "ok"
    return lost


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as e:  # damage SQLite meets while checking is reported as an error
        return str(e)
    finally:
        conn.close()


def _check_recovered(target: Path, lost: list[str]) -> None:
    with LocalRAG(target, embedder=HashingEmbedder(), read_only=True) as rag:
        ids = {d["doc_id"] for d in rag.documents(limit=1000)}
        assert ids == {f"doc-{i:04d}" for i in range(N)} - set(lost)
        for i in (0, 57, 99, 101, 150, 199):
            if f"doc-{i:04d}" in ids:
                assert rag.get_document(f"doc-{i:04d}").text == _text(i)
                hit = rag.search(f"codeword zq{i}x", k=1, mode="keyword")[0]
                assert hit.doc_id == f"doc-{i:04d}"
        stats = rag.stats()
        assert stats["namespaces"][""]["vectors"] == stats["chunks"] == len(ids)  # one chunk per document
    assert _integrity(target / "store.sqlite3") == "ok"
    embedder = HashingEmbedder()
    for doc_id, vector in _vectors(target).items():  # the stored vectors came back unchanged
        i = int(doc_id[4:])
        assert vector == embedder.embed_documents([index_text(f"Record {i}", _text(i).strip())])[0].tobytes()


def _vectors(data: Path) -> dict[str, bytes]:
    conn = sqlite3.connect(data / "store.sqlite3")
    try:
        return dict(conn.execute("SELECT d.doc_id, c.vector FROM chunks c JOIN documents d ON d.id = c.document_id"))
    finally:
        conn.close()


def test_the_damage_is_real(tmp_path: Path) -> None:
    """Without recovery the damaged store cannot be read back whole (what the tests below repair)."""
    data = tmp_path / "data"
    _damaged_store(data)
    with pytest.raises((sqlite3.DatabaseError, StoreError)), LocalRAG(data, embedder=HashingEmbedder(),
                                                                      read_only=True) as rag:
        rag.documents(limit=1000)
        rag.search("codeword", k=5, mode="keyword")


def test_row_copy_recovers_the_undamaged_documents_in_place(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lost = _damaged_store(data)
    assert "doc-0100" in lost and len(lost) < 20
    report = recover(data, use_cli=False)
    assert report.method == "row copy" and report.unreadable.get("documents", 0) >= 1
    assert report.documents == N - len(lost)
    assert report.dropped.get("chunks whose document was lost", 0) >= len(lost)  # their chunks had no home
    assert report.incomplete == []
    assert Path(report.damaged_file).is_file() and Path(report.damaged_file).parent == data
    assert (data / "indexes").is_dir()  # reindexed and saved
    _check_recovered(data, lost)


def test_recover_into_a_new_directory_leaves_the_source_alone(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "recovered"
    lost = _damaged_store(data)
    damaged = (data / "store.sqlite3").read_bytes()
    report = recover(data, out)  # the sqlite3 program when it works, else the row copy
    assert report.documents == N - len(lost) and report.damaged_file == ""
    assert (data / "store.sqlite3").read_bytes() == damaged
    _check_recovered(out, lost)


def test_a_failing_sqlite3_program_falls_back_to_the_row_copy(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sqlite3"
    fake.write_text("#!/bin/sh\necho 'sql error: SQL logic error (1)' >&2\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    data = tmp_path / "data"
    lost = _damaged_store(data)
    report = recover(data)
    assert report.method == "row copy" and report.documents == N - len(lost)
    _check_recovered(data, lost)


# Stands in for the sqlite3 program where its .recover is broken: `-readonly SRC .recover` dumps SRC
# (healthy here) as SQL, `RAW` runs SQL from stdin into RAW. It checks the plumbing, not SQLite's recovery.
FAKE_SQLITE3 = """#!{python}
import sqlite3, sys
args = sys.argv[1:]
if args[-1] == ".recover":
    for line in sqlite3.connect("file:" + args[-2] + "?mode=ro", uri=True).iterdump():
        print(line)
else:
    conn = sqlite3.connect(args[0])
    conn.executescript(sys.stdin.read())
    conn.close()
"""


def test_sqlite3_program_output_is_loaded_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sqlite3").write_text(FAKE_SQLITE3.format(python=sys.executable), encoding="utf-8")
    (bin_dir / "sqlite3").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    data = tmp_path / "data"
    with LocalRAG(data, embedder=HashingEmbedder()) as rag:
        rag.add([Document(f"doc-{i:04d}", _text(i), f"{i}.txt", f"Record {i}") for i in range(N)])
    report = recover(data)
    assert report.method == "sqlite3 .recover" and report.documents == N and not report.dropped
    _check_recovered(data, [])


def test_recover_refuses_while_a_writer_holds_the_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _damaged_store(data)
    from localrag.store.lock import WriterLock

    holder = WriterLock(data)
    holder.acquire()
    try:
        with pytest.raises(StoreLockedError):
            recover(data, use_cli=False)
    finally:
        holder.release()
    assert not list(data.glob("store.sqlite3.damaged-*"))


def test_documents_that_lost_chunks_are_reported_and_marked_for_reingest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LocalRAG(data, embedder=HashingEmbedder()) as rag:
        rag.add([Document(f"long-{i}", "A sentence about tides and moons. " * 120, f"{i}.txt") for i in range(3)])
    conn = sqlite3.connect(data / "store.sqlite3")
    # lose a middle chunk of long-1 (its row deleted stands in for a destroyed page)
    conn.execute("DELETE FROM chunks WHERE id = (SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
                 " WHERE d.doc_id = 'long-1' AND c.ordinal = 1)")
    conn.commit()
    conn.close()
    report = recover(data, use_cli=False)
    assert report.incomplete == ["/long-1"]
    conn = sqlite3.connect(data / "store.sqlite3")
    hashes = dict(conn.execute("SELECT doc_id, content_hash FROM documents").fetchall())
    conn.close()
    assert hashes["long-1"] == "" and hashes["long-0"] != ""


def test_a_store_whose_schema_page_is_gone_is_left_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _damaged_store(data)
    path = data / "store.sqlite3"
    raw = bytearray(path.read_bytes())
    raw[:4096] = b"\xde\xad\xbe\xef" * 1024
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="Nothing was changed"):
        recover(data, use_cli=False)
    assert path.read_bytes() == bytes(raw) and not list(data.glob("store.sqlite3.damaged-*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging folder left
