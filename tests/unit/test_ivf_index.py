"""The compressed vector index (IVF over 4-bit PQ codes, exact rerank from a vector source)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from localrag.config import IndexSettings
from localrag.index.faiss_index import FaissIndex

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 40 centres, the way text embeddings cluster by topic."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM))
    x = centres[rng.integers(0, 40, n)] + 0.35 * rng.standard_normal((n, DIM))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Source:
    """The exact vectors by key, as the store gives them; ``gone`` keys are no longer there."""

    def __init__(self, keys: np.ndarray, x: np.ndarray) -> None:
        self.rows = {int(k): v for k, v in zip(keys, x, strict=True)}
        self.gone: set[int] = set()
        self.reads = 0

    def __call__(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.reads += 1
        found = [int(k) for k in keys if int(k) in self.rows and int(k) not in self.gone]
        vectors = np.asarray([self.rows[k] for k in found], np.float32).reshape(len(found), DIM)
        return np.asarray(found, np.int64), vectors


def exact(x: np.ndarray, keys: np.ndarray, q: np.ndarray, k: int, allow: np.ndarray | None = None) -> list[int]:
    mask = np.ones(len(keys), bool) if allow is None else np.isin(keys, allow)
    scores = x[mask] @ q
    return [int(v) for v in keys[mask][np.argsort(-scores, kind="stable")[:k]]]


def build(n: int = 3000, threshold: int = 500) -> tuple[FaissIndex, np.ndarray, np.ndarray, Source]:
    x = clustered(n)
    keys = np.arange(10, 10 + n, dtype=np.int64) * 2
    source = Source(keys, x)
    index = FaissIndex(DIM, IndexSettings(exact_threshold=threshold), source)
    for start in range(0, n, 700):  # crosses the threshold part way through one batch
        index.add(keys[start : start + 700], x[start : start + 700])
    return index, keys, x, source


def recall(index: FaissIndex, keys: np.ndarray, x: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    got = index.search(queries, k)
    hits = sum(len({key for key, _ in row} & set(exact(x, keys, q, k))) for row, q in zip(got, queries, strict=True))
    return hits / (k * len(queries))


def test_switches_to_ivf_above_the_threshold_with_exact_scores() -> None:
    index, keys, x, _ = build()
    assert index.kind == "ivf" and len(index) == len(keys)
    assert np.array_equal(index.keys(), keys)
    # switched at 700 vectors, retrained (from the source) once past 4 x 700
    assert index._ivf is not None and index._ivf.trained_at == 3000
    queries = clustered(50, seed=5)
    assert recall(index, keys, x, queries) >= 0.95
    by_key = dict(zip(keys.tolist(), x, strict=True))
    for (key, score) in index.search(queries[:1], 10)[0]:
        assert abs(score - float(by_key[key] @ queries[0])) < 1e-5  # rescored with the float vector


def test_without_a_source_a_large_index_is_hnsw() -> None:
    x = clustered(800)
    index = FaissIndex(DIM, IndexSettings(exact_threshold=500))
    index.add(np.arange(800, dtype=np.int64), x)
    assert index.kind == "hnsw"


def test_remove_and_replace() -> None:
    index, keys, x, source = build()
    q = x[7:8]
    assert index.search(q, 1)[0][0][0] == keys[7]
    index.remove(keys[7:8])
    source.gone.add(int(keys[7]))
    assert len(index) == len(keys) - 1
    assert int(keys[7]) not in {k for k, _ in index.search(q, 20)[0]}
    assert int(keys[7]) not in index.keys().tolist()
    # re-adding a key replaces its vector
    source.gone.discard(int(keys[7]))
    source.rows[int(keys[7])] = x[8]
    index.add(keys[7:8], x[8:9])
    assert len(index) == len(keys)
    assert {int(keys[7]), int(keys[8])} <= {k for k, _ in index.search(x[8:9], 5)[0]}


def test_keys_gone_from_the_source_are_left_out() -> None:
    index, keys, x, source = build()
    source.gone.add(int(keys[3]))  # deleted by another process this index has not caught up with
    got = [k for k, _ in index.search(x[3:4], 10)[0]]
    assert int(keys[3]) not in got and len(got) == 10


def test_filtered_search_returns_only_allowed_keys() -> None:
    index, keys, x, _ = build()
    rng = np.random.default_rng(2)
    small = np.sort(rng.choice(keys, 40, replace=False))  # scanned exactly
    for q in x[:5]:
        assert [k for k, _ in index.search(q.reshape(1, -1), 10, small)[0]] == exact(x, keys, q, 10, small)
    large = np.sort(rng.choice(keys, 2500, replace=False))
    for q in x[:5]:
        got = [k for k, _ in index.search(q.reshape(1, -1), 10, large)[0]]
        assert set(got) <= set(large.tolist()) and len(got) == 10


def test_save_and_load_keep_the_codes(tmp_path: Path) -> None:
    index, keys, _, source = build()
    queries = clustered(20, seed=9)
    before = index.search(queries, 10)
    index.save(tmp_path / "dense.npz", stamp=7)
    loaded, stamp = FaissIndex.load(tmp_path / "dense.npz", IndexSettings(exact_threshold=500), source)
    assert stamp == 7 and loaded.kind == "ivf" and np.array_equal(loaded.keys(), keys)
    assert loaded.search(queries, 10) == before


def test_build_picks_the_kind_by_final_size() -> None:
    x = clustered(3000)
    keys = np.arange(3000, dtype=np.int64) + 1
    source = Source(keys, x)
    big = FaissIndex.build(keys, DIM, source, IndexSettings(exact_threshold=500))
    assert big.kind == "ivf" and np.array_equal(big.keys(), keys)
    assert recall(big, keys, x, clustered(50, seed=4)) >= 0.95
    small = FaissIndex.build(keys[:400], DIM, source, IndexSettings(exact_threshold=500))
    assert small.kind == "flat" and np.array_equal(small.keys(), keys[:400])
    q = x[11]
    assert [k for k, _ in small.search(q.reshape(1, -1), 10)[0]] == exact(x[:400], keys[:400], q, 10)
