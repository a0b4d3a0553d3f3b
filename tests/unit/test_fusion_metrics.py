from __future__ import annotations

import math

import pytest

from localrag.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from localrag.index.fusion import rrf, weighted


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = dict(rrf([[(1, 9.0), (2, 8.0)], [(2, 0.5), (3, 0.4)]], k=60))
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1] == pytest.approx(1 / 61)
    assert fused[3] == pytest.approx(1 / 62)
    assert rrf([[(1, 9.0), (2, 8.0)], [(2, 0.5), (3, 0.4)]])[0][0] == 2


def test_weighted_normalises_each_side() -> None:
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    keyword = [(3, 30.0), (4, 10.0)]
    fused = dict(weighted(dense, keyword, alpha=0.5))
    assert fused[1] == pytest.approx(0.5)
    assert fused[3] == pytest.approx(0.5)  # dense floor 0 plus keyword top 1
    assert fused[2] == pytest.approx(0.25)
    assert fused[4] == pytest.approx(0.0)
    assert [k for k, _ in weighted(dense, keyword, alpha=1.0)][:1] == [1]
    assert [k for k, _ in weighted(dense, keyword, alpha=0.0)][:1] == [3]


def test_ndcg_graded_with_log2_discount() -> None:
    qrels = {"a": 2, "b": 1, "c": 0}
    assert ndcg_at_k(["a", "b"], qrels, 10) == pytest.approx(1.0)
    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["b", "a"], qrels, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["x", "y"], qrels, 10) == 0.0
    assert ndcg_at_k(["x", "a"], qrels, 1) == 0.0


def test_recall_mrr_percentile() -> None:
    qrels = {"a": 1, "b": 1}
    assert recall_at_k(["a", "x", "b"], qrels, 2) == 0.5
    assert recall_at_k(["a", "x", "b"], qrels, 3) == 1.0
    assert mrr_at_k(["x", "y", "b"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x"], qrels, 10) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 95) == 5.0
