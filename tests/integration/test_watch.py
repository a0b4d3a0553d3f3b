"""The folder watcher, live and after a SIGKILL, on a real store with the fake embedder.

Nothing waits on the clock: each step polls a condition (what search returns, what the store
holds) for up to a minute, so a slow, loaded machine only makes the test slower.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import HashingEmbedder
from polling import TIMEOUT_S, wait_for

import localrag.ingest.sync as sync_module
from localrag.engine import LocalRAG
from localrag.events import Event
from localrag.ingest.sync import SyncOptions
from localrag.ingest.watch import Watcher

TESTS = Path(__file__).resolve().parents[1]


def body(token: str) -> str:
    return f"{token} " + " ".join(["meadow", "copper", "lantern", "harbor"] * 20) + f" {token}\n"




def docs_with(rag: LocalRAG, token: str) -> list[str]:
    return sorted({h.doc_id for h in rag.search(token, k=20, mode="keyword") if token in h.text})


@pytest.fixture
def watching(fake_rag: LocalRAG, tmp_path: Path) -> Iterator[tuple[LocalRAG, Path, list[Event]]]:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "before.txt").write_text(body("zqbefore"))  # there before the watch: the restart reconcile takes it
    events: list[Event] = []
    fake_rag.events.subscribe(events.append)
    watcher = Watcher(fake_rag, [folder], debounce_ms=200)
    ready = threading.Event()
    thread = threading.Thread(target=watcher.run, kwargs={"on_ready": lambda _: ready.set()}, daemon=True)
    thread.start()
    assert ready.wait(TIMEOUT_S), "the watcher's first reconcile did not finish"
    yield fake_rag, folder, events
    watcher.stop()
    thread.join(TIMEOUT_S)
    assert not thread.is_alive(), "the watcher did not stop"


def test_watch_follows_create_modify_rename_delete(watching: tuple[LocalRAG, Path, list[Event]]) -> None:
    rag, folder, events = watching
    wait_for(lambda: len(docs_with(rag, "zqbefore")) == 1, "the file there before the watch started")

    (folder / "notes").mkdir()
    (folder / "notes" / "a.md").write_text(body("zqcreated"))
    wait_for(lambda: len(docs_with(rag, "zqcreated")) == 1, "a new file to become searchable")
    doc_id = docs_with(rag, "zqcreated")[0]

    (folder / "notes" / "a.md").write_text(body("zqmodified"))
    wait_for(lambda: docs_with(rag, "zqmodified") == [doc_id], "the modified text to replace the old")
    assert docs_with(rag, "zqcreated") == []  # replaced in one transaction: never both, never neither

    os.rename(folder / "notes" / "a.md", folder / "b.md")
    wait_for(lambda: rag.search("zqmodified", k=1, mode="keyword")[0].source.endswith("/b.md"), "the rename")
    assert docs_with(rag, "zqmodified") == [doc_id]  # the document kept its identity

    (folder / "b.md").unlink()
    (folder / "before.txt").unlink()
    wait_for(lambda: not docs_with(rag, "zqmodified") and not docs_with(rag, "zqbefore"), "the deletions")
    (folder / "later.txt").write_text(body("zqlater"))  # and deleted text stays gone through later changes
    wait_for(lambda: len(docs_with(rag, "zqlater")) == 1, "a later file")
    assert docs_with(rag, "zqmodified") == [] and docs_with(rag, "zqbefore") == []
    assert rag.stats()["namespaces"][""]["documents"] == 1
    assert {"ingest", "update", "rename", "delete"} <= {e.kind for e in events}


def test_watch_follows_a_moved_folder(watching: tuple[LocalRAG, Path, list[Event]], tmp_path: Path) -> None:
    rag, folder, _ = watching
    (folder / "team").mkdir()
    for i in range(3):
        (folder / "team" / f"m{i}.txt").write_text(body(f"zqmember{i}x"))
    wait_for(lambda: all(docs_with(rag, f"zqmember{i}x") for i in range(3)), "a new folder's files")
    ids = [docs_with(rag, f"zqmember{i}x") for i in range(3)]
    os.rename(folder / "team", folder / "crew")  # moved within the watch: every document keeps its id
    wait_for(lambda: all(rag.search(f"zqmember{i}x", k=1, mode="keyword")[0].source.endswith(f"/crew/m{i}.txt")
                         for i in range(3)), "the moved folder's files to follow it")
    assert [docs_with(rag, f"zqmember{i}x") for i in range(3)] == ids
    os.rename(folder / "crew", tmp_path / "outside")  # moved out of the watch: gone from search
    wait_for(lambda: not any(docs_with(rag, f"zqmember{i}x") for i in range(3)), "the folder moved away")


def test_watch_retries_an_unreadable_file(watching: tuple[LocalRAG, Path, list[Event]], monkeypatch: Any) -> None:
    rag, folder, events = watching
    real_open = open
    locked = threading.Event()
    locked.set()

    def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
        if locked.is_set() and str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(sync_module, "open", guarded, raising=False)
    (folder / "locked.txt").write_text(body("zqlocked"))
    wait_for(lambda: any(e.kind == "skip" and e.path.endswith("locked.txt") and e.reason.startswith("cannot read")
                         for e in list(events)), "the unreadable file to be skipped with its reason")
    assert docs_with(rag, "zqlocked") == []
    locked.clear()  # readable again, with no new file event: only the retry can pick it up
    wait_for(lambda: len(docs_with(rag, "zqlocked")) == 1, "the retry to index the file")


def _start(data: Path, folder: Path, failpoints: str = "", batch: int = 2) -> subprocess.Popen[str]:
    env = {**os.environ, "LOCALRAG_FAILPOINTS": failpoints}
    return subprocess.Popen(
        [sys.executable, str(TESTS / "watch_child.py"), str(data), str(folder), str(batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _await_ready(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    for line in child.stdout:  # blocks until the child prints (or dies: then the loop ends)
        if line.startswith("READY"):
            return
    err = child.stderr.read() if child.stderr else ""
    raise AssertionError(f"watcher exited {child.wait()} before it was ready: {err}")


def _store_matches(data: Path, folder: Path, tokens: dict[str, str]) -> bool:
    """Every file's token found in its document, no document without a file, nothing deleted visible."""
    with LocalRAG(data, embedder=HashingEmbedder(), read_only=True) as reader:
        present = {str(p.resolve()) for p in folder.rglob("*.txt")}
        sources = {str(d["source"]) for d in reader.documents(limit=1000)}
        if sources != present:
            return False
        for name, token in tokens.items():
            hits = docs_with(reader, token)
            if ((folder / name).exists() and (folder / name).read_text().startswith(token)) != bool(hits):
                return False
        return True


