"""Voter reliability from agreement (learn/reliability.py) on small hand-made vote arrays."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from localrag.learn.reliability import MAX_PER_CHUNK, agreement, reliability

NEAR = np.array([1.0, 0.0], dtype=np.float32)
FAR = np.array([0.0, 1.0], dtype=np.float32)


def arrays(rows: list[tuple[np.ndarray, int, float, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    return (np.stack([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.float64), [r[3] for r in rows])


def test_pairs_are_different_voters_on_one_chunk_for_near_queries() -> None:
    rows = [(NEAR, 1, 1.0, "a"), (NEAR, 1, 1.0, "b"),  # one agreeing pair
            (NEAR, 1, -1.0, "a"),  # a's second vote on chunk 1: a's votes there weigh 1/2 each
            (FAR, 1, -1.0, "c"),  # a query far from the others: pairs with nobody
            (NEAR, 2, 1.0, "a"), (NEAR, 3, -1.0, "b")]  # different chunks: no pair
    agree, total = agreement(*arrays(rows), similarity=0.8)
    # pairs on chunk 1: (a+ b+) = +1/2, (a- b+) = -1/2 -> agreement 0 of 1
    assert (agree, total) == pytest.approx((0.0, 1.0))


def test_a_loud_voter_counts_once_per_chunk() -> None:
    quiet = [(NEAR, 1, 1.0, "a"), (NEAR, 1, 1.0, "b")]
    loud = quiet + [(NEAR, 1, 1.0, "a")] * 10
    assert agreement(*arrays(loud), similarity=0.8) == pytest.approx(agreement(*arrays(quiet), similarity=0.8))


def test_reliability_tracks_the_share_of_flipped_votes() -> None:
    rng = random.Random(3)

    def votes(flip: float) -> list[tuple[np.ndarray, int, float, str]]:
        rows = []
        for chunk in range(2000):
            truth = rng.random() < 0.3
            for voter in ("u0", "u1", "u2"):
                up = truth != (rng.random() < flip)
                rows.append((NEAR, chunk, 1.0 if up else -1.0, voter))
        return rows

    for flip in (0.0, 0.2, 0.4):
        r = reliability(*agreement(*arrays(votes(flip)), similarity=0.8), prior_pairs=10.0)
        assert r == pytest.approx(1 - 2 * flip, abs=0.05), flip  # accuracy (1 + r) / 2 = 1 - flip
    coins = [(NEAR, c, rng.choice((1.0, -1.0)), v) for c in range(2000) for v in ("u0", "u1", "u2")]
    assert reliability(*agreement(*arrays(coins), similarity=0.8), prior_pairs=10.0) < 0.15


def test_reliability_trusts_until_contradicted_and_is_clipped() -> None:
    assert reliability(0.0, 0.0, prior_pairs=10.0) == 1.0  # no overlapping votes: full trust
    assert reliability(0.0, 0.0, prior_pairs=0.0) == 1.0
    assert reliability(-5.0, 5.0, prior_pairs=0.0) == 0.0  # worse than chance: no better than a coin
    assert reliability(1.0, 3.0, prior_pairs=0.0) == pytest.approx(math.sqrt(1 / 3))


def brute_force(vectors: np.ndarray, chunk_ids: np.ndarray, grades: np.ndarray, sources: list[str],
                similarity: float) -> tuple[float, float]:
    """Every pair, one by one: the definition agreement() vectorises."""
    agree = total = 0.0
    for chunk in set(chunk_ids.tolist()):
        rows = [i for i in range(len(chunk_ids)) if chunk_ids[i] == chunk][-MAX_PER_CHUNK:]
        share = {s: 1 / sum(sources[i] == s for i in rows) for s in {sources[i] for i in rows}}
        for a, i in enumerate(rows):
            for j in rows[a + 1:]:
                if sources[i] != sources[j] and float(vectors[i] @ vectors[j]) >= similarity - 1e-6:
                    product = grades[i] * share[sources[i]] * grades[j] * share[sources[j]]
                    agree, total = agree + product, total + abs(product)
    return agree, total


def test_agreement_matches_every_pair_counted_one_by_one() -> None:
    rng = np.random.default_rng(5)
    n = 900
    vectors = rng.standard_normal((n, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunk_ids = np.concatenate([rng.integers(0, 200, n - 150), np.full(150, 999)])  # one chunk over the cap
    rng.shuffle(chunk_ids)
    grades = rng.choice([-1.0, -0.5, 0.5, 1.0], n)
    sources = [f"v{rng.integers(0, 6)}" for _ in range(n)]
    expected = brute_force(vectors, chunk_ids, grades, sources, 0.3)
    assert expected[1] > 0
    assert agreement(vectors, chunk_ids, grades, sources, 0.3) == pytest.approx(expected, rel=1e-9)
