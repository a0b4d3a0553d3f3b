"""Stateless replicas as separate OS processes: the hosted stand-in (localrag's Pinecone server,
tests/pinecone/server_child.py) and two ``python -m localrag.cli serve`` processes, each with its own
data directory holding only a ``localrag.toml`` that points at one hosted document index
(``vector.backend = "pinecone_documents"``) and the real default embedder. Writes through one
replica's HTTP API are searched, answered, listed and deleted through the other, and a delete through
the second is seen by the first: no state is shared but the hosted index (no thread, no memory, no file)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from polling import wait_for
from serving import free_port, sdk_client

from localrag.config import Settings, load_settings
from localrag.models import get_spec
from localrag.pinecone.hosted_docs import schema
from localrag.store.sqlite import SQLiteStore

pytestmark = [pytest.mark.server, pytest.mark.model]

REPO = Path(__file__).resolve().parents[2]
# Failure bounds only, never what makes the test pass: a loaded 2-core machine can take minutes to start
# a Python process that loads the embedding model, and a request can wait behind the other processes.
START_S = 600.0
REQUEST_S = 300.0
READY = re.compile(r"ready: accepting connections on (http://127\.0\.0\.1:\d+)")
DOCS = [
    {"doc_id": "bees", "title": "Honeybees", "metadata": {"topic": "insects"},
     "text": "Honeybees tell each other where flowers are with the waggle dance."},
    {"doc_id": "tides", "title": "Tides", "metadata": {"topic": "sea"},
     "text": "Tides rise and fall twice a day because the moon pulls on the oceans."},
    {"doc_id": "lava", "title": "Volcanoes", "metadata": {"topic": "geology"},
     "text": "Volcanoes erupt when molten rock from the mantle rises through cracks in the crust."},
]
BEES_QUESTION = {"question": "How do honeybees tell each other where flowers are?", "k": 1}


def _child_env(**extra: str) -> dict[str, str]:
    """This process's environment (with conftest's offline switches), minus inherited localrag settings,
    so each process reads its settings from its own data directory and nothing else."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("LOCALRAG_") and ("__" in k or k in ("LOCALRAG_API_KEYS", "LOCALRAG_FAILPOINTS")))}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def _launch(command: list[str], env: dict[str, str], log: Path, stack: ExitStack) -> subprocess.Popen[bytes]:
    # Output to a file, not a pipe: nobody reads a pipe while the test runs, and a full one stalls the child.
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=log.parent)
    stack.callback(_stop, process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=60)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _alive(process: subprocess.Popen[bytes], log: Path, then: Callable[[], bool]) -> Callable[[], bool]:
    """``then``, unless the process has exited: that fails at once, with what it logged."""
    def check() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{log.stem} exited with {process.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}")
        return then()
    return check


def _start_stand_in(tmp_path: Path, stack: ExitStack) -> str:
    """The hosted service: localrag's Pinecone server in its own process, under the network guard."""
    port = free_port()
    log = tmp_path / "stand-in.log"
    process = _launch([sys.executable, str(Path(__file__).parent / "server_child.py"), str(tmp_path / "hosted"),
                       str(port)], _child_env(), log, stack)
    url = f"http://127.0.0.1:{port}"
    wait_for(_alive(process, log, lambda: _answers(f"{url}/indexes")), "the hosted stand-in", START_S)
    return url


def _launch_replica(name: str, tmp_path: Path, host: str, stack: ExitStack) -> tuple[subprocess.Popen[bytes], Path]:
    """``localrag serve --port 0`` (the CLI prints the port it got: no free-port race) on an empty data
    directory whose only file is the settings naming the shared index."""
    data = tmp_path / name
    data.mkdir()
    (data / "localrag.toml").write_text(
        '[vector]\nbackend = "pinecone_documents"\n'
        f'host = "{host}"\nnamespace_prefix = "replicas-"\n'
        '[generate]\nproviders = "extractive"\n'  # answers cite without loading a language model
        '[server]\nmetrics_flush_s = 0\n')
    env = _child_env(PINECONE_API_KEY="test-key", LOCALRAG_EMBED__THREADS="1")
    log = tmp_path / f"replica-{name}.log"
    command = [sys.executable, "-m", "localrag.cli", "--data", str(data), "serve", "--port", "0"]
    return _launch(command, env, log, stack), log


