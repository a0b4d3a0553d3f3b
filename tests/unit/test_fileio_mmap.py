"""load_arrays(mmap_from=...): large members of a saved .npz mapped in place, small ones read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from localrag.errors import CorruptIndexError
from localrag.fileio import load_arrays, save_arrays


def saved(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = {
        "big": np.arange(50_000, dtype=np.int32),
        "wide": np.arange(12_000, dtype=np.uint16).reshape(3000, 4),
        "small": np.array([3, 1, 2], dtype=np.int64),
        "scalar": np.int64(7),
    }
    path = tmp_path / "a.npz"
    save_arrays(path, **arrays)
    return path, arrays


def test_large_members_are_mapped_and_equal(tmp_path: Path) -> None:
    path, arrays = saved(tmp_path)
    loaded = load_arrays(path, mmap_from=10_000)
    assert isinstance(loaded["big"], np.memmap) and isinstance(loaded["wide"], np.memmap)
    assert not isinstance(loaded["small"], np.memmap) and not isinstance(loaded["scalar"], np.memmap)
    for name, value in arrays.items():
        assert np.array_equal(loaded[name], value) and loaded[name].dtype == np.asarray(value).dtype
    assert not loaded["big"].flags.writeable
    plain = load_arrays(path)
    assert not any(isinstance(v, np.memmap) for v in plain.values())


def test_a_truncated_file_is_a_corrupt_index(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptIndexError):
        load_arrays(path, mmap_from=10_000)
