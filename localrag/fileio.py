"""Crash-safe file writes: write a temp file beside the target, fsync, then os.replace."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import zipfile
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


def load_arrays(path: Path, mmap_from: int = 0) -> dict[str, np.ndarray]:
    """Read an .npz written by ``save_arrays``; any damage raises CorruptIndexError.

    Arrays of at least ``mmap_from`` bytes (0: none) are memory-mapped read-only where they lie in
    the (uncompressed) zip instead of read: opening is then instant and only the pages a search
    touches are read, and they stay in the page cache, not the process's own memory. Mapped arrays
    skip the zip's CRC check (atomic writes mean no torn file; callers check structure).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            big = _mappable(path, mmap_from) if mmap_from else {}
            return {name: big[name] if name in big else npz[name] for name in npz.files}
    except FileNotFoundError:
        raise
    except Exception as e:  # zipfile, ValueError, OSError: all mean the file is damaged
        raise CorruptIndexError(f"cannot read index file {path}: {e}") from e


def _mappable(path: Path, min_bytes: int) -> dict[str, np.ndarray]:
    """Memory maps of the stored (uncompressed) members of at least ``min_bytes``."""
    maps: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size < min_bytes:
                continue
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"bad local header for {info.filename}")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            if fortran or dtype.hasobject:
                continue
            end = info.header_offset + 30 + name_len + extra_len + info.file_size
            if fh.tell() + int(np.prod(shape)) * dtype.itemsize > end:
                raise ValueError(f"{info.filename} is shorter than its header says")
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            maps[key] = np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape)
    return maps


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's entry to disk (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
