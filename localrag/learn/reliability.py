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
which bounds the work to O(chunks * MAX_PER_CHUNK^2).
"""

from __future__ import annotations

import math
from collections import Counter
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
    order = np.argsort(chunk_ids, kind="stable")  # rows come oldest first: each group stays in time order
    bounds = np.flatnonzero(np.diff(chunk_ids[order])) + 1
    agree = total = 0.0
    for group in np.split(order, bounds):
        group = group[-MAX_PER_CHUNK:]
        if len(group) < 2:
            continue
        voters = [sources[i] for i in group]
        if len(set(voters)) < 2:
            continue
        counts = Counter(voters)
        weight = np.array([1.0 / counts[v] for v in voters])
        g = grades[group] * weight
        near = (vectors[group] @ vectors[group].T) >= similarity - 1e-6
        other = np.array(voters, dtype=object)[:, None] != np.array(voters, dtype=object)[None, :]
        pairs = np.triu(near & other, 1)
        products = np.outer(g, g)[pairs]
        agree += float(products.sum())
        total += float(np.abs(products).sum())
    return agree, total


def reliability(agree: float, total: float, prior_pairs: float) -> float:
    """r in [0, 1]: the voters' estimated accuracy is (1 + r) / 2; 1 when nothing contradicts full trust."""
    if prior_pairs <= 0 and total <= 0:
        return 1.0
    rho = (agree + prior_pairs) / (total + prior_pairs)
    return math.sqrt(min(1.0, max(0.0, rho)))
