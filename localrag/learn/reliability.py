"""How far a namespace's voters can be trusted, read from how often they agree with each other.

Model: each vote on a (query, chunk) pair is right with probability (1 + r) / 2, independently of the
other voters given the truth (Dawid and Skene's model with one accuracy for every voter). Two votes g_u
and g_v by different voters on the same chunk, for near queries, then have E[g_u * g_v] = r * r, so the
weighted mean of such products estimates r squared without knowing any true label:

    rho = (sum of w * g_u * g_v + agreement_prior) / (sum of w * |g_u * g_v| + agreement_prior),  r = sqrt(rho)

shrunk towards full trust by ``agreement_prior`` pseudo-pairs, so that a namespace whose votes never
overlap keeps the plain vote counting, and clipped to [0, 1] (voters who disagree more than chance are
no better than a coin). Votes that agree by chance (random clicks) give r near 0 and move nothing;
20% flipped votes give r near 0.6 (benchmarks/results/feedback.json reports the estimate).

Each voter counts once per chunk in the pairs (a voter's several votes on one chunk share weight 1),
so a loud voter cannot vouch for itself. Only the newest ``MAX_PER_CHUNK`` votes of a chunk are paired,
which bounds the work to O(votes * MAX_PER_CHUNK) vector products; it runs once per feedback generation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

MAX_PER_CHUNK = 64


def agreement(vectors: NDArray[np.float32], chunk_ids: NDArray[np.int64], grades: NDArray[np.float64],
              sources: Sequence[str], similarity: float) -> tuple[float, float]:
    """(sum of weighted vote products, sum of their absolute values) over pairs of votes by different voters
    on the same chunk whose queries have an embedding cosine of at least ``similarity``."""
    if len(chunk_ids) < 2:
        return 0.0, 0.0
    # Votes grouped by chunk, each group in time order (rows come oldest first; the sort is stable).
    order = np.argsort(chunk_ids, kind="stable")
    chunks = chunk_ids[order]
    starts = np.r_[0, np.flatnonzero(np.diff(chunks)) + 1]
    ends = np.r_[starts[1:], len(chunks)]
    group = np.repeat(np.arange(len(starts)), ends - starts)
    keep = ends[group] - np.arange(len(chunks)) <= MAX_PER_CHUNK  # a chunk's newest MAX_PER_CHUNK votes
    order, chunks = order[keep], chunks[keep]
    _, voter = np.unique(np.array([sources[i] for i in order], dtype=object), return_inverse=True)
    voter = voter.astype(np.int64)
    # each voter's votes on a chunk share weight 1
    _, slot, counts = np.unique(np.stack([chunks, voter]), axis=1, return_inverse=True, return_counts=True)
    weighted = grades[order] / counts[slot.ravel()]
    agree = total = 0.0
    # Pairs (i, i + gap) inside a group, gap by gap: vectorised over all groups at once.
    for gap in range(1, min(MAX_PER_CHUNK, len(chunks))):
        first = np.arange(len(chunks) - gap)
        second = first + gap
        paired = (chunks[first] == chunks[second]) & (voter[first] != voter[second])
        if not paired.any():
            if not (chunks[first] == chunks[second]).any():
                break  # no group is longer than this gap
            continue
        first, second = first[paired], second[paired]
        cosine = np.einsum("ij,ij->i", vectors[order[first]], vectors[order[second]])
        near = cosine >= similarity - 1e-6
        products = weighted[first[near]] * weighted[second[near]]
        agree += float(products.sum())
        total += float(np.abs(products).sum())
    return agree, total


def reliability(agree: float, total: float, prior_pairs: float) -> float:
    """r in [0, 1]: the voters' estimated accuracy is (1 + r) / 2; 1 when nothing contradicts full trust."""
    if prior_pairs <= 0 and total <= 0:
        return 1.0
    rho = (agree + prior_pairs) / (total + prior_pairs)
    return math.sqrt(min(1.0, max(0.0, rho)))