def test_sigkill_mid_batch_then_restart_matches_folder(tmp_path: Path) -> None:
    data, folder = tmp_path / "data", tmp_path / "folder"
    folder.mkdir()
    tokens = {f"f{i}.txt": f"zqfile{i}x" for i in range(8)}
    for name, token in tokens.items():
        (folder / name).write_text(body(token))

    # batches of 2 files: the second batch's documents commit, then the kill, before its file states
    child = _start(data, folder, "sync.mid_batch=2")
    assert child.wait(timeout=TIMEOUT_S * 2) == -signal.SIGKILL, child.stderr.read() if child.stderr else ""

    # while nothing watches: delete a file of each committed batch, rename one never reached, modify one
    (folder / "f0.txt").unlink()
    (folder / "f2.txt").unlink()  # committed, but its state was never written: an orphan to sweep
    os.rename(folder / "f6.txt", folder / "f6b.txt")
    tokens["f6b.txt"] = tokens.pop("f6.txt")
    (folder / "f1.txt").write_text(body("zqfile1changed"))
    tokens["f1.txt"] = "zqfile1changed"

    child = _start(data, folder)
    try:
        _await_ready(child)  # (a file written moments before may wait for its retry: it could still be changing)
        wait_for(lambda: _store_matches(data, folder, tokens), "the restart reconcile to repair the store")
        (folder / "new.txt").write_text(body("zqnewfile"))
        tokens["new.txt"] = "zqnewfile"
        (folder / "f3.txt").unlink()
        wait_for(lambda: _store_matches(data, folder, tokens), "the live changes after the restart")
        assert all(docs_with_reader(data, t) == [] for t in ("zqfile0x", "zqfile1x", "zqfile2x", "zqfile3x"))
    finally:
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=TIMEOUT_S)
    assert child.returncode == 0 and "STOPPED" in out, err


def docs_with_reader(data: Path, token: str) -> list[str]:
    with LocalRAG(data, embedder=HashingEmbedder(), read_only=True) as reader:
        return docs_with(reader, token)


def test_watch_options_reach_the_syncer(fake_rag: LocalRAG, tmp_path: Path) -> None:
    watcher = Watcher(fake_rag, [tmp_path], SyncOptions(namespace="n", exclude=("*.log",)), settle_s=0.7)
    assert watcher.syncer.options.namespace == "n" and watcher.syncer.options.settle_s == 0.7
    assert watcher.syncer.options.exclude == ("*.log",)
