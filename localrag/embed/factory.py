"""Registry name → a loaded ``Embedder``, made lazily and once per process per configuration."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrag.errors import ConfigError
from localrag.models import ModelSpec, get_spec, is_installed, list_models, locate, locate_folder
from localrag.protocols import Embedder

log = logging.getLogger(__name__)

_CacheKey = tuple[str, int, int, int, str]
_loaded: dict[_CacheKey, Embedder] = {}
_locks: dict[_CacheKey, threading.Lock] = {}
_locks_guard = threading.Lock()


def load_embedder(
    name: str, *, threads: int, batch_size: int, max_tokens: int, cache_dir: Path | None = None
) -> Embedder:
    """The embedder registered as ``name``; the same instance for the same settings in one process.

    ONNX models are exported into the cache on first use when torch is installed; without torch
    a missing export raises DependencyMissingError naming ``localrag[torch]``. A missing model
    package raises ModelNotFoundError naming the pip package.
    """
    if is_model_path(name):
        folder = Path(name).expanduser()
        from localrag.embed.build import read_config

        config = read_config(folder)  # the weights' hash keys the cache: a retrained folder loads anew
        key: _CacheKey = (str(folder.resolve()), threads, batch_size, max_tokens, str(config.get("sha256", "")))
        return _cached(key, lambda: _build_trained(folder, config, threads, batch_size, max_tokens))
    spec = get_spec(name)
    if spec.kind != "embedding":
        raise ConfigError(f"model {name!r} is a {spec.kind} model, not an embedding model")
    key = (name, threads, batch_size, max_tokens, str(cache_dir or ""))
    return _cached(key, lambda: _build(spec, threads, batch_size, max_tokens, cache_dir))


def _cached(key: _CacheKey, build: Callable[[], Embedder]) -> Embedder:
    found = _loaded.get(key)
    if found is not None:
        return found
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # one load per key; other keys load concurrently
        found = _loaded.get(key)
        if found is None:
            found = build()
            _loaded[key] = found
    return found


def is_model_path(name: str) -> bool:
    """``embed.model`` names a folder (a trained embedder) rather than a registry entry."""
    return "/" in name or "\\" in name or name.startswith((".", "~"))


def embedder_dim(name: str) -> int:
    """The vector dimension of ``embed.model`` without loading the model."""
    if is_model_path(name):
        from localrag.embed.build import read_config

        return int(read_config(Path(name).expanduser())["dim"])
    return int(get_spec(name).dim)


def _build_trained(folder: Path, config: dict[str, Any], threads: int, batch_size: int, max_tokens: int) -> Embedder:
    from localrag.embed.build import MODEL_FILE
    from localrag.embed.onnx import OnnxEmbedder

    if max_tokens < 3 or max_tokens > int(config["max_tokens"]):
        raise ConfigError(f"embed.max_tokens must lie in [3, {config['max_tokens']}] for {folder}; got {max_tokens}")
    return OnnxEmbedder(folder / MODEL_FILE, folder, threads=threads, batch_size=batch_size, max_tokens=max_tokens,
                        name=str(folder), vector_space=str(config["vector_space"]))


def _build(
    spec: ModelSpec, threads: int, batch_size: int, max_tokens: int, cache_dir: Path | None
) -> Embedder:
    if max_tokens < 3 or (spec.max_tokens and max_tokens > spec.max_tokens):
        raise ConfigError(
            f"embed.max_tokens must lie in [3, {spec.max_tokens}] for {spec.name}; got {max_tokens}"
        )
    folder = locate_folder(spec)
    if spec.format == "sentence-transformers":
        from localrag.embed.sentence_transformer import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            folder, threads=threads, batch_size=batch_size, max_tokens=max_tokens,
            name=spec.name, vector_space=spec.vector_space,
        )
    if spec.format in ("onnx-fp32", "onnx-int8"):
        from localrag.embed.export import ensure_onnx
        from localrag.embed.onnx import OnnxEmbedder

        return OnnxEmbedder(
            ensure_onnx(spec, cache_dir), folder, threads=threads, batch_size=batch_size,
            max_tokens=max_tokens, name=spec.name, vector_space=spec.vector_space,
        )
    raise ConfigError(f"model {spec.name!r} has format {spec.format!r}, which no embedder loads")


def clear_cache() -> None:
    """Forget loaded embedders (tests; a process that switches models)."""
    with _locks_guard:
        _loaded.clear()
        _locks.clear()


@dataclass(frozen=True, slots=True)
class Prepared:
    name: str
    installed: bool
    path: Path | None  # the ONNX file, or the package file/folder; None if not installed
    note: str


def prepare_models(
    names: Sequence[str] | None = None, *, cache_dir: Path | None = None, force: bool = False
) -> list[Prepared]:
    """Make every derived artefact (ONNX exports) of the named models, default: installed embedders.

    For ``localrag models prepare``: run once where torch is installed, after which the ONNX
    embedders need neither torch nor export time. Models that are not installed are reported
    with their pip command, not raised, when no names were given.
    """
    from localrag.embed.export import ensure_onnx

    chosen = [spec for spec, _ in list_models("embedding")] if names is None else None
    specs = chosen if chosen is not None else [get_spec(name) for name in names or ()]
    results = []
    for spec in specs:
        if not is_installed(spec):
            if names is not None:
                locate(spec)  # raises ModelNotFoundError naming the package
            results.append(Prepared(spec.name, False, None, spec.install_hint))
            continue
        if spec.format.startswith("onnx"):
            path = ensure_onnx(spec, cache_dir, force=force)
            results.append(Prepared(spec.name, True, path, "ONNX export ready"))
        else:
            found = locate(spec)
            results.append(Prepared(spec.name, True, found if isinstance(found, Path) else None, "installed"))
    return results
