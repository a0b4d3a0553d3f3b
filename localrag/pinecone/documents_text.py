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


def bm25(tf: float, doc_len: int, avg_len: float, weight: float) -> float:
    norm = K1 * (1.0 - B + B * doc_len / avg_len) if avg_len > 0 else K1
    return weight * tf / (tf + norm)  # Lucene 8+ drops the constant (k1 + 1) factor


class FieldIndex:
    """One text field of one namespace: postings, lengths and the token sequences (for phrases)."""

    def __init__(self, tokenize: TextTokenizer) -> None:
        self.tokenize = tokenize
        self.postings: dict[str, dict[int, int]] = {}
        self.tokens: dict[int, list[str]] = {}
        self.total_len = 0

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, slot: int, text: str) -> None:
        self.remove(slot)
        words = self.tokenize(text)
        self.tokens[slot] = words
        self.total_len += len(words)
        for term, tf in Counter(words).items():
            self.postings.setdefault(term, {})[slot] = tf

    def remove(self, slot: int) -> None:
        words = self.tokens.pop(slot, None)
        if words is None:
            return
        self.total_len -= len(words)
        for term in set(words):
            posting = self.postings[term]
            del posting[slot]
            if not posting:
                del self.postings[term]

    @property
    def avg_len(self) -> float:
        return self.total_len / len(self.tokens) if self.tokens else 0.0

    def term_scores(self, term: str) -> dict[int, float]:
        posting = self.postings.get(term)
        if not posting:
            return {}
        weight = idf(len(self.tokens), len(posting))
        avg = self.avg_len
        return {slot: bm25(tf, len(self.tokens[slot]), avg, weight) for slot, tf in posting.items()}

    def phrase_scores(self, terms: Sequence[str]) -> dict[int, float]:
        if len(terms) == 1:
            return self.term_scores(terms[0])
        postings = [self.postings.get(t) for t in terms]
        if not terms or any(not p for p in postings):
            return {}
        candidates = set.intersection(*(set(p) for p in postings if p is not None))
        weight = sum(idf(len(self.tokens), len(p)) for p in postings if p is not None)
        avg = self.avg_len
        out: dict[int, float] = {}
        for slot in candidates:
            freq = phrase_count(self.tokens[slot], terms)
            if freq:
                out[slot] = bm25(freq, len(self.tokens[slot]), avg, weight)
        return out

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
