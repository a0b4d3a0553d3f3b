"""Backup, restore, export/import and the previous release's store: real SQLite files, real FAISS
and BM25, real writer processes; the fake embedder stands in for the model (the data path is what
is tested)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import HashingEmbedder

from localrag.doctor import diagnose
from localrag.engine import LocalRAG
from localrag.errors import ConfigError, ConflictError, NotFoundError, StoreError, StoreLockedError
from localrag.store.backup import backup, restore
from localrag.store.migrations import MIGRATIONS
from localrag.store.transfer import export_jsonl, import_jsonl
from localrag.types import Document

TESTS = Path(__file__).resolve().parents[1]
QUERIES = ("spring tides moon", "bees dance flowers", "lava magma", "comet tail sun", "river delta")

# A writer in another process: adds 5 documents, says "ready", then adds 200 more in batches of 10
# while the test copies the directory, says "done", and keeps the writer lock until stdin closes.
WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from fakes import HashingEmbedder
from localrag.doctor import diagnose
from localrag.engine import LocalRAG
from localrag.types import Document
rag = LocalRAG(sys.argv[1], embedder=HashingEmbedder())
rag.add([Document(f"live-{i:03d}", f"live document {i} about rivers and lakes") for i in range(5)])
print("ready", flush=True)
for start in range(5, 205, 10):
    rag.add([Document(f"live-{i:03d}", f"live document {i} about rivers and lakes") for i in range(start, start + 10)])
print("done", flush=True)
sys.stdin.read()
rag.close()
"""


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    data = tmp_path / "live"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(data), str(TESTS)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    try:
        yield data, child
    finally:
        if child.poll() is None:
            child.communicate(timeout=120)


def _corpus() -> list[tuple[str, Document]]:
    return [
        ("", Document("tides", "Spring tides happen when the sun and the moon line up.\n\nNeap tides come at "
                      "right angles.", "tides.md", "Tides", {"topic": "sea", "year": 2020})),
        ("", Document("bees", "A forager bee dances on the comb to show where the flowers are.", "bees.md",
                      "Honeybees", {"topic": "insects", "tags": ["a", "b"]})),
        ("", Document("paper", "Page one is about lava.\fPage two is about magma chambers deep below.",
                      "paper.pdf", "Volcano paper", {}, (0, 24))),
        ("archive", Document("comets", "A comet grows a tail that points away from the sun.", "comets.txt", "Comets")),
        ("archive", Document("rivers", "A river builds a delta where it meets the sea. " * 40, "rivers.txt",
                             "Rivers")),
    ]


def _filled(path: Path, embedder: HashingEmbedder) -> LocalRAG:
    rag = LocalRAG(path, embedder=embedder)
    for namespace, doc in _corpus():
        rag.add(doc, namespace=namespace)
    rag.add(Document("bees", "Bees dance on the comb to show where the flowers are, and how far.", "bees.md",
                     "Honeybees", {"topic": "insects"}))  # an update: chunk keys are no longer contiguous
    return rag


def _chunks(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path / "store.sqlite3")
    try:
        return conn.execute(
            "SELECT n.name, d.doc_id, c.ordinal, c.text, c.char_start, c.char_end, c.page, c.vector FROM chunks c"
            " JOIN documents d ON d.id = c.document_id JOIN namespaces n ON n.id = c.namespace_id"
            " ORDER BY n.name, d.doc_id, c.ordinal").fetchall()
    finally:
        conn.close()


def _results(rag: LocalRAG) -> list[list[tuple[str, int, int, float]]]:
    return [[(h.doc_id, h.char_start, h.char_end, round(h.score, 5)) for h in rag.search(q, k=4, mode=mode,
                                                                                        namespace=ns)]
            for q in QUERIES for mode in ("dense", "keyword", "hybrid") for ns in ("", "archive")]


def _documents(rag: LocalRAG) -> dict[tuple[str, str], Document]:
    return {(ns, d.doc_id): d for ns in ("", "archive") for d in rag.iter_documents(ns)}


# -- backup and restore ----------------------------------------------------------------------------------
def test_backup_while_another_process_writes(tmp_path: Path, writer: tuple[Path, subprocess.Popen[str]]) -> None:
    data, child = writer
    during = backup(data, tmp_path / "during")  # taken while the child commits batch after batch
    assert child.stdout is not None and child.stdout.readline().strip() == "done"
    after = backup(data, tmp_path / "after")
    for report in (during, after):
        copy = Path(report.target)
        conn = sqlite3.connect(copy / "store.sqlite3")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # one consistent snapshot: every document has its chunk, every chunk its document
        assert conn.execute("SELECT count(*) FROM documents d WHERE NOT EXISTS "
                            "(SELECT 1 FROM chunks c WHERE c.document_id = d.id)").fetchone()[0] == 0
        assert report.documents == report.chunks and report.documents % 5 == 0 and report.documents >= 5
        conn.close()
        assert not (copy / "writer.lock").exists() and not (copy / "indexes").exists()
    assert after.documents == 205
    with LocalRAG(tmp_path / "after", embedder=HashingEmbedder()) as rag:
        assert rag.search("live document 150 rivers", k=1, mode="keyword")[0].doc_id == "live-150"
    with pytest.raises(StoreLockedError):
        restore(tmp_path / "after", data, force=True)
    assert not list(tmp_path.glob(".live.*"))  # no staging folder left behind


