"""SIGKILL real writers at controlled points; every acknowledged write must survive, indexes must agree.

Each run arms one failpoint (``LOCALRAG_FAILPOINTS=<point>=<n>``, see localrag/failpoints.py) at a
point and hit count drawn from a seeded rng, so every kill lands where the schedule says: before a
commit, after it but before the indexes see it, after they do, half way through an index file save,
inside an HTTP request. The child must die by SIGKILL, which proves the failpoint fired. Then:

- every acknowledged document is present at its acknowledged version and searchable, every
  acknowledged deletion stays deleted, and nothing nobody wrote is there;
- the write in flight at the kill took effect exactly when its point lies past COMMIT (and as a
  whole: a batch is one transaction);
- no half-written document is visible, and both indexes hold exactly the store's chunks.

Writers are real processes on a real SQLite file and real FAISS/BM25 files, with the fake embedder
(the write path is what is tested). The clock plays no part: children die at a point, not a time.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrag.engine import LocalRAG

TESTS = Path(__file__).resolve().parents[1]
# A write killed at one of these has left no trace; killed anywhere later, it is durable.
BEFORE_COMMIT = frozenset({
    "store.write.before_commit", "store.delete.before_commit", "server.upload.before_add",
    "pinecone.upsert.before_commit", "pinecone.delete.before_commit",
})
INGEST_POINTS = ("store.write.before_commit", "store.write.after_commit", "engine.after_apply",
                 "index.save.before_replace")
DELETE_POINTS = ("store.delete.before_commit", "store.delete.after_commit", "engine.after_apply",
                 "index.save.before_replace")
UPLOAD_POINTS = ("server.upload.before_add", "store.write.before_commit", "store.write.after_commit",
                 "engine.after_apply", "index.save.before_replace", "server.upload.after_add")
PINECONE_POINTS = ("pinecone.upsert.before_commit", "pinecone.upsert.after_commit",
                   "pinecone.delete.before_commit", "pinecone.delete.after_commit")
MAX_HITS = 8
PINECONE_INDEX = "crash"


class Ledger:
    """What the writers acknowledged: id → version (or value marker), None once deleted."""

    def __init__(self) -> None:
        self.items: dict[str, int | None] = {}

    def settle(self, lines: Iterable[str], point: str) -> None:
        """Apply the acknowledged operations of one run, then the one in flight at the kill if it landed.

        Lines: ``BEGIN ADD id=v ...`` / ``COMMITTED id=v ...`` and ``BEGIN DELETE id ...`` / ``DELETED id ...``.
        """
        pending: list[str] | None = None
        for line in lines:
            kind, *rest = line.split()
            if kind == "BEGIN":
                assert pending is None, f"two operations in flight: {pending} and {line}"
                pending = rest
            elif kind in ("COMMITTED", "DELETED"):
                assert pending is not None and pending[1:] == rest, f"acknowledged what did not begin: {line}"
                self._apply(pending)
                pending = None
        assert pending is not None, "the kill did not land inside an operation"
        if point not in BEFORE_COMMIT:
            self._apply(pending)

    def _apply(self, operation: list[str]) -> None:
        op, *items = operation
        for item in items:
            if op == "ADD":
                key, value = item.rsplit("=", 1)
                self.items[key] = int(value)
            else:
                self.items[item] = None

    def alive(self) -> dict[str, int]:
        return {k: v for k, v in self.items.items() if v is not None}


def child_env(point: str, hits: int, save: bool) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(TESTS.parent),
        "LOCALRAG_FAILPOINTS": f"{point}={hits}",
        # 0: save the index files after every write (2 files a write: the save point's hits);
        # otherwise never, so files stay stale and the next open catches up from the change log.
        "LOCALRAG_INDEX__SAVE_EVERY_SECONDS": "0" if save else "1000000000",
    }


def assert_killed(returncode: int | None, output: str, point: str, hits: int) -> None:
    assert returncode == -signal.SIGKILL, (
        f"failpoint {point}={hits} did not kill the child (exit {returncode}): {output[-3000:]}"
    )


def verify(data: Path, expected: Mapping[str, int | None]) -> int:
    """The store holds exactly ``expected`` (id → version; None: deleted), every document whole and
    searchable, and both indexes exactly the store's chunks. Returns the number of documents."""
    with LocalRAG(data, read_only=True) as rag:
        ns_id = rag.store.namespace_id("")
        alive = {k: v for k, v in expected.items() if v is not None}
        if ns_id is None:
            assert not alive, f"{len(alive)} acknowledged documents but no namespace"
            return 0
        store_keys = rag.store.chunk_keys(ns_id)
        space = rag.indexes.get(ns_id)
        assert space is not None
        assert np.array_equal(space.dense.keys(), store_keys), "vector index disagrees with the store"
        assert np.array_equal(space.keyword.keys(), store_keys), "keyword index disagrees with the store"
        listed = {d["doc_id"]: d for d in rag.documents(limit=100_000)}
        for doc_id, version in expected.items():
            if version is None:
                assert doc_id not in listed, f"deleted document {doc_id} is back"
            else:
                assert doc_id in listed, f"committed document {doc_id} was lost"
                assert listed[doc_id]["metadata"]["version"] == version, f"{doc_id} is not at version {version}"
        assert set(listed) == set(alive), f"documents nobody acknowledged: {sorted(set(listed) - set(alive))[:5]}"
        conn = rag.store._conn()
        for doc_id, row in listed.items():
            document = rag.get_document(doc_id)
            spans = conn.execute(
                "SELECT c.char_start, c.char_end, c.text FROM chunks c JOIN documents d ON d.id = c.document_id"
                " WHERE d.namespace_id = ? AND d.doc_id = ? ORDER BY c.ordinal",
                (ns_id, doc_id),
            ).fetchall()
            assert spans and len(spans) == row["chunks"], f"{doc_id} has no chunks (half-written)"
            assert spans[0][0] == 0 and spans[-1][1] == len(document.text.rstrip()), f"{doc_id} is incomplete"
            for (start, end, text), (next_start, _, _) in zip(spans, [*spans[1:], (spans[-1][1], 0, "")], strict=True):
                assert text == document.text[start:end], f"{doc_id}: chunk text is not its span"
                assert next_start <= end + 1, f"{doc_id}: a gap between chunks"
            token = document.text.split()[0]
            hits = rag.search(token, k=3, mode="keyword")
            assert hits and hits[0].doc_id == doc_id, f"{doc_id} is not searchable by {token}"
        return len(listed)


