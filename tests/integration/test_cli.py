"""The CLI as a user runs it: a real process, real files, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localrag.samples import SAMPLE_DIR
from localrag.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.model


def run(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LOCALRAG_EMBED__THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "localrag.cli", "--data", str(data), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_ingest_search_stats_delete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingest = run("ingest", str(SAMPLE_DIR), "--exclude", "LICENSE.txt", "--json", data=data)
    assert ingest.returncode == 0, ingest.stderr
    summary = json.loads(ingest.stdout)
    assert summary["added"] == 5 and summary["skipped"] == []
    search = run("search", "What causes spring tides?", "--k", "2", "--json", data=data)
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert hits[0]["source"].endswith("tides.md") and hits[0]["char_end"] > hits[0]["char_start"]
    stats = json.loads(run("stats", "--json", data=data).stdout)
    assert stats["documents"] == 5 and stats["namespaces"][""]["vector_index"] == "flat"
    deleted = run("delete", "--doc-id", hits[0]["doc_id"], data=data)
    assert deleted.returncode == 0 and "deleted 1" in deleted.stdout
    after = json.loads(run("search", "What causes spring tides?", "--json", data=data).stdout)
    assert all(h["doc_id"] != hits[0]["doc_id"] for h in after)
    reindex = run("reindex", data=data)
    assert reindex.returncode == 0 and "rebuilt indexes" in reindex.stdout, reindex.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", "x", "--filter", '{"year": {"$gtx": 1}}'), "unknown operator"),
        (("search", "x", "--k", "0"), "k must be"),
        (("delete",), "give --doc-id"),
        (("eval", "--dataset", "/nonexistent"), "is not a BEIR dataset"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line_reason(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    SQLiteStore(tmp_path / "data").close()  # an empty data directory: read commands refuse a missing one
    result = run(*args, data=tmp_path / "data")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr


def test_bad_json_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = run("search", "x", "--filter", "{not json", data=tmp_path / "data")
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_models_lists_packages(tmp_path: Path) -> None:
    result = run("models", "--json", data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["minilm-l6-onnx-int8"]["installed"] is True
    assert rows["minilm-l6-onnx-int8"]["dim"] == 384
    assert all(r["package"] for r in rows.values())


def test_each_skipped_file_is_reported_once(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text("Tides follow the moon.", encoding="utf-8")
    (corpus / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (corpus / "empty.txt").write_text("", encoding="utf-8")
    result = run("ingest", str(corpus), data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    both = result.stdout + result.stderr
    assert both.count("blob.bin") == 1 and both.count("empty.txt") == 1, both
    assert "added 1," in result.stdout


def _hits(result: subprocess.CompletedProcess[str]) -> list[tuple[str, int, int, float]]:
    assert result.returncode == 0, result.stderr
    return [(h["doc_id"], h["char_start"], h["char_end"], round(h["score"], 5)) for h in json.loads(result.stdout)]


def test_backup_restore_export_import(tmp_path: Path) -> None:
    data, copy, moved = tmp_path / "data", tmp_path / "copy", tmp_path / "moved"
    assert run("ingest", str(SAMPLE_DIR), "--exclude", "LICENSE.txt", data=data).returncode == 0
    query = ("search", "How do honeybees find flowers?", "--k", "3", "--json")
    expected = _hits(run(*query, data=data))
    backed = run("backup", str(copy), data=data)
    assert backed.returncode == 0 and "5 documents" in backed.stdout, backed.stderr
    assert _hits(run(*query, data=copy)) == expected
    exported = run("export", str(tmp_path / "all.jsonl"), data=data)
    assert exported.returncode == 0 and "exported 5 documents" in exported.stdout, exported.stderr
    imported = run("import", str(tmp_path / "all.jsonl"), "--json", data=moved)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["reembedded"] == 0 and json.loads(imported.stdout)["added"] == 5
    assert _hits(run(*query, data=moved)) == expected
    refused = run("restore", str(copy), data=moved)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert run("delete", "--doc-id", expected[0][0], data=moved).returncode == 0
    restored = run("restore", str(copy), "--force", data=moved)
    assert restored.returncode == 0 and "replaced" in restored.stdout, restored.stderr
    assert _hits(run(*query, data=moved)) == expected
    doctor = run("doctor", "--json", data=moved)
    report = json.loads(doctor.stdout)
    assert doctor.returncode == (0 if report["ok"] else 1)
    assert report["data"]["documents"] == 5 and report["data"]["integrity"] == "ok"
