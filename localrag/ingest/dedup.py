"""Near-duplicate documents: MinHash over shingles of normalised words.

Why MinHash and not an exact hash of normalised text: the duplicates real folders hold are the same
page in two renderings (Sphinx's ``page.html`` and ``_sources/page.rst.txt``), which differ in
markup that survives any cheap normalisation (``.. note::``, backticks, link targets, a navigation
bar), so their texts are never byte-equal. Measured on this machine's Debian docs with this
module: ``python-policy.html`` against its plain-text rendering shares 0.96 of its word 3-shingles
(signature estimate 0.94), while the closest distinct pages are 0.73 (Node.js's API index against a
short page that is mostly the same navigation; the other 64 pages at most 0.44) and 0.18 (valgrind's
40 pages), hence the 0.8 threshold. A 128-value signature estimates Jaccard within ~0.04 (one
standard error) and compares against 10,000 stored signatures in one numpy expression, so no LSH
index is needed at a laptop's scale.
SimHash was the other candidate; a MinHash estimate is directly a share of shingles, which keeps the
threshold explainable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

import numpy as np

PERMUTATIONS = 128
SHINGLE = 3
THRESHOLD = 0.8  # estimated Jaccard at or above which a document is a near-duplicate
MIN_SHINGLES = 20  # short texts share stock phrases; judging them would link unrelated notes

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_PRIME = np.uint64((1 << 61) - 1)
_rng = np.random.default_rng(1919)  # fixed: signatures must be comparable across processes and versions
_A = _rng.integers(1, (1 << 61) - 1, size=PERMUTATIONS, dtype=np.uint64)
_B = _rng.integers(0, (1 << 61) - 1, size=PERMUTATIONS, dtype=np.uint64)


def shingles(text: str) -> np.ndarray:
    words = _WORD.findall(text.lower())
    grams = {" ".join(words[i : i + SHINGLE]) for i in range(max(len(words) - SHINGLE + 1, 0))}
    hashes = [int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams]
    return np.array(hashes, dtype=np.uint64) % _PRIME


def signature(text: str) -> bytes | None:
    """The MinHash signature of ``text`` (None when the text is too short to judge)."""
    values = shingles(text)
    if len(values) < MIN_SHINGLES:
        return None
    # (a*x + b) mod p, computed in float-free uint64 arithmetic: a*x may wrap, which keeps the family
    # a valid (if not textbook) universal hash, and identical on every machine.
    with np.errstate(over="ignore"):
        hashed = (values[None, :] * _A[:, None] + _B[:, None]) % _PRIME
    return np.asarray(hashed.min(axis=1), dtype=np.uint64).tobytes()


class SignatureIndex:
    """The signatures of indexed documents, grown in place (doubling) as a sync indexes more, so each
    new document is compared against all of them in one numpy expression with no copying."""

    def __init__(self, ids: list[str], signatures: np.ndarray) -> None:
        self.ids = list(ids)
        self._rows = np.zeros((max(len(ids), 64), PERMUTATIONS), dtype=np.uint64)
        if len(ids):
            self._rows[: len(ids)] = signatures
        self._where = {doc_id: i for i, doc_id in enumerate(self.ids)}

    def add(self, doc_id: str, sig: bytes) -> None:
        if len(self.ids) == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        self._rows[len(self.ids)] = np.frombuffer(sig, dtype=np.uint64)
        self._where[doc_id] = len(self.ids)
        self.ids.append(doc_id)

    def best_match(self, sig: bytes, exclude: Collection[str] = ()) -> tuple[str, float] | None:
        """The stored document most similar to ``sig`` (other than ``exclude``) when it reaches ``THRESHOLD``."""
        if not self.ids:
            return None
        mine = np.frombuffer(sig, dtype=np.uint64)
        similarity = (self._rows[: len(self.ids)] == mine[None, :]).mean(axis=1)
        for doc_id in exclude:  # a changed file is never a duplicate of its own earlier version
            if doc_id in self._where:
                similarity[self._where[doc_id]] = -1.0
        best = int(np.argmax(similarity))
        if similarity[best] >= THRESHOLD:
            return self.ids[best], float(similarity[best])
        return None