def test_backup_copies_settings_and_refuses_a_used_target(tmp_path: Path, fake_embedder: HashingEmbedder) -> None:
    data = tmp_path / "data"
    _filled(data, fake_embedder).close()
    (data / "localrag.toml").write_text("[search]\nalpha = 0.3\n", encoding="utf-8")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConflictError):
        backup(data, tmp_path / "used")
    with pytest.raises(NotFoundError):
        backup(tmp_path / "no-such-dir", tmp_path / "copy")
    assert not (tmp_path / "no-such-dir").exists()
    (data / "reranker").mkdir()
    (data / "reranker" / "config.json").write_text("{}", encoding="utf-8")
    index = data / "pinecone" / "products"
    index.mkdir(parents=True)
    (index / "index.json").write_text('{"dimension": 2}', encoding="utf-8")
    records = sqlite3.connect(index / "records.sqlite3")
    records.execute("CREATE TABLE records (id TEXT PRIMARY KEY, dense BLOB)")
    records.execute("INSERT INTO records VALUES ('a', x'0000803f')")
    records.commit()
    records.close()
    report = backup(data, tmp_path / "copy")
    assert {"localrag.toml", "reranker/", "pinecone/"} <= set(report.parts)
    assert (tmp_path / "copy" / "reranker" / "config.json").is_file()
    copied = sqlite3.connect(tmp_path / "copy" / "pinecone" / "products" / "records.sqlite3")
    assert copied.execute("SELECT id, dense FROM records").fetchall() == [("a", b"\x00\x00\x80?")]
    copied.close()
    assert (tmp_path / "copy" / "pinecone" / "products" / "index.json").read_text(encoding="utf-8") == (
        '{"dimension": 2}')
    assert (tmp_path / "copy" / "localrag.toml").read_text(encoding="utf-8") == "[search]\nalpha = 0.3\n"
    assert _chunks(tmp_path / "copy") == _chunks(data)


def test_restore_replaces_only_with_force_and_only_a_data_directory(tmp_path: Path,
                                                                     fake_embedder: HashingEmbedder) -> None:
    data, saved = tmp_path / "data", tmp_path / "saved"
    _filled(data, fake_embedder).close()
    backup(data, saved)
    with LocalRAG(data, embedder=fake_embedder) as rag:
        rag.delete(doc_ids=["tides", "bees"])
        rag.add(Document("new", "written after the backup"))
    with pytest.raises(ConflictError, match="--force"):
        restore(saved, data)
    report = restore(saved, data, force=True)
    assert report.replaced and report.documents == 5
    assert _chunks(data) == _chunks(saved)
    with LocalRAG(data, embedder=fake_embedder) as rag:
        assert {h.doc_id for h in rag.search("spring tides moon", k=3)} >= {"tides"}
        with pytest.raises(NotFoundError):
            rag.get_document("new")
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("years of work", encoding="utf-8")
    with pytest.raises(ConflictError, match="not a localrag data directory"):
        restore(saved, stranger, force=True)
    assert (stranger / "thesis.tex").read_text(encoding="utf-8") == "years of work"
    fresh = restore(saved, tmp_path / "fresh")
    assert not fresh.replaced and _chunks(tmp_path / "fresh") == _chunks(saved)


def test_a_failed_restore_leaves_the_target_as_it_was(tmp_path: Path, fake_embedder: HashingEmbedder) -> None:
    data, broken = tmp_path / "data", tmp_path / "broken"
    _filled(data, fake_embedder).close()
    before = _chunks(data)
    broken.mkdir()
    (broken / "store.sqlite3").write_bytes(b"not an SQLite file at all" * 200)
    with pytest.raises(StoreError):
        restore(broken, data, force=True)
    assert _chunks(data) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "data"]  # no staging or .old folder


