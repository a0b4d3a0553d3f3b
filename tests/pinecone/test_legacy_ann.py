"""Legacy queries past the ANN threshold: recall@10 against brute force, exact scores, filters, writes
and restarts, for every metric. The threshold is set low so small namespaces exercise the ANN path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrag.pinecone import Pinecone
from localrag.pinecone.ann import AnnSettings

METRICS = ("cosine", "dotproduct", "euclidean")


def brute(data: dict[str, np.ndarray], query: np.ndarray, metric: str) -> dict[str, float]:
    """Every record's score, in float64, from the documented formulas."""
    q = query.astype(np.float64)
    out = {}
    for rid, v in data.items():
        x = v.astype(np.float64)
        if metric == "cosine":
            out[rid] = float(x @ q / (np.linalg.norm(x) * np.linalg.norm(q)))
        elif metric == "dotproduct":
            out[rid] = float(x @ q)
        else:
            out[rid] = float(((x - q) ** 2).sum())
    return out


def top(scores: dict[str, float], metric: str, k: int, keep: set[str] | None = None) -> list[str]:
    sign = 1.0 if metric == "euclidean" else -1.0
    ids = [i for i in scores if keep is None or i in keep]
    return sorted(ids, key=lambda i: (sign * scores[i], i))[:k]


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Vectors around 40 centres with varied norms (dotproduct and euclidean see the norms)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim)) * 2
    x = centres[rng.integers(0, 40, n)] + rng.normal(size=(n, dim))
    return (x * rng.uniform(0.5, 2.0, size=(n, 1))).astype(np.float32)


def check_queries(idx: Any, data: dict[str, np.ndarray], metric: str, queries: np.ndarray,
                  flt: dict[str, Any] | None = None, keep: set[str] | None = None) -> float:
    """Mean recall@10; every returned score must equal the brute-force one."""
    recalls = []
    for q in queries:
        got = idx.query(vector=q.tolist(), top_k=10, filter=flt).matches
        scores = brute(data, q, metric)
        truth = top(scores, metric, 10, keep)
        assert len(got) == min(10, len(truth))
        for match in got:
            assert keep is None or match.id in keep
            assert match.score == pytest.approx(scores[match.id], rel=1e-6, abs=1e-6)
        ranked = [m.score for m in got]
        assert ranked == (sorted(ranked) if metric == "euclidean" else sorted(ranked, reverse=True))
        recalls.append(len(set(truth) & {m.id for m in got}) / len(truth))
    return float(np.mean(recalls))


def upsert(idx: Any, data: dict[str, np.ndarray], group: dict[str, int]) -> None:
    items = list(data.items())
    for start in range(0, len(items), 500):
        idx.upsert(vectors=[{"id": rid, "values": v.tolist(), "metadata": {"g": group[rid]}}
                            for rid, v in items[start:start + 500]])