# -- writers ------------------------------------------------------------------------------------
def kill_writer(data: Path, run: int, mode: str, point: str, hits: int, save: bool, ledger: Ledger) -> None:
    """crash_child.py adding (and in ``delete`` mode deleting) until the failpoint kills it."""
    # Each operation reaches a write point once and the save point twice; deletes come every other one.
    max_ops = 2 * hits + 2
    child = subprocess.run(
        [sys.executable, str(TESTS / "crash_child.py"), str(data), str(run), mode, str(max_ops)],
        capture_output=True, text=True, env=child_env(point, hits, save), timeout=600,
    )
    assert_killed(child.returncode, child.stdout + child.stderr, point, hits)
    ledger.settle(child.stdout.splitlines(), point)


class Server:
    """crash_server_child.py: the served app in a child process, on the port it reports."""

    def __init__(self, data: Path, point: str, hits: int, save: bool, log: Path) -> None:
        self.log = log
        with log.open("wb") as err:  # a file, not a pipe: a full pipe would stall the server
            self.process = subprocess.Popen(
                [sys.executable, str(TESTS / "crash_server_child.py"), str(data)],
                stdout=subprocess.PIPE, stderr=err, text=True, env=child_env(point, hits, save),
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.wait(timeout=120)
            raise AssertionError(f"the server child did not start: {log.read_text(errors='replace')[-3000:]}")
        import httpx

        self.client = httpx.Client(base_url=f"http://127.0.0.1:{line.split()[1]}", timeout=120)

    def post(self, path: str, body: dict[str, Any]) -> bool:
        """True when the server acknowledged (2xx); False when it died answering."""
        import httpx

        try:
            response = self.client.post(path, json=body)
        except httpx.TransportError:
            return False
        assert response.is_success, f"{path}: {response.status_code} {response.text[:500]}"
        return True

    def died(self, point: str, hits: int) -> None:
        self.client.close()
        self.process.wait(timeout=120)
        assert_killed(self.process.returncode, self.log.read_text(errors="replace"), point, hits)

    def close(self) -> None:
        self.client.close()
        if self.process.poll() is None:  # a failed test: do not leave the server behind
            self.process.kill()
            self.process.wait(timeout=120)
        assert self.process.stdout is not None
        self.process.stdout.close()


def kill_uploads(data: Path, run: int, point: str, hits: int, save: bool, rng: random.Random,
                 ledger: Ledger, log: Path) -> None:
    """POST /v1/documents one document at a time until the server dies answering one."""
    from crash_child import make_doc

    server = Server(data, point, hits, save, log)
    lines: list[str] = []
    uploaded: list[int] = []
    try:
        for n in range(2 * hits + 2):  # each upload reaches every upload point once, the save point twice
            if uploaded and rng.random() < 0.3:  # a new version of an earlier upload
                doc = make_doc(f"u{run}", rng.choice(uploaded), rng, version=n)
            else:
                doc = make_doc(f"u{run}", n, rng)
                uploaded.append(n)
            item = f"{doc.doc_id}={doc.metadata['version']}"
            lines.append(f"BEGIN ADD {item}")
            body = {"doc_id": doc.doc_id, "text": doc.text, "title": doc.title, "metadata": dict(doc.metadata)}
            if not server.post("/v1/documents", body):
                break
            lines.append(f"COMMITTED {item}")
        server.died(point, hits)
    finally:
        server.close()
    ledger.settle(lines, point)


def pinecone_values(code: int) -> list[float]:
    # Seeded random directions: a query by a record's own vector finds that record first.
    rng = random.Random(code)
    return [round(rng.uniform(-1.0, 1.0), 3) for _ in range(8)]


def kill_pinecone(data: Path, run: int, point: str, hits: int, rng: random.Random, ledger: Ledger,
                  log: Path) -> None:
    """Pinecone upserts and deletes over HTTP, alternating, until the server dies answering one."""
    server = Server(data, point, hits, False, log)
    lines: list[str] = []
    try:
        if not server.client.get(f"/indexes/{PINECONE_INDEX}").is_success:
            created = server.client.post("/indexes", json={
                "name": PINECONE_INDEX, "dimension": 8, "metric": "cosine",
                "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}})
            assert created.status_code == 201, created.text
        alive = sorted(ledger.alive())
        data_path = f"/data/{PINECONE_INDEX}/vectors"
        for op in range(2 * hits + 2):  # upserts and deletes alternate: each point is hit every other request
            if op % 2 and alive:
                doomed = rng.sample(alive, min(len(alive), rng.randint(1, 5)))
                lines.append("BEGIN DELETE " + " ".join(doomed))
                if not server.post(f"{data_path}/delete", {"ids": doomed, "namespace": ""}):
                    break
                lines.append("DELETED " + " ".join(doomed))
                alive = [i for i in alive if i not in doomed]
                continue
            ids = [f"p{run}-{op}-{i}" for i in range(rng.randint(1, 20))]
            if alive and rng.random() < 0.5:  # new values for a stored record in the same request
                ids.append(rng.choice(alive))
            codes = [(run * 100 + op) * 100 + i for i in range(len(ids))]  # unique per value written
            pairs = list(zip(ids, codes, strict=True))
            vectors = [{"id": record_id, "values": pinecone_values(code)} for record_id, code in pairs]
            items = " ".join(f"{record_id}={code}" for record_id, code in pairs)
            lines.append(f"BEGIN ADD {items}")
            if not server.post(f"{data_path}/upsert", {"vectors": vectors, "namespace": ""}):
                break
            lines.append(f"COMMITTED {items}")
            alive = sorted({*alive, *ids})
        server.died(point, hits)
    finally:
        server.close()
    ledger.settle(lines, point)


def verify_pinecone(root: Path, expected: Mapping[str, int | None]) -> int:
    """The index's records are exactly the acknowledged ones with their values, in SQLite and in memory."""
    from localrag.pinecone import wire
    from localrag.pinecone.control import LocalPinecone

    backend = LocalPinecone(root)
    try:
        index = backend.index(PINECONE_INDEX)
        alive = {k: v for k, v in expected.items() if v is not None}
        stored = set(index.store.list_ids("", "", None, 1_000_000))
        assert not set(alive) - stored, f"acknowledged records lost: {sorted(set(alive) - stored)[:5]}"
        assert stored == set(alive), f"records nobody acknowledged: {sorted(stored - set(alive))[:5]}"
        got = index.fetch(sorted(alive), "").vectors
        assert set(got) == set(alive), "the in-memory index disagrees with its SQLite file"
        for record_id, code in alive.items():
            assert np.allclose(got[record_id].values, pinecone_values(code), atol=1e-6), f"{record_id}: stale values"
        for record_id in sorted(alive)[:: max(1, len(alive) // 8)]:
            matches = index.query(wire.query_request({"id": record_id, "topK": 1, "namespace": ""})).matches
            assert matches and matches[0].id == record_id, f"{record_id} is not found by its own vector"
        return len(stored)
    finally:
        backend.close()


# -- tests --------------------------------------------------------------------------------------
def test_sigkill_mid_ingest_loses_no_committed_document(tmp_path: Path) -> None:
    """One kill at each ingest and delete point, at a hit count drawn from a seeded rng."""
    data = tmp_path / "data"
    rng = random.Random(2026)
    ledger = Ledger()
    schedule = [("ingest", p) for p in INGEST_POINTS] + [("delete", p) for p in DELETE_POINTS]
    for run, (mode, point) in enumerate(schedule):
        hits = rng.randint(1, MAX_HITS)
        save = point == "index.save.before_replace" or rng.random() < 0.5
        kill_writer(data, run, mode, point, hits, save, ledger)
        assert verify(data, ledger.items) == len(ledger.alive())
    assert any(v is None for v in ledger.items.values()), "no deletion was acknowledged to test"


@pytest.mark.slow
@pytest.mark.server
def test_crash_loop_across_ingest_delete_upload_and_pinecone(tmp_path: Path) -> None:
    """Issue 12: 48 kills at controlled points across ingest, delete, HTTP upload and Pinecone upsert/delete,
    all on one data directory; not one acknowledged item may be lost."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("httpx")
    data = tmp_path / "data"
    rng = random.Random(12)
    documents, records = Ledger(), Ledger()
    combos = ([("ingest", p) for p in INGEST_POINTS] + [("delete", p) for p in DELETE_POINTS]
              + [("upload", p) for p in UPLOAD_POINTS] + [("pinecone", p) for p in PINECONE_POINTS])
    schedule: list[tuple[str, str]] = []
    while len(schedule) < 48:  # every combination once per round, in a seeded order
        round_ = list(combos)
        rng.shuffle(round_)
        schedule += round_
    schedule = schedule[:48]
    landed = {"before": 0, "after": 0}
    for run, (scenario, point) in enumerate(schedule):
        hits = rng.randint(1, MAX_HITS)
        save = point == "index.save.before_replace" or rng.random() < 0.5
        log = tmp_path / f"server-{run}.log"
        if scenario in ("ingest", "delete"):
            kill_writer(data, run, scenario, point, hits, save, documents)
        elif scenario == "upload":
            kill_uploads(data, run, point, hits, save, rng, documents, log)
        else:
            kill_pinecone(data, run, point, hits, rng, records, log)
        landed["before" if point in BEFORE_COMMIT else "after"] += 1
        if scenario == "pinecone":
            assert verify_pinecone(data / "pinecone", records.items) == len(records.alive())
        else:
            assert verify(data, documents.items) == len(documents.alive())
    assert len(documents.alive()) > 50 and len(records.alive()) > 20, "too little was written to test anything"
    assert any(v is None for v in documents.items.values()) and any(v is None for v in records.items.values())
    assert min(landed.values()) >= 10, landed
