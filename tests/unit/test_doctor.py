"""``localrag doctor``: data-directory health on real SQLite and index files, model and version reports."""

from __future__ import annotations

import json
import platform
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fakes import HashingEmbedder

from localrag import doctor
from localrag.cli import main
from localrag.engine import LocalRAG
from localrag.models import all_specs
from localrag.store.sqlite import SQLiteStore
from localrag.types import Document


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ONNX export cache is looked up here, never in the user's home."""
    monkeypatch.setenv("LOCALRAG_CACHE_DIR", str(tmp_path / "cache"))


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with LocalRAG(data, embedder=HashingEmbedder()) as rag:
        rag.add([Document(f"d{i}", f"document {i} about tides") for i in range(3)])
        rag.add(Document("n1", "a note about bees"), namespace="notes")
    return data


def _data_problems(report: dict[str, object], data: Path) -> list[str]:
    """Problems with the directory itself, leaving out that the fake embedder's vectors are not the
    configured model's (checked on its own below)."""
    problems: list[str] = report["problems"]  # type: ignore[assignment]
    return [p for p in problems if ("store" in p or str(data) in p) and "was indexed with" not in p]


def test_a_healthy_directory(tmp_path: Path) -> None:
    data = _data(tmp_path)
    report = doctor.diagnose(data)
    info = report["data"]
    assert info["integrity"] == "ok" and info["documents"] == 4 and info["chunks"] == 4
    assert info["namespaces"][""]["documents"] == 3 and info["namespaces"]["notes"]["documents"] == 1
    assert info["indexes"] == {"": "fresh", "notes": "fresh"}
    assert info["schema_version"] == 4 and info["vector_space"] == "fake-hashing"
    assert _data_problems(report, data) == []
    assert any("'fake-hashing' vectors" in p and "localrag reembed" in p for p in report["problems"])
    json.dumps(report)  # JSON-able as it is


def test_stale_and_unreadable_caches_are_warnings(tmp_path: Path) -> None:
    data = _data(tmp_path)
    store = SQLiteStore(data)
    store.delete_documents("", ["d0"])  # a write the saved caches have not seen
    ns_id = store.namespace_id("notes")
    store.close()
    (data / "indexes" / str(ns_id) / "dense.npz").write_bytes(b"garbage")
    report = doctor.diagnose(data)
    assert report["data"]["indexes"] == {"": "stale", "notes": "unreadable"}
    assert any("'notes'" in w and "unreadable" in w for w in report["warnings"])
    assert _data_problems(report, data) == []


def test_a_missing_directory_is_a_problem_and_is_not_created(tmp_path: Path) -> None:
    report = doctor.diagnose(tmp_path / "typo")
    assert not report["ok"] and any("not a localrag data directory" in p for p in report["problems"])
    assert not (tmp_path / "typo").exists()


def test_a_damaged_store_is_a_problem_pointing_at_recover(tmp_path: Path) -> None:
    data = _data(tmp_path)
    path = data / "store.sqlite3"
    raw = bytearray(path.read_bytes())
    page_size = int.from_bytes(raw[16:18], "big")
    for page in range(2, len(raw) // page_size):  # every page but the schema's
        raw[page * page_size:page * page_size + 8] = b"\xde\xad\xbe\xef" * 2
    path.write_bytes(bytes(raw))
    report = doctor.diagnose(data)
    assert not report["ok"] and any("localrag recover" in p for p in report["problems"])


def test_models_name_their_pip_line_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "is_installed", lambda spec: False)
    report = doctor.diagnose(_data(tmp_path))
    rows = {r["name"]: r for r in report["models"]}
    assert set(rows) == {s.name for s in all_specs()}
    for spec in all_specs():
        assert rows[spec.name]["installed"] is False and rows[spec.name]["install"] == spec.install_hint
    embedder = next(s for s in all_specs() if s.name == "minilm-l6-onnx-int8")
    assert any(embedder.install_hint in p for p in report["problems"]) and not report["ok"]
    llm = next(s for s in all_specs() if s.name == "qwen2.5-coder-0.5b")
    assert any(llm.install_hint in w for w in report["warnings"])  # answers still come (extractive)


def test_an_embedder_folder_that_is_not_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALRAG_EMBED__MODEL", str(tmp_path / "no-such-embedder"))
    report = doctor.diagnose(_data(tmp_path))
    assert any("not a trained embedder folder" in p for p in report["problems"])


def test_versions_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALRAG_EMBED__THREADS", "1")
    report = doctor.diagnose(_data(tmp_path))
    versions = report["versions"]
    assert versions["python"] == platform.python_version() and versions["sqlite"] == sqlite3.sqlite_version
    assert versions["numpy"] == np.__version__ and versions["faiss"] and versions["localrag"]
    assert {"llama_cpp", "onnxruntime"} <= set(versions)
    assert report["threads"]["embed.threads"] == 1 and report["threads"]["cpu_count"] >= 1


def test_cli_doctor_exit_status_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "typo"), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "problem:" in out and "not a localrag data directory" in out and not (tmp_path / "typo").exists()
    data = _data(tmp_path)
    code = main(["--data", str(data), "doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if report["ok"] else 1)
    assert report["data"]["documents"] == 4 and report["data"]["indexes"][""] == "fresh"
