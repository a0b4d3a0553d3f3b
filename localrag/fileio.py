"""Crash-safe file writes: write a temp file beside the target, fsync, then os.replace."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from localrag import failpoints
from localrag.errors import CorruptIndexError


def atomic_write_bytes(path: Path, data: bytes, *, failpoint: str = "") -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new file, never half of one.

    ``failpoint``: the failpoint reached between the temp file and the replace (crash tests).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if failpoint:
            failpoints.hit(failpoint)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)


def save_arrays(path: Path, **arrays: Any) -> None:
    """Atomically write numpy arrays as an uncompressed .npz (no pickle)."""
    buf = io.BytesIO()
    np.savez(buf, **{name: np.asarray(value) for name, value in arrays.items()})  # type: ignore[arg-type]
    atomic_write_bytes(path, buf.getvalue(), failpoint="index.save.before_replace")


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read an .npz written by ``save_arrays``; any damage raises CorruptIndexError."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise
    except Exception as e:  # zipfile, ValueError, OSError: all mean the file is damaged
        raise CorruptIndexError(f"cannot read index file {path}: {e}") from e


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's entry to disk (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
