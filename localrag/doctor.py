"""``localrag doctor``: what is installed, how it is configured, and whether a data directory is
healthy — read without changing anything (the store is opened read-only, no model is loaded).

``diagnose`` returns a JSON-able dict; ``problems`` are what breaks ingest or search (the CLI
exits non-zero on them), ``warnings`` what degrades it or fixes itself (stale index caches are
caught up on the next search).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from localrag.config import CONFIG_FILE, Settings, load_settings
from localrag.errors import LocalRagError
from localrag.models import ModelSpec, all_specs, get_spec, is_installed
from localrag.store.datadir import connect_read_only, store_file
from localrag.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

# (shown name, distribution names tried in order)
_PACKAGES = (
    ("localrag", ("localrag",)),
    ("numpy", ("numpy",)),
    ("faiss", ("faiss-cpu", "faiss-gpu", "faiss")),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    ("llama_cpp", ("llama-cpp-python",)),
    ("torch", ("torch",)),
)
_INDEX_FILES = ("dense.npz", "keyword.npz")


def diagnose(data_dir: Path | str) -> dict[str, Any]:
    data_dir = Path(data_dir)
    problems: list[str] = []
    warnings: list[str] = []
    try:
        settings = load_settings(data_dir)
    except LocalRagError as e:
        problems.append(f"settings: {e}")
        settings = Settings()
    report: dict[str, Any] = {
        "versions": versions(),
        "models": _models(settings, problems, warnings),
        "threads": _threads(settings),
        "data": _data(data_dir, settings.embed.model, problems, warnings),
    }
    report.update(ok=not problems, problems=problems, warnings=warnings)
    return report


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for shown, distributions in _PACKAGES:
        found[shown] = None
        for name in distributions:
            try:
                found[shown] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def _models(settings: Settings, problems: list[str], warnings: list[str]) -> list[dict[str, Any]]:
    embed_model, llm = settings.embed.model, settings.generate.model
    rows = []
    for spec in all_specs():
        installed = is_installed(spec)
        row: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "installed": installed,
                               "configured": spec.name in (embed_model, llm), "install": spec.install_hint}
        if installed and spec.format.startswith("onnx"):
            row["prepared"] = _onnx_prepared(spec)
        rows.append(row)
    _check_embedder(embed_model, problems, warnings)
    if "llamacpp" in settings.generate.providers:
        _check_llm(llm, settings.generate.providers, warnings)
    return rows


def _onnx_prepared(spec: ModelSpec) -> bool:
    from localrag.embed.export import cached_onnx

    return cached_onnx(spec) is not None


def _check_embedder(name: str, problems: list[str], warnings: list[str]) -> None:
    if "/" in name or "\\" in name or name.startswith((".", "~")):  # a trained folder (embed.factory.is_model_path)
        if not (Path(name).expanduser() / "embedder.json").is_file():
            problems.append(f"embed.model {name!r} is not a trained embedder folder (no embedder.json)")
        return
    try:
        spec = get_spec(name)
    except LocalRagError as e:
        problems.append(f"embed.model: {e}")
        return
    if not is_installed(spec):
        problems.append(f"the embedding model {name!r} is not installed: {spec.install_hint}")
    elif spec.format.startswith("onnx") and not _onnx_prepared(spec):
        message = f"the embedding model {name!r} has no ONNX export yet: run `localrag models --prepare`"
        if importlib.util.find_spec("torch") is None:
            problems.append(message + " where torch is installed (pip install 'localrag[torch]')")
        else:
            warnings.append(message + " (else the first ingest or search exports it)")


def _check_llm(name: str, providers: str, warnings: list[str]) -> None:
    fallback = "answers fall back to the next provider in generate.providers" + (
        " (extractive: source sentences)" if "extractive" in providers else "")
    if importlib.util.find_spec("llama_cpp") is None:
        warnings.append(f"llama-cpp-python is not installed: pip install 'localrag[llm]'; {fallback}")
    if name.endswith(".gguf"):
        if not Path(name).expanduser().is_file():
            warnings.append(f"generate.model {name} does not exist; {fallback}")
        return
    try:
        spec = get_spec(name)
    except LocalRagError as e:
        warnings.append(f"generate.model: {e}")
        return
    if not is_installed(spec):
        warnings.append(f"the answer model {name!r} is not installed ({spec.install_hint}); {fallback}")


def _threads(settings: Settings) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    return {
        "cpu_count": cores,
        "embed.threads": settings.embed.threads or cores,
        "generate.threads": settings.generate.threads or cores,
        "rerank.threads": settings.rerank.threads or cores,
        "index.search_threads": settings.index.search_threads,
        **{name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if name in os.environ},
    }


def _data(data_dir: Path, embed_model: str, problems: list[str], warnings: list[str]) -> dict[str, Any]:
    path = store_file(data_dir)
    info: dict[str, Any] = {"path": str(data_dir), "store": str(path), "exists": path.is_file(),
                            "settings_file": (data_dir / CONFIG_FILE).is_file()}
    if not path.is_file():
        problems.append(f"{data_dir} is not a localrag data directory (no {path.name}); check --data")
        return info
    try:
        conn = connect_read_only(path)
    except LocalRagError as e:
        problems.append(str(e))
        return info
    try:
        info.update(_store_health(conn, problems, warnings))
    except sqlite3.DatabaseError as e:
        problems.append(f"the store cannot be read ({e}): run `localrag recover`")
        info["integrity"] = str(e)
    finally:
        conn.close()
    if "namespaces" in info:
        info["indexes"] = _caches(data_dir, info, warnings)
        _check_vector_space(data_dir, info.get("vector_space"), embed_model, problems)
    info["writer_pid"] = _writer_pid(data_dir)
    return info


def _check_vector_space(data_dir: Path, stored: str | None, embed_model: str, problems: list[str]) -> None:
    """A store indexed by one model cannot be searched with another (the engine refuses it)."""
    try:
        spec = get_spec(embed_model)
    except LocalRagError:
        return  # a trained folder (its space is its weights' hash) or a name reported above
    space = spec.vector_space or spec.name
    if stored is not None and stored != space:
        problems.append(f"{data_dir} was indexed with {stored!r} vectors, but embed.model {embed_model!r} makes "
                        f"{space!r} vectors: dense search will be refused; set embed.model back, or copy the "
                        "documents with `localrag reembed`")


def _store_health(conn: sqlite3.Connection, problems: list[str], warnings: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    info["schema_version"] = version
    if version > len(MIGRATIONS):
        problems.append(f"the store's schema version {version} is newer than this localrag ({len(MIGRATIONS)}): "
                        "upgrade localrag")
    elif version < len(MIGRATIONS):
        warnings.append(f"the store's schema version {version} is migrated to {len(MIGRATIONS)} "
                        "when localrag next opens it")
    errors = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    info["integrity"] = "ok" if errors == ["ok"] else errors
    if errors != ["ok"]:
        problems.append(f"the store fails its integrity check ({errors[0]}): run `localrag recover`")
        return info
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    info["generation"] = int(meta.get("generation", 0))
    info["vector_space"], info["dim"] = meta.get("vector_space"), int(meta.get("dim") or 0)
    rows = conn.execute(
        "SELECT n.id, n.name, (SELECT count(*) FROM documents d WHERE d.namespace_id = n.id),"
        " (SELECT count(*) FROM chunks c WHERE c.namespace_id = n.id) FROM namespaces n ORDER BY n.name"
    ).fetchall()
    info["namespaces"] = {name: {"id": ns_id, "documents": d, "chunks": c} for ns_id, name, d, c in rows}
    info["documents"] = sum(r[2] for r in rows)
    info["chunks"] = sum(r[3] for r in rows)
    return info


def _caches(data_dir: Path, info: dict[str, Any], warnings: list[str]) -> dict[str, str]:
    """Per namespace: fresh (stamped with the store's generation), stale (older: caught up on the
    next search), missing (built on the next open) or unreadable (rebuilt on the next open)."""
    from localrag.index.manager import INDEX_DIR

    states: dict[str, str] = {}
    for name, ns in info["namespaces"].items():
        stamps = []
        for file in _INDEX_FILES:
            target = data_dir / INDEX_DIR / str(ns["id"]) / file
            try:
                with np.load(target, allow_pickle=False) as npz:
                    stamps.append(int(npz["stamp"]))
            except FileNotFoundError:
                stamps.append(-1)
            except Exception:  # any damage: the engine rebuilds the file, so it is a warning only
                stamps.append(-2)
        if -2 in stamps:
            state = "unreadable"
        elif -1 in stamps:
            state = "missing" if ns["chunks"] else "fresh"
        else:
            state = "fresh" if min(stamps) == info["generation"] else "stale"
        states[name] = state
        if state in ("unreadable", "missing") and ns["chunks"]:
            warnings.append(f"namespace {name!r}: index caches {state}; rebuilt from the store on the next open "
                            "(`localrag reindex` saves them)")
    return states


def _writer_pid(data_dir: Path) -> int | None:
    """The pid named in the writer lock file when that process is alive. Probing the lock itself
    would make a writer starting at that instant fail, so only the file and the pid are read."""
    from localrag.store.lock import LOCK_FILE

    try:
        text = (data_dir / LOCK_FILE).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    if not text.isdigit() or int(text) == os.getpid():
        return None
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return int(text)
