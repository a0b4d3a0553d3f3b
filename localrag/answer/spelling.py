"""Misspelled question words corrected against the corpus vocabulary (answer.spelling).

A question word the corpus does not know ("Survivial", "2oth") costs twice on the adaptive path:
retrieval misses the passage that spells it right, and the relevance bar (adaptive.relevance_of)
counts the rarest word of the question as absent, so the answerable question is abstained on.
Each such word is replaced by the corpus word one edit away (a deleted, swapped, replaced or inserted
letter or digit, the first letter kept) whose BM25 term is in the most passages, when that term is in at
least ``min_df`` passages.

A word the corpus lacks is often a real word ("hike", "mace", "tons") or a name, and an out-of-corpus
question must still be abstained on, so a word is corrected only when it is not a word of ``is_word``'s
vocabulary (the embedder's WordPiece vocabulary: ~30,000 common English words and pieces) and the
correction is. Left alone too: capitalised words past the question's first word (names), words shorter
than ``min_length``, numbers and decades ("1700s"). Distance 1 only: distance 2 has ~250,000 candidates
per word, and short names two edits from a corpus word are common.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from localrag.index.tokenize import TextTokenizer

if TYPE_CHECKING:
    from localrag.engine import LocalRAG

_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:s|st|nd|rd|th)?")
_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"

DocFreq = Callable[[str], tuple[int, list[int]]]


@dataclass(frozen=True, slots=True)
class Correction:
    word: str  # as the question wrote it
    corrected: str


def _edits(word: str) -> list[str]:
    """Every string one edit from ``word`` (Norvig's edits1), in a fixed order."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    swaps = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in _LETTERS if c != b[0]]
    inserts = [a + c + b for a, b in splits for c in _LETTERS]
    return list(dict.fromkeys(deletes + swaps + replaces + inserts))


class SpellingCorrector:
    """Corrects a question's unknown words with ``doc_freq`` (``BM25Index.doc_freqs`` of the namespace);
    ``is_word(w)``: whether ``w`` is a common word (e.g. one WordPiece token of the embedder's vocabulary)."""

    def __init__(self, is_word: Callable[[str], bool], tokenizer: TextTokenizer | None = None, *, min_df: int = 2,
                 min_length: int = 4) -> None:
        self.is_word = is_word
        self.tokenizer = tokenizer if tokenizer is not None else TextTokenizer()
        self.min_df = min_df
        self.min_length = min_length

    def correct(self, question: str, doc_freq: DocFreq) -> tuple[str, tuple[Correction, ...]]:
        """The question with its unknown words corrected, and the corrections made (none: the question)."""
        fixes: list[Correction] = []
        pieces: list[str] = []
        last = 0
        for i, match in enumerate(_WORD.finditer(question)):
            word = match.group()
            fixed = self._word(word, doc_freq, first=i == 0)
            if fixed is not None:
                pieces += [question[last:match.start()], fixed]
                last = match.end()
                fixes.append(Correction(word, fixed))
        if not fixes:
            return question, ()
        return "".join(pieces) + question[last:], tuple(fixes)

    def _word(self, word: str, doc_freq: DocFreq, *, first: bool) -> str | None:
        if len(word) < self.min_length or _NUMBER.fullmatch(word) or (word[0].isupper() and not first):
            return None
        tokens = self.tokenizer(word)
        if len(tokens) != 1 or doc_freq(word)[1] != [0]:  # a stopword, or a word the corpus knows
            return None
        lower = word.lower()
        if self.is_word(lower):  # a real word the corpus lacks, not a typo
            return None
        # the first letter kept: typos there are rare, and changing it turns words into others ("hike" -> "like")
        candidates = [c for c in _edits(lower) if c[:1] == lower[:1] and len(self.tokenizer(c)) == 1]
        if not candidates:
            return None
        _, dfs = doc_freq(" ".join(candidates))
        if len(dfs) != len(candidates):  # the tokenizer split a candidate after all: no safe alignment
            return None
        ranked = sorted(((df, c) for df, c in zip(dfs, candidates, strict=True) if df >= self.min_df),
                        key=lambda pair: -pair[0])  # stable: ties keep the edits' fixed order
        best = next((c for _, c in ranked if self.is_word(c)), None)
        if best is None:
            return None
        return best[0].upper() + best[1:] if word[0].isupper() else best


def speller_for(rag: LocalRAG) -> SpellingCorrector | None:
    """A corrector whose common words are the single WordPiece tokens of ``rag``'s embedder; None when the
    embedder has no such tokenizer (then nothing is corrected)."""
    tokenizer = getattr(rag.embedder, "tokenizer", None)
    count = getattr(tokenizer, "count_tokens", None)
    if not callable(count):
        return None
    return SpellingCorrector(lambda word: count(word) == 1)