@pytest.mark.parametrize("metric", METRICS)
def test_ann_recall_exact_scores_filters_and_writes(tmp_path: Path, metric: str) -> None:
    # the shortlist comes straight from the 4-bit codes: 100 of 2400 here
    settings = AnnSettings(threshold=400, min_candidates=100, factor=10, exact_matches=200, exact_fraction=0.2)
    dim, n = 16, 2400
    x = clustered(n, dim, seed=1)
    data = {f"r{i}": x[i] for i in range(n)}
    group = {f"r{i}": i % 20 for i in range(n)}
    queries = clustered(25, dim, seed=2)
    pc = Pinecone(path=tmp_path, ann=settings)
    pc.create_index(name="ann", dimension=dim, metric=metric)
    idx = pc.Index("ann")
    upsert(idx, data, group)
    local = pc._local.index("ann")
    assert local.uses_ann("")
    assert check_queries(idx, data, metric, queries) >= 0.99
    # a broad filter (half the records) filters the ANN's candidates; a selective one (1 in 20) is exact
    broad = {g for rid, g in group.items() if g < 10}
    assert check_queries(idx, data, metric, queries[:8], {"g": {"$lt": 10}},
                         {rid for rid, g in group.items() if g in broad}) >= 0.99
    assert check_queries(idx, data, metric, queries[:8], {"g": 3},
                         {rid for rid, g in group.items() if g == 3}) == 1.0
    # overwrites move records (the ANN must forget their old vectors), deletes remove them
    moved = clustered(300, dim, seed=3)
    for i in range(300):
        data[f"r{i}"] = moved[i]
    idx.upsert(vectors=[{"id": f"r{i}", "values": moved[i].tolist(), "metadata": {"g": group[f"r{i}"]}}
                        for i in range(300)])
    gone = [f"r{i}" for i in range(300, 600)]
    idx.delete(ids=gone)
    for rid in gone:
        del data[rid], group[rid]
    idx.update(id="r1", values=(moved[1] * 0 + 1).tolist())
    data["r1"] = moved[1] * 0 + 1
    assert check_queries(idx, data, metric, queries) >= 0.99
    first = idx.query(vector=data["r1"].tolist(), top_k=1).matches[0]
    if metric != "dotproduct":  # a record is its own nearest neighbour (dotproduct favours long vectors)
        assert first.id == "r1"
    pc.close()
    # the ANN is derived from the store: a restart loads it from its file (or rebuilds it) and answers the same
    reopened = Pinecone(path=tmp_path, ann=settings)
    again = reopened.Index("ann")
    assert reopened._local.index("ann").uses_ann("")
    assert check_queries(again, data, metric, queries[:10]) >= 0.99
    # deleting down to well under the threshold drops the ANN; queries stay exact
    doomed = sorted(data)[150:]
    for start in range(0, len(doomed), 1000):
        again.delete(ids=doomed[start:start + 1000])
    for rid in doomed:
        del data[rid]
    assert not reopened._local.index("ann").uses_ann("")
    assert check_queries(again, data, metric, queries[:5]) == 1.0
    reopened.close()


@pytest.mark.parametrize("metric", METRICS)
def test_ann_past_the_coarse_scan_size(tmp_path: Path, metric: str) -> None:
    """From 20k vectors the candidates come from the engine's 4-bit fast-scan copy: approximate, re-scored."""
    dim, n = 32, 21_000
    x = clustered(n, dim, seed=5)
    data = {f"r{i}": x[i] for i in range(n)}
    pc = Pinecone(path=tmp_path, ann=AnnSettings(threshold=1000))
    pc.create_index(name="big", dimension=dim, metric=metric)
    idx = pc.Index("big")
    upsert(idx, data, {rid: 0 for rid in data})
    assert pc._local.index("big").uses_ann("")
    assert check_queries(idx, data, metric, clustered(20, dim, seed=6)) >= 0.99
    pc.close()


@pytest.mark.parametrize("metric", METRICS)
def test_extreme_values_are_accepted_and_found(tmp_path: Path, metric: str) -> None:
    """|x|^2 past float32's range must neither fail a committed write nor hide the record."""
    pc = Pinecone(path=tmp_path, ann=AnnSettings(threshold=50, min_candidates=5, factor=1))
    pc.create_index(name="huge", dimension=4, metric=metric)
    idx = pc.Index("huge")
    rng = np.random.default_rng(7)
    idx.upsert(vectors=[(f"r{i}", rng.normal(size=4).tolist()) for i in range(200)])
    idx.upsert(vectors=[("huge", [1e20, 1e20, 1e20, 1e20])])
    assert pc._local.index("huge").uses_ann("")
    best = idx.query(vector=[1e20, 1e20, 1e20, 1e20], top_k=1).matches[0]
    expected = {"cosine": 1.0, "dotproduct": 4e40, "euclidean": 0.0}[metric]
    assert best.id == "huge" and best.score == pytest.approx(expected, rel=1e-6)
    pc.close()


def _ann_files(root: Path) -> list[Path]:
    return sorted(root.glob("**/ann/*.npz"))