# -- export / import -----------------------------------------------------------------------------------
def test_export_import_round_trip_keeps_chunks_and_vectors(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    with _filled(tmp_path / "a", embedder) as rag:
        expected_docs, expected_results = _documents(rag), _results(rag)
    out = tmp_path / "export.jsonl"
    report = export_jsonl(tmp_path / "a", out)
    assert report.documents == 5 and report.namespaces == {"": 3, "archive": 2}
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
    calls = embedder.calls
    imported = import_jsonl(out, tmp_path / "b", embedder=embedder)
    assert embedder.calls == calls, "import re-embedded documents whose vectors it was given"
    assert (imported.added, imported.reembedded, imported.chunks) == (5, 0, report.chunks)
    assert _chunks(tmp_path / "b") == _chunks(tmp_path / "a")  # spans, pages, float32 vectors, byte for byte
    with LocalRAG(tmp_path / "b", embedder=embedder, read_only=True) as rag:
        assert _documents(rag) == expected_docs
        assert _results(rag) == expected_results
    again = import_jsonl(out, tmp_path / "b", embedder=embedder)
    assert (again.added, again.unchanged) == (0, 5)


def test_import_from_another_model_is_refused_or_reembedded(tmp_path: Path) -> None:
    _filled(tmp_path / "a", HashingEmbedder()).close()
    out = tmp_path / "export.jsonl"
    export_jsonl(tmp_path / "a", out, namespace="archive")
    other = HashingEmbedder(dim=32)
    with LocalRAG(tmp_path / "b", embedder=other) as rag:
        rag.add(Document("own", "a document of the target directory"))
    with pytest.raises(ConfigError, match="--reembed"):
        import_jsonl(out, tmp_path / "b", embedder=other)
    with LocalRAG(tmp_path / "b", embedder=other, read_only=True) as rag:
        assert rag.stats()["documents"] == 1  # nothing written
    report = import_jsonl(out, tmp_path / "b", embedder=other, reembed=True)
    assert (report.added, report.reembedded) == (2, 2) and other.calls > 1
    with LocalRAG(tmp_path / "b", embedder=other, read_only=True) as rag:
        assert rag.search("comet tail", k=1, namespace="archive")[0].doc_id == "comets"
    vectors = [row[-1] for row in _chunks(tmp_path / "b")]
    assert {len(v) for v in vectors} == {32 * 4}


def test_import_rejects_a_damaged_line_before_writing(tmp_path: Path) -> None:
    _filled(tmp_path / "a", HashingEmbedder()).close()
    out = tmp_path / "export.jsonl"
    export_jsonl(tmp_path / "a", out)
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join([*lines[:3], lines[3].replace('"char_end": ', '"char_end": 9999'), *lines[4:]]) + "\n",
                   encoding="utf-8")
    with pytest.raises(Exception, match="line 4"):
        import_jsonl(out, tmp_path / "b", embedder=HashingEmbedder())
    assert not (tmp_path / "b" / "store.sqlite3").exists()


# -- the previous release's store ---------------------------------------------------------------------
def test_a_store_of_the_previous_schema_is_migrated_and_searchable(tmp_path: Path, fake_embedder: HashingEmbedder,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALRAG_CACHE_DIR", str(tmp_path / "cache"))  # doctor looks for ONNX exports there
    data = tmp_path / "v1"
    data.mkdir()
    conn = sqlite3.connect(data / "store.sqlite3")
    conn.executescript((TESTS / "data" / "store_v1.sql").read_text(encoding="utf-8"))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    report = diagnose(data)  # read-only: reports the old schema, migrates nothing
    assert report["data"]["schema_version"] == 1 and report["data"]["documents"] == 4
    assert any("schema version 1 is migrated" in w for w in report["warnings"])
    with LocalRAG(data, embedder=fake_embedder) as rag:
        assert rag.search("bees dance flowers", k=1)[0].doc_id == "bees"
        hit = rag.search("comet tail", k=1, namespace="archive", mode="keyword")[0]
        assert hit.doc_id == "comets" and hit.text == rag.get_document("comets", "archive").text[
            hit.char_start:hit.char_end]
        rag.feedback("bees dance flowers", rag.search("bees", k=1)[0].chunk_id, True)  # migration 2's table
        assert len(rag.feedback_items()) == 1
    conn = sqlite3.connect(data / "store.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_the_fixture_generator_reproduces_the_fixture(tmp_path: Path) -> None:
    script = tmp_path / "make_store_v1.py"
    shutil.copy(TESTS / "data" / "make_store_v1.py", script)
    # run a copy beside a copy of fakes.py, so the generator writes into tmp_path, not the repository
    (tmp_path / "data").mkdir()
    shutil.move(script, tmp_path / "data" / script.name)
    shutil.copy(TESTS / "fakes.py", tmp_path / "fakes.py")
    subprocess.run([sys.executable, str(tmp_path / "data" / script.name)], check=True, capture_output=True)
    assert (tmp_path / "data" / "store_v1.sql").read_text(encoding="utf-8") == (
        TESTS / "data" / "store_v1.sql").read_text(encoding="utf-8")
