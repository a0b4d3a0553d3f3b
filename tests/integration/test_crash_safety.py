"""SIGKILL a real ingest at random points; the store must keep every commit and indexes must agree."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from localrag.engine import LocalRAG

TESTS = Path(__file__).resolve().parents[1]
KILLS = 24


def committed_versions(output: str) -> dict[str, int]:
    versions: dict[str, int] = {}
    for line in output.splitlines():
        if line.startswith("COMMITTED "):
            for item in line.split()[1:]:
                doc_id, version = item.rsplit("=", 1)
                versions[doc_id] = int(version)
    return versions


def verify(data: Path, must_have: dict[str, int]) -> int:
    with LocalRAG(data, read_only=True) as rag:
        ns_id = rag.store.namespace_id("")
        if ns_id is None:
            assert not must_have
            return 0
        store_keys = rag.store.chunk_keys(ns_id)
        space = rag.indexes.get(ns_id)
        assert space is not None
        assert np.array_equal(space.dense.keys(), store_keys), "vector index disagrees with the store"
        assert np.array_equal(space.keyword.keys(), store_keys), "keyword index disagrees with the store"
        listed = {d["doc_id"]: d for d in rag.documents(limit=100_000)}
        for doc_id, version in must_have.items():
            assert doc_id in listed, f"committed document {doc_id} was lost"
            assert listed[doc_id]["metadata"]["version"] >= version
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


@pytest.mark.slow
@pytest.mark.model
def test_sigkill_mid_ingest_loses_no_committed_document(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = random.Random(2026)
    must_have: dict[str, int] = {}
    kills_with_commits = 0
    for run in range(KILLS):
        env = {
            **os.environ,
            "PYTHONPATH": str(TESTS.parent),
            "LOCALRAG_EMBED__THREADS": "1",
            "LOCALRAG_INDEX__SAVE_EVERY_SECONDS": "0" if run % 2 else "30",
        }
        child = subprocess.Popen(
            [sys.executable, str(TESTS / "crash_child.py"), str(data), str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        time.sleep(rng.uniform(0.5, 4.0))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, err[-2000:]
        committed = committed_versions(out)
        kills_with_commits += bool(committed)
        must_have.update(committed)
        documents = verify(data, must_have)
        assert documents >= len(must_have)
    assert kills_with_commits >= KILLS // 2, "too few kills landed after a commit to test anything"
