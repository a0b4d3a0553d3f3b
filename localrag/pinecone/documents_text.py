"""Full-text search for document indexes: analyzers and an incremental BM25 index per field.

BM25 is Lucene's (8 and later): ``idf * tf / (tf + k1 * (1 - b + b * len / avg_len))`` with
``k1 = 1.2``, ``b = 0.75``, ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``, ``N`` the documents that
have the field and ``n`` those containing the term, lengths in tokens. A
phrase scores as one term whose frequency is the phrase's and whose idf is the sum of its
terms' idfs (Lucene's PhraseQuery). Postings are ``term -> {slot: tf}`` dicts updated on every
write, so a query touches only the postings of its own terms.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from localrag.index.tokenize import TextTokenizer
from localrag.pinecone.documents_schema import FullText

K1 = 1.2
B = 0.75
SPARSE_DIMENSIONS = 2**31  # the hashed vocabulary of the local sparse encoder


def analyzer(config: FullText) -> TextTokenizer:
    """The tokenizer a field's full-text settings describe (Unicode words, casefolded)."""
    return TextTokenizer(stem=config.stemming, stopwords=config.stop_words, language=config.language)


def idf(docs: int, with_term: int) -> float:
    return math.log(1.0 + (docs - with_term + 0.5) / (with_term + 0.5))


Scored = tuple[NDArray[np.int64], NDArray[np.float64]]  # (slots ascending, scores)
EMPTY: Scored = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))


class FieldIndex:
    """One text field of one namespace: postings, lengths and the token sequences (for phrases).

    Postings are dicts (cheap to update per write); a term's postings are also cached as arrays,
    dropped when a write touches the term, so scoring a term is a few vector operations.
    """

    def __init__(self, tokenize: TextTokenizer) -> None:
        self.tokenize = tokenize
        self.postings: dict[str, dict[int, int]] = {}
        self.tokens: dict[int, list[str]] = {}
        self.total_len = 0
        self._lengths = np.zeros(64, dtype=np.float64)
        self._arrays: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, slot: int, text: str) -> None:
        self.remove(slot)
        words = self.tokenize(text)
        self.tokens[slot] = words
        self.total_len += len(words)
        if slot >= len(self._lengths):
            self._lengths = np.resize(self._lengths, max(2 * len(self._lengths), slot + 1))
        self._lengths[slot] = len(words)
        for term, tf in Counter(words).items():
            self.postings.setdefault(term, {})[slot] = tf
            self._arrays.pop(term, None)

    def remove(self, slot: int) -> None:
        words = self.tokens.pop(slot, None)
        if words is None:
            return
        self.total_len -= len(words)
        for term in set(words):
            posting = self.postings[term]
            del posting[slot]
            self._arrays.pop(term, None)
            if not posting:
                del self.postings[term]

    @property
    def avg_len(self) -> float:
        return self.total_len / len(self.tokens) if self.tokens else 0.0

    def _posting(self, term: str) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
        cached = self._arrays.get(term)
        if cached is None:
            posting = self.postings.get(term)
            if not posting:
                return None
            slots = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            order = np.argsort(slots)
            cached = self._arrays[term] = (slots[order], tfs[order])
        return cached

    def _bm25(self, slots: NDArray[np.int64], tf: NDArray[np.float64], weight: float) -> NDArray[np.float64]:
        avg = self.avg_len
        lengths = self._lengths[slots]
        norm = K1 * (1.0 - B + B * lengths / avg) if avg > 0 else np.full(len(slots), K1)
        return weight * tf / (tf + norm)  # Lucene 8+ drops the constant (k1 + 1) factor

    def term_scores(self, term: str) -> Scored:
        posting = self._posting(term)
        if posting is None:
            return EMPTY
        slots, tfs = posting
        return slots, self._bm25(slots, tfs, idf(len(self.tokens), len(slots)))

    def phrase_scores(self, terms: Sequence[str]) -> Scored:
        if len(terms) == 1:
            return self.term_scores(terms[0])
        postings = [self._posting(t) for t in terms]
        if not terms or any(p is None for p in postings):
            return EMPTY
        candidates = postings[0][0] if postings[0] is not None else EMPTY[0]
        weight = 0.0
        for posting in postings:
            assert posting is not None
            candidates = np.intersect1d(candidates, posting[0], assume_unique=True)
            weight += idf(len(self.tokens), len(posting[0]))
        freqs = np.asarray([phrase_count(self.tokens[int(s)], terms) for s in candidates], dtype=np.float64)
        found = freqs > 0
        slots = candidates[found].astype(np.int64)
        return slots, self._bm25(slots, freqs[found], weight)

    def has_phrase(self, slot: int, terms: Sequence[str]) -> bool:
        words = self.tokens.get(slot)
        return bool(words) and bool(terms) and phrase_count(words or [], terms) > 0

    def has_terms(self, slot: int, terms: Iterable[str], *, every: bool) -> bool:
        present = [slot in self.postings.get(t, {}) for t in terms]
        return bool(present) and (all(present) if every else any(present))


def phrase_count(words: Sequence[str], terms: Sequence[str]) -> int:
    n = len(terms)
    first = terms[0]
    return sum(1 for i in range(len(words) - n + 1) if words[i] == first and list(words[i:i + n]) == list(terms))
