"""The legacy ANN's build-time choice between an IVF and the full 4-bit scan: clustered vectors get an
IVF whose calibrated nprobe holds recall@10, random ones keep the full scan, and a saved IVF's nprobe
is reloaded without measuring again. Sizes are small, with ``ivf_min`` lowered to reach the IVF path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_legacy_ann import check_queries, upsert

from localrag.pinecone import Pinecone
from localrag.pinecone import ann as ann_module
from localrag.pinecone.ann import AnnSettings, DenseAnn
from localrag.pinecone.space import Space

DIM = 64
SETTINGS = AnnSettings(threshold=500, min_candidates=100, factor=10, exact_matches=100, ivf_min=1000,
                       ivf_max_fraction=0.25)


def blobs(n: int, seed: int, centres_seed: int = 5) -> np.ndarray:
    """Tight groups around 100 centres, as embeddings group by topic."""
    centres = np.random.default_rng(centres_seed).normal(size=(100, DIM)) * 4
    rng = np.random.default_rng(seed)
    return (centres[rng.integers(0, 100, n)] + rng.normal(size=(n, DIM))).astype(np.float32)


def built(x: np.ndarray, metric: str) -> DenseAnn:
    ann = DenseAnn(DIM, metric)
    norms = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
    ann.build(np.arange(len(x), dtype=np.int64), x, norms, SETTINGS)
    return ann


def shortlist_recall(ann: DenseAnn, x: np.ndarray, queries: np.ndarray, metric: str) -> float:
    """Recall@10 after exact re-scoring of the shortlist: the share of the true top 10 it holds."""
    keys = x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "cosine" else x
    hits = []
    for q in queries:
        qk = q / np.linalg.norm(q) if metric == "cosine" else q
        scores = -((keys - qk) ** 2).sum(axis=1) if metric == "euclidean" else keys @ qk
        truth = set(np.argsort(-scores, kind="stable")[:10].tolist())
        hits.append(len(truth & set(ann.candidates(q, 100, None).tolist())) / 10)
    return float(np.mean(hits))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_clustered_vectors_get_a_calibrated_ivf(metric: str) -> None:
    x = blobs(6000, seed=1)
    ann = built(x, metric)
    assert ann.kind == "ivf" and ann.calibration is not None and ann.nprobe is not None
    assert ann.calibration.recall >= SETTINGS.ivf_recall
    # the smallest step (1, 2, 3, 4, 6, 8, ...) that reached it: every smaller one tried fell short
    assert [p for p, _ in ann.calibration.tried][-1] == ann.nprobe
    assert all(r < SETTINGS.ivf_recall for _, r in ann.calibration.tried[:-1])
    assert ann.nprobe <= ann._pq.nlist * SETTINGS.ivf_max_fraction
    # fresh queries (not stored vectors) hold the target too
    assert shortlist_recall(ann, x, blobs(50, seed=2), metric) >= 0.99


def test_random_vectors_keep_the_full_scan() -> None:
    x = np.random.default_rng(3).normal(size=(6000, DIM)).astype(np.float32)
    ann = built(x, "cosine")
    assert ann.kind == "scan" and ann.nprobe is None
    probes = np.random.default_rng(4).normal(size=(20, DIM)).astype(np.float32)
    assert shortlist_recall(ann, x, probes, "cosine") >= 0.99


def test_below_ivf_min_stays_a_full_scan() -> None:
    x = blobs(900, seed=6)
    assert built(x, "cosine").kind == "scan"


def test_saved_nprobe_is_reloaded_without_calibrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n, metric = 5000, "cosine"
    x = blobs(n, seed=7)
    data = {f"r{i}": x[i] for i in range(n)}
    pc = Pinecone(path=tmp_path, ann=SETTINGS)
    pc.create_index(name="kept", dimension=DIM, metric=metric)
    group = {f"r{i}": i % 5 for i in range(n)}
    upsert(pc.Index("kept"), data, group)
    first = pc._local.index("kept")._spaces[""]._ann
    assert first is not None and first.kind == "ivf"
    nprobe = first.nprobe
    pc.close()

    def refused(*args: Any) -> Any:
        raise AssertionError("calibrated again on load")

    monkeypatch.setattr(ann_module, "calibrate", refused)
    reopened = Pinecone(path=tmp_path, ann=SETTINGS)
    loaded = reopened._local.index("kept")._spaces[""]._ann
    assert loaded is not None and loaded.kind == "ivf" and loaded.nprobe == nprobe
    assert loaded._pq.nprobe == nprobe
    assert first.calibration is not None and loaded.calibration is not None
    assert loaded.calibration.shortlist == first.calibration.shortlist > 0
    assert loaded._calibrated_at == first._calibrated_at > 0
    idx = reopened.Index("kept")
    queries = blobs(15, seed=8)
    assert check_queries(idx, data, metric, queries) >= 0.99
    # a 1-in-5 filter takes the IVF path (over exact_matches) with 5 times the calibrated nprobe
    keep = {rid for rid, g in group.items() if g == 0}
    assert check_queries(idx, data, metric, queries, {"g": {"$eq": 0}}, keep) >= 0.99
    reopened.close()


def test_calibration_trims_the_shortlist_and_recall_holds() -> None:
    """Of the shortlists tried, the shortest holding the target is kept and the Space asks for it;
    queries through the Space (exact re-score) still match brute force."""
    settings = AnnSettings(threshold=500, min_candidates=400, factor=40, exact_matches=100, ivf_min=1000,
                           ivf_max_fraction=0.25, ivf_shortlists=(25, 50, 100, 200))
    x = blobs(6000, seed=11)
    ann = DenseAnn(DIM, "cosine")
    norms = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
    ann.build(np.arange(len(x), dtype=np.int64), x, norms, settings)
    assert ann.kind == "ivf" and ann.calibration is not None
    short = ann.calibration.shortlist
    assert short in settings.ivf_shortlists and ann.calibration.recall >= settings.ivf_recall
    assert ann.shortlist(10, settings) == short < settings.min_candidates
    assert ann.shortlist(100, settings) == max(short, 10 * short)  # scales with top_k as factor does
    assert ann.shortlist(10, SETTINGS) == max(SETTINGS.min_candidates, 10 * SETTINGS.factor)  # no trim above it
    space = Space(DIM, "cosine", settings)
    for i, row in enumerate(x):
        space.put(f"r{i}", row, None, None)
    space.adopt_ann(ann)
    keys = x / np.linalg.norm(x, axis=1, keepdims=True)
    hits = []
    for q in blobs(30, seed=12):
        truth = set(np.argsort(-(keys @ (q / np.linalg.norm(q))), kind="stable")[:10].tolist())
        got = [slot for slot, _ in space.search(10, space.mask(None), q, None)]
        hits.append(len(truth & set(got)) / 10)
    assert float(np.mean(hits)) >= 0.99


def test_a_sample_rejects_random_data_before_the_full_ivf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random vectors fail the sample's IVF, so the full IVF is never trained or calibrated;
    clustered ones pass it and get their calibrated IVF."""
    settings = AnnSettings(threshold=500, min_candidates=100, factor=10, exact_matches=100, ivf_min=1000,
                           ivf_max_fraction=0.25, ivf_sample=2000, ivf_sample_min=4000)
    full_builds: list[int] = []
    real = ann_module.calibrate

    def counted(*args: Any, **kwargs: Any) -> Any:
        full_builds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ann_module, "calibrate", counted)
    rng = np.random.default_rng(13)
    for x, kind in ((rng.normal(size=(6000, DIM)).astype(np.float32), "scan"), (blobs(6000, seed=14), "ivf")):
        ann = DenseAnn(DIM, "cosine")
        norms = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
        ann.build(np.arange(len(x), dtype=np.int64), x, norms, settings)
        assert ann.kind == kind
    assert full_builds == [1]  # only the clustered data reached the full IVF's calibration


def test_a_grown_ivf_is_recalibrated_in_place() -> None:
    """Writes that grow an IVF by a fifth (short of the doubling that rebuilds it) measure its nprobe
    and shortlist again over every record, without retraining; queries keep their recall."""
    x = blobs(4000, seed=15)
    space = Space(DIM, "cosine", SETTINGS)
    for i in range(3000):
        space.put(f"r{i}", x[i], None, None)
    space.sync_ann()
    ann = space._ann
    assert ann is not None and ann.kind == "ivf" and ann._calibrated_at == 3000 and not ann.needs_calibration()
    for i in range(3000, 3500):  # +17%: nothing measured yet
        space.put(f"r{i}", x[i], None, None)
    space.sync_ann()
    assert space._ann is ann and ann._calibrated_at == 3000
    for i in range(3500, 4000):  # +33%: measured again, the same index kept
        space.put(f"r{i}", x[i], None, None)
    space.sync_ann()
    assert space._ann is ann and ann.kind == "ivf" and ann._calibrated_at == 4000 and ann._trained_at == 3000
    assert ann.calibration is not None and ann.calibration.recall >= SETTINGS.ivf_recall
    assert shortlist_recall(ann, x, blobs(30, seed=16), "cosine") >= 0.99
