from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from localrag.config import IndexSettings
from localrag.errors import CorruptIndexError, DimensionMismatchError
from localrag.index.faiss_index import FaissIndex


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def oracle(x: np.ndarray, keys: np.ndarray, q: np.ndarray, k: int, allow: np.ndarray | None = None) -> list[int]:
    mask = np.ones(len(keys), dtype=bool) if allow is None else np.isin(keys, allow)
    scores = x[mask] @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(k_) for k_ in keys[mask][order]]


@pytest.fixture(params=["flat", "hnsw"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(kind: str, dim: int = 16) -> FaissIndex:
    threshold = 10**9 if kind == "flat" else 10
    return FaissIndex(dim, IndexSettings(exact_threshold=threshold, hnsw_ef_search=256))


def test_search_matches_brute_force(kind: str) -> None:
    x = unit_vectors(500, 16)
    keys = np.arange(1000, 1500, dtype=np.int64)
    index = make(kind)
    index.add(keys, x)
    assert index.kind == kind
    for q in unit_vectors(20, 16, seed=1):
        got = [key for key, _ in index.search(q.reshape(1, -1), 5)[0]]
        expected = oracle(x, keys, q, 5)
        assert len(set(got) & set(expected)) >= (5 if kind == "flat" else 4)


def test_filtered_search_returns_exactly_k_allowed(kind: str) -> None:
    x = unit_vectors(400, 16)
    keys = np.arange(1, 401, dtype=np.int64)
    index = make(kind)
    index.add(keys, x)
    rng = np.random.default_rng(3)
    for trial in range(30):
        allow = np.sort(rng.choice(keys, size=int(rng.integers(1, 60)), replace=False))
        q = x[trial]
        got = [key for key, _ in index.search(q.reshape(1, -1), 10, allow)[0]]
        assert set(got) <= set(allow.tolist())
        assert len(got) == min(10, len(allow))
        assert got == oracle(x, keys, q, 10, allow)


def test_remove_and_readd_replace(kind: str) -> None:
    x = unit_vectors(100, 16)
    keys = np.arange(100, dtype=np.int64) + 5
    index = make(kind)
    index.add(keys, x)
    index.remove(np.array([5, 6, 999], dtype=np.int64))  # 999 is absent: no error
    assert len(index) == 98
    assert 5 not in index.keys().tolist()
    hits = index.search(x[0].reshape(1, -1), 3)[0]
    assert 5 not in [key for key, _ in hits]
    index.add(np.array([7], dtype=np.int64), x[0].reshape(1, -1))  # re-adding replaces
    assert len(index) == 98
    assert index.search(x[0].reshape(1, -1), 1)[0][0][0] == 7


def test_many_removals_compact_hnsw() -> None:
    index = make("hnsw")
    keys = np.arange(200, dtype=np.int64)
    index.add(keys, unit_vectors(200, 16))
    index.remove(keys[:150])
    assert len(index) == 50
    assert np.array_equal(index.keys(), keys[150:])


def test_save_load_roundtrip(kind: str, tmp_path: Path) -> None:
    x = unit_vectors(50, 16)
    keys = np.arange(50, dtype=np.int64)
    index = make(kind)
    index.add(keys, x)
    index.remove(np.array([3], dtype=np.int64))
    index.save(tmp_path / "dense.npz", stamp=42)
    loaded, stamp = FaissIndex.load(tmp_path / "dense.npz")
    assert stamp == 42
    assert loaded.kind == kind
    assert np.array_equal(loaded.keys(), index.keys())
    assert loaded.search(x[:1], 5) == index.search(x[:1], 5)


def test_corrupt_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "dense.npz"
    path.write_bytes(b"PK\x03\x04 definitely not an index")
    with pytest.raises(CorruptIndexError):
        FaissIndex.load(path)


def test_wrong_dimension_is_refused() -> None:
    index = make("flat")
    with pytest.raises(DimensionMismatchError, match="dimension 8 does not match the index dimension 16"):
        index.add(np.array([1], dtype=np.int64), unit_vectors(1, 8))
    with pytest.raises(DimensionMismatchError):
        index.search(unit_vectors(1, 8), 3)
    with pytest.raises(DimensionMismatchError, match="NaN"):
        index.add(np.array([1], dtype=np.int64), np.full((1, 16), np.nan, dtype=np.float32))
    assert len(index) == 0


def test_wide_vectors_pair_dimensions_in_the_candidate_copy(tmp_path: Path) -> None:
    x = unit_vectors(21_000, 128, seed=8)
    keys = np.arange(1, 21_001, dtype=np.int64)
    index = make("flat", dim=128)
    index.add(keys, x)
    assert faiss.downcast_index(index._coarse.index).M == 64  # one 4-bit code per two dimensions
    for q in unit_vectors(20, 128, seed=9):
        assert [key for key, _ in index.search(q.reshape(1, -1), 10)[0]] == oracle(x, keys, q, 10)
    # a file whose copy has another layout (one code per dimension, as saved before) is retrained once
    one_per_dim = faiss.IndexIDMap(faiss.IndexPQFastScan(128, 128, 4, faiss.METRIC_INNER_PRODUCT))
    one_per_dim.train(x[:4096])
    one_per_dim.add_with_ids(x, keys)
    index.save(tmp_path / "dense.npz", stamp=1)
    arrays = dict(np.load(tmp_path / "dense.npz"))
    arrays["coarse"] = faiss.serialize_index(one_per_dim)
    np.savez(tmp_path / "old.npz", **arrays)
    old, _ = FaissIndex.load(tmp_path / "old.npz")
    assert old.retrained_on_load and faiss.downcast_index(old._coarse.index).M == 64


def test_coarse_candidates_with_exact_rescoring_match_brute_force(tmp_path: Path) -> None:
    x = unit_vectors(25_000, 16, seed=5)
    keys = np.arange(1, 25_001, dtype=np.int64)
    index = make("flat")
    index.add(keys, x)
    assert index._coarse is not None  # past _COARSE_MIN candidates come from the 4-bit copy
    queries = unit_vectors(30, 16, seed=6)
    allow = keys[::7]
    for q in queries:
        got = index.search(q.reshape(1, -1), 10)[0]
        assert [key for key, _ in got] == oracle(x, keys, q, 10)
        assert got[0][1] == pytest.approx(float(x[got[0][0] - 1] @ q), abs=1e-5)  # exact float scores
        assert [key for key, _ in index.search(q.reshape(1, -1), 10, allow)[0]] == oracle(x, keys, q, 10, allow)
    index.remove(keys[:5000])
    assert len(index) == 20_000 and index._coarse.ntotal == 20_000
    q = queries[0]
    assert [key for key, _ in index.search(q.reshape(1, -1), 10)[0]] == oracle(x[5000:], keys[5000:], q, 10)
    index.save(tmp_path / "dense.npz", stamp=1)
    loaded, _ = FaissIndex.load(tmp_path / "dense.npz")
    assert loaded._coarse is not None
    assert loaded.search(q.reshape(1, -1), 10) == index.search(q.reshape(1, -1), 10)
    assert not loaded.retrained_on_load  # the saved candidate copy was used as it was
    # a file without the copy (saved by an older version) retrains it once and says so, so it is saved again
    arrays = dict(np.load(tmp_path / "dense.npz"))
    arrays["coarse"] = np.zeros(0, np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    old, _ = FaissIndex.load(tmp_path / "old.npz")
    assert old.retrained_on_load and old._coarse is not None
    assert old.search(q.reshape(1, -1), 10) == index.search(q.reshape(1, -1), 10)