def _ready_url(process: subprocess.Popen[bytes], log: Path) -> str:
    """The URL ``serve`` announced, once ``/healthz`` answers on it."""
    def announced() -> str | None:
        found = READY.search(log.read_text(errors="replace"))
        return found.group(1) if found else None

    wait_for(_alive(process, log, lambda: announced() is not None), f"{log.stem} to listen", START_S)
    url = announced()
    assert url is not None
    wait_for(_alive(process, log, lambda: _answers(f"{url}/healthz")), f"{log.stem}'s /healthz", START_S)
    return url


def _ids(hits: list[dict[str, Any]]) -> list[str]:
    return [h["doc_id"] for h in hits]


def test_two_serve_processes_share_one_hosted_index(tmp_path: Path) -> None:
    with ExitStack() as stack:
        hosted = _start_stand_in(tmp_path, stack)
        pc = sdk_client(hosted)
        bm25 = load_settings(None).bm25
        pc.indexes.create(name="corpus", schema=schema(get_spec(Settings().embed.model).dim, bm25.stem,
                                                       bm25.stopwords))
        host = pc.indexes.describe("corpus").host
        launched = [_launch_replica(name, tmp_path, host, stack) for name in ("a", "b")]  # both load at once
        url_a, url_b = (_ready_url(process, log) for process, log in launched)
        a = stack.enter_context(httpx.Client(base_url=url_a, timeout=REQUEST_S))
        b = stack.enter_context(httpx.Client(base_url=url_b, timeout=REQUEST_S))

        for doc in DOCS:
            added = a.post("/v1/documents", json=doc)
            assert added.status_code == 201 and added.json()["added"] == [doc["doc_id"]], added.text

        # B has never been written to: everything it finds comes from the hosted index
        assert _ids(b.post("/v1/search", json={"query": "waggle dance flowers", "k": 3}).json()["hits"])[0] == "bees"
        keyword = b.post("/v1/search", json={"query": "moon oceans", "k": 3, "mode": "keyword"}).json()["hits"]
        assert _ids(keyword) == ["tides"]  # BM25 on the hosted index: only that text has the terms
        dense = b.post("/v1/search", json={"query": "Why does the sea level go up and down every day?",
                                           "k": 3, "mode": "dense"}).json()["hits"]
        assert _ids(dense)[0] == "tides" and dense[0]["scores"]["dense"] > 0
        answer = b.post("/v1/ask", json=BEES_QUESTION).json()
        assert not answer["abstained"] and answer["citations"][0]["doc_id"] == "bees", answer
        listed = b.get("/v1/documents").json()
        assert sorted(d["doc_id"] for d in listed["documents"]) == ["bees", "lava", "tides"] and listed["total"] == 3
        # A asks too before the delete: any answer or result A kept must not outlive it
        assert a.post("/v1/ask", json=BEES_QUESTION).json()["citations"][0]["doc_id"] == "bees"

        assert b.delete("/v1/documents/bees").json() == {"deleted": 1}
        gone = a.delete("/v1/documents/bees")
        assert gone.status_code == 404, gone.text  # deleted for every replica, not only B
        after = a.post("/v1/search", json={"query": "waggle dance flowers", "k": 3}).json()["hits"]
        assert "bees" not in _ids(after) and after  # the other documents are still found
        assert all(c["doc_id"] != "bees" for c in a.post("/v1/ask", json=BEES_QUESTION).json()["citations"])
        assert sorted(d["doc_id"] for d in a.get("/v1/documents").json()["documents"]) == ["lava", "tides"]
        assert a.get("/healthz").status_code == 200 and b.get("/healthz").status_code == 200
    for name in ("a", "b"):  # the processes have stopped: neither kept a copy in its own store
        store = SQLiteStore(tmp_path / name)
        try:
            assert store.stats()["documents"] == 0
        finally:
            store.close()