def test_ann_file_is_loaded_when_current_and_rebuilt_when_stale_or_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Close saves the ANN beside the store; an open with the same write generation loads it (no build);
    a file from an older generation (a crash after a write) or a damaged one is rebuilt from the store."""
    from localrag.pinecone.ann import DenseAnn

    settings = AnnSettings(threshold=400, min_candidates=100, factor=10)
    dim, n, metric = 16, 1500, "euclidean"
    x = clustered(n, dim, seed=11)
    data = {f"r{i}": x[i] for i in range(n)}
    queries = clustered(10, dim, seed=12)
    pc = Pinecone(path=tmp_path, ann=settings)
    pc.create_index(name="kept", dimension=dim, metric=metric)
    upsert(pc.Index("kept"), data, {rid: 0 for rid in data})
    pc.close()
    (saved,) = _ann_files(tmp_path)
    old = saved.read_bytes()

    builds: list[int] = []
    real_build = DenseAnn.build

    def counted(self: DenseAnn, *args: Any) -> None:
        builds.append(1)
        real_build(self, *args)

    monkeypatch.setattr(DenseAnn, "build", counted)
    reopened = Pinecone(path=tmp_path, ann=settings)
    idx = reopened.Index("kept")
    assert reopened._local.index("kept").uses_ann("") and builds == []
    assert check_queries(idx, data, metric, queries) >= 0.99
    # a write moves the store to a new generation; put back the old file, as a crash before close would leave it
    moved = clustered(50, dim, seed=13)
    idx.upsert(vectors=[{"id": f"r{i}", "values": moved[i].tolist()} for i in range(50)])
    data.update({f"r{i}": moved[i] for i in range(50)})
    reopened.close()
    assert builds == []  # 50 rewrites: caught up in place, no rebuild
    saved.write_bytes(old)
    stale = Pinecone(path=tmp_path, ann=settings)
    idx = stale.Index("kept")
    assert builds == [1] and stale._local.index("kept").uses_ann("")
    assert check_queries(idx, data, metric, moved[:10]) >= 0.99  # the moved records are found
    assert _ann_files(tmp_path) == [saved] and saved.read_bytes() != old  # rebuilt, then saved again
    stale.close()
    saved.write_bytes(b"not an npz")
    damaged = Pinecone(path=tmp_path, ann=settings)
    assert check_queries(damaged.Index("kept"), data, metric, queries) >= 0.99
    assert builds == [1, 1]
    damaged.close()


def test_ann_files_follow_their_namespaces(tmp_path: Path) -> None:
    """A namespace deleted, or shrunk below the threshold, leaves no ANN file behind on close."""
    settings = AnnSettings(threshold=100, min_candidates=50, factor=5)
    dim = 8
    x = clustered(300, dim, seed=21)
    pc = Pinecone(path=tmp_path, ann=settings)
    pc.create_index(name="ns", dimension=dim, metric="cosine")
    idx = pc.Index("ns")
    for namespace in ("a", "b"):
        idx.upsert(vectors=[(f"r{i}", x[i].tolist()) for i in range(300)], namespace=namespace)
    pc.close()
    assert len(_ann_files(tmp_path)) == 2
    pc = Pinecone(path=tmp_path, ann=settings)
    idx = pc.Index("ns")
    idx.delete(delete_all=True, namespace="a")
    idx.delete(ids=[f"r{i}" for i in range(250)], namespace="b")
    assert not pc._local.index("ns").uses_ann("b")
    pc.close()
    assert _ann_files(tmp_path) == []


def test_every_write_moves_the_namespace_generation(tmp_path: Path) -> None:
    """The ANN file's staleness check: each write transaction bumps its namespace's counter, and a
    dropped namespace keeps its count, so a recreated one never matches an old file."""
    from localrag.pinecone import wire
    from localrag.pinecone.store import RecordStore

    store = RecordStore(tmp_path)
    record = wire.Record("a", np.ones(4, dtype=np.float32), None, None)
    assert store.generation("ns") == 0
    store.upsert("ns", [record])
    store.upsert("other", [record])
    store.delete("ns", ["a", "missing"])
    assert (store.generation("ns"), store.generation("other")) == (2, 1)
    store.delete_all("ns", drop_namespace=True)
    store.upsert("ns", [record])
    assert store.generation("ns") == 4
    store.close()
    assert RecordStore(tmp_path).generation("ns") == 4
