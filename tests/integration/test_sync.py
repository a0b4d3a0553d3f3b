"""Folder sync on a real store (SQLite, FAISS, BM25) with the fake embedder: what the folder holds is
what search finds, and nothing of a deleted file is ever returned once the sync returns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import localrag.ingest.sync as sync_module
from localrag.engine import LocalRAG
from localrag.events import Event

WORDS = ["river", "stone", "light", "paper", "garden", "engine", "signal", "harbor", "winter", "orbit", "copper",
         "lantern", "meadow"]


def body(token: str, n: int = 80) -> str:
    """A text whose token occurs in no other file, padded with shared words."""
    return f"{token} " + " ".join(WORDS[(i * 7) % len(WORDS)] for i in range(n)) + f" {token}\n"


def found(rag: LocalRAG, token: str) -> list[str]:
    return sorted({h.doc_id for h in rag.search(token, k=50, mode="keyword") if token in h.text})


def test_create_modify_rename_delete(fake_rag: LocalRAG, tmp_path: Path) -> None:
    root = tmp_path / "folder"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text(body("zqalpha"))
    (root / "sub" / "b.md").write_text("# Bee\n\n" + body("zqbravo"))
    report = fake_rag.sync(root)
    assert len(report.added) == 2 and not report.deleted
    a_id = found(fake_rag, "zqalpha")
    assert len(a_id) == 1 and len(found(fake_rag, "zqbravo")) == 1
    assert fake_rag.get_document(a_id[0]).metadata["root"] == os.path.realpath(root)

    (root / "a.txt").write_text(body("zqcharlie"))  # modified: the old text must be gone
    report = fake_rag.sync(root)
    assert report.updated == tuple(a_id) and report.unchanged == 1
    assert found(fake_rag, "zqalpha") == [] and found(fake_rag, "zqcharlie") == a_id

    (root / "sub" / "b.md").rename(root / "c.md")  # renamed, content unchanged: same document
    b_id = fake_rag.search("zqbravo", k=1, mode="keyword")[0].doc_id
    report = fake_rag.sync(root)
    assert report.renamed == ((str(root / "sub" / "b.md"), str(root / "c.md")),) and not report.deleted
    hit = fake_rag.search("zqbravo", k=1, mode="keyword")[0]
    assert hit.doc_id == b_id and hit.source.endswith("/c.md")

    (root / "a.txt").unlink()
    report = fake_rag.sync(root)
    assert report.deleted == tuple(a_id)
    assert found(fake_rag, "zqcharlie") == [] and fake_rag.stats()["namespaces"][""]["documents"] == 1
    assert fake_rag.sync(root).unchanged == 1  # and a later sync finds nothing to do


def test_unchanged_files_are_not_read(fake_rag: LocalRAG, tmp_path: Path, monkeypatch: Any) -> None:
    for i in range(30):
        (tmp_path / f"f{i}.txt").write_text(body(f"zqfile{i}x"))
    assert len(fake_rag.sync(tmp_path).added) == 30

    def no_reads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"sync read {args[0]} although its size and mtime had not changed")

    monkeypatch.setattr(sync_module, "open", no_reads, raising=False)
    monkeypatch.setattr(sync_module, "load_file", no_reads)
    report = fake_rag.sync(tmp_path)
    assert report.unchanged == 30 and not (report.added or report.updated or report.deleted or report.skipped)


def test_touched_but_equal_file_is_not_reindexed(fake_rag: LocalRAG, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(body("zqtouch"))
    fake_rag.sync(tmp_path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    generation = fake_rag.store.generation()
    report = fake_rag.sync(tmp_path)
    assert report.unchanged == 1 and fake_rag.store.generation() == generation


def test_default_excludes_ignore_file_and_overrides(fake_rag: LocalRAG, tmp_path: Path) -> None:
    for rel in ("node_modules/pkg/readme.txt", ".git/notes.txt", "build/out.txt", "__pycache__/x.txt",
                "app.min.js", "app.js.map", "package-lock.json", "drafts/wip.txt", "keep.txt", "long.js"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body(f"zq{path.stem.replace('.', '')}"))
    (tmp_path / "long.js").write_text("var a=1;" * 600)  # one 4800-character line: minified
    (tmp_path / ".localragignore").write_text("# scratch\ndrafts/\n!build/\n")
    report = fake_rag.sync(tmp_path)
    sources = sorted(Path(fake_rag.get_document(d).source).relative_to(os.path.realpath(tmp_path)).as_posix()
                     for d in report.added)
    assert sources == ["build/out.txt", "keep.txt"]
    assert next(s.reason for s in report.skipped if s.path.endswith("long.js")).startswith("minified")

    report = fake_rag.sync(tmp_path, include=["*.min.js"], default_excludes=True)
    assert [Path(fake_rag.get_document(d).source).name for d in report.added] == ["app.min.js"]
    # everything else fell outside the include list, so it was removed: the store mirrors the selection
    assert len(report.deleted) == 2


def test_near_duplicates_are_linked_and_promoted(fake_rag: LocalRAG, tmp_path: Path) -> None:
    words = " ".join(f"{WORDS[i % len(WORDS)]}{i % 17}" for i in range(300))
    rst = f"Heading\n=======\n\n.. note::\n\n   ``{words[:200]}`` see :ref:`x`.\n\n{words[200:]}\n"
    html = (f"<html><head><title>Heading</title></head><body><nav>Home | Index</nav><h1>Heading</h1>"
            f"<p><b>Note</b> <code>{words[:200]}</code> see x.</p><p>{words[200:]}</p></body></html>")
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "page.rst.txt").write_text(rst)
    (tmp_path / "page.html").write_text(html)
    (tmp_path / "other.txt").write_text(body("zqother", 300))
    report = fake_rag.sync(tmp_path)
    assert len(report.added) == 2 and len(report.duplicates) == 1
    dup_path, original = report.duplicates[0]
    assert original in report.added and dup_path != fake_rag.get_document(original).source

    Path(fake_rag.get_document(original).source).unlink()  # the indexed copy goes: the other one takes over
    report = fake_rag.sync(tmp_path)
    assert report.deleted == (original,) and len(report.added) == 1
    assert fake_rag.get_document(report.added[0]).source == dup_path


def test_skips_with_reasons_and_retries(fake_rag: LocalRAG, tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "ok.txt").write_text(body("zqok"))
    (tmp_path / "locked.txt").write_text(body("zqlocked"))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "linked").symlink_to(tmp_path, target_is_directory=True)
    real_open = open

    def locked(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sync_module, "open", locked, raising=False)
    report = fake_rag.sync(tmp_path)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons["loop"] == "symlink loop"
    assert reasons["linked"] == "symlinked folder not followed"
    assert reasons["locked.txt"].startswith("cannot read")
    assert [Path(p).name for p in report.retry] == ["locked.txt"]
    assert found(fake_rag, "zqlocked") == []

    monkeypatch.setattr(sync_module, "open", real_open, raising=False)  # readable again: the retry takes it
    report = fake_rag.sync(tmp_path)
    assert len(report.added) == 1 and len(found(fake_rag, "zqlocked")) == 1


def test_events_report_each_change(fake_rag: LocalRAG, tmp_path: Path) -> None:
    seen: list[Event] = []
    unsubscribe = fake_rag.events.subscribe(seen.append, kinds={"ingest", "update", "delete", "rename", "skip"})
    (tmp_path / "a.txt").write_text(body("zqa"))
    (tmp_path / "b.txt").write_text(body("zqb"))
    (tmp_path / "empty.txt").write_text("")
    fake_rag.sync(tmp_path)
    (tmp_path / "a.txt").write_text(body("zqa2"))
    (tmp_path / "b.txt").rename(tmp_path / "b2.txt")
    fake_rag.sync(tmp_path)
    (tmp_path / "a.txt").unlink()
    fake_rag.sync(tmp_path)
    unsubscribe()
    (tmp_path / "c.txt").write_text(body("zqc"))
    fake_rag.sync(tmp_path)
    kinds = [(e.kind, Path(e.path).name if e.path else e.doc_id.rsplit("/", 1)[-1]) for e in seen]
    assert kinds == [
        ("skip", "empty.txt"), ("ingest", "a.txt"), ("ingest", "b.txt"),
        ("rename", "b2.txt"), ("update", "a.txt"), ("update", "b2.txt"),
        ("delete", "a.txt"),
    ]
    assert seen[0].reason == "file is empty" and [e.seq for e in seen] == sorted(e.seq for e in seen)


def test_progress_moves_as_chunks_are_embedded(fake_rag: LocalRAG, tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text(" ".join(f"word{i}" for i in range(20000)))
    progress: list[dict[str, Any]] = []
    fake_rag.events.subscribe(lambda e: progress.append(dict(e.data)), kinds={"progress"})
    fake_rag.sync(tmp_path)
    before_commit = [p for p in progress if p["docs_done"] == 0 and p["chunks"] > 0]
    assert len(before_commit) >= 3  # one file, many embedding slices: the count moved before it committed
    etas = [p["eta_s"] for p in before_commit]
    assert all(e is not None and e >= 0 for e in etas) and progress[-1]["docs_done"] == 1
    assert progress[-1]["docs_total"] == 1


def test_sync_namespace_and_missing_root(fake_rag: LocalRAG, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(body("zqns"))
    fake_rag.sync(tmp_path, namespace="notes")
    assert fake_rag.search("zqns", k=1, mode="keyword") == []
    assert len(fake_rag.search("zqns", k=1, mode="keyword", namespace="notes")) == 1
    with pytest.raises(Exception, match="not a folder"):
        fake_rag.sync(tmp_path / "nope")


def test_rename_and_small_edit_reuse_stored_vectors(tmp_path: Path, fake_embedder: Any) -> None:
    texts: list[str] = []
    original = fake_embedder.embed_documents

    def counting(batch: list[str]) -> Any:
        texts.extend(batch)
        return original(batch)

    fake_embedder.embed_documents = counting
    folder = tmp_path / "folder"
    folder.mkdir()
    paragraphs = [body(f"zqpara{i}x", 150) for i in range(6)]
    (folder / "long.txt").write_text("\n".join(paragraphs))
    with LocalRAG(tmp_path / "data", embedder=fake_embedder) as rag:
        rag.sync(folder)
        first = len(texts)
        assert first >= 4  # several chunks
        (folder / "long.txt").rename(folder / "moved.txt")
        report = rag.sync(folder)
        assert len(report.renamed) == 1 and len(texts) == first  # nothing re-embedded for a move
        paragraphs[-1] = body("zqedited", 150)
        (folder / "moved.txt").write_text("\n".join(paragraphs))
        rag.sync(folder)
        assert 0 < len(texts) - first < first  # only the chunks around the edit
        assert found(rag, "zqedited") and not found(rag, "zqpara5x") and found(rag, "zqpara0x")
        hit = rag.search("zqpara0x", k=1, mode="dense")[0]  # a reused vector still finds its chunk
        assert "zqpara0x" in hit.text


def test_a_file_still_being_written_waits(fake_rag: LocalRAG, tmp_path: Path) -> None:
    import time

    from localrag.ingest.sync import Syncer, SyncOptions

    fresh, skewed = tmp_path / "fresh.txt", tmp_path / "skewed.txt"
    fresh.write_text(body("zqfresh"))
    skewed.write_text(body("zqskewed"))
    future = time.time_ns() + 86_400 * 10**9  # an mtime a day ahead (an archive from a skewed clock)
    os.utime(skewed, ns=(future, future))
    # a settle window of an hour: whatever was written within it counts as possibly still being written
    report = Syncer(fake_rag, SyncOptions(settle_s=3600.0)).reconcile([tmp_path])
    assert report.retry == (str(fresh),) and report.skipped[0].reason.startswith("still being written")
    assert found(fake_rag, "zqfresh") == [] and len(found(fake_rag, "zqskewed")) == 1
    report = fake_rag.sync(tmp_path)  # no settle window (sync's default): taken now
    assert len(report.added) == 1 and len(found(fake_rag, "zqfresh")) == 1
