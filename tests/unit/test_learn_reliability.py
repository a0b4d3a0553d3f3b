"""Voter reliability from agreement (learn/reliability.py) on small hand-made vote arrays."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from localrag.learn.reliability import agreement, reliability

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
