"""Spelling correction against the corpus vocabulary (answer/spelling.py): a real BM25 index, and the default
embedder's WordPiece vocabulary as the list of common words."""

from __future__ import annotations

import numpy as np
import pytest

from localrag.answer.spelling import Correction, SpellingCorrector
from localrag.index.bm25 import BM25Index

pytestmark = pytest.mark.model

TEXTS = [
    "Survival is at the heart of the concept of workers' rights.",
    "The survival of the school depended on research in the 20th century.",
    "In the 20th century the university led research again.",
    "Workers accomplish more when survival is not at stake.",
    "Tackles are hard to accomplish alone.",
    "Georgia is a state; the counties of Georgia vary in size.",
]


@pytest.fixture(scope="module")
def index() -> BM25Index:
    bm25 = BM25Index()
    bm25.add(np.arange(len(TEXTS), dtype=np.int64), TEXTS)
    return bm25


@pytest.fixture(scope="module")
def speller(real_embedder) -> SpellingCorrector:  # type: ignore[no-untyped-def]
    tokenizer = real_embedder.tokenizer
    return SpellingCorrector(lambda word: tokenizer.count_tokens(word) == 1)


def test_typos_are_corrected_to_the_frequent_corpus_word_one_edit_away(index: BM25Index,
                                                                       speller: SpellingCorrector) -> None:
    fixed, fixes = speller.correct("Survivial is at the heart of what concept?", index.doc_freqs)
    assert fixed == "Survival is at the heart of what concept?"
    assert fixes == (Correction("Survivial", "Survival"),)
    fixed, fixes = speller.correct("Who led research in the 2oth century, and what did workers accomlish?",
                                   index.doc_freqs)
    assert fixed == "Who led research in the 20th century, and what did workers accomplish?"
    assert [f.corrected for f in fixes] == ["20th", "accomplish"]


def test_known_words_real_words_names_and_decades_are_left_alone(index: BM25Index,
                                                                 speller: SpellingCorrector) -> None:
    for question in ("What concept holds survival at its heart?",  # every word known
                     "Why did the workers take a hike?",  # a real word the corpus lacks ("hike" -> "like"?)
                     "What is the population of Liaocheng?",  # a name the corpus lacks
                     "Which counties of Gorgia are largest?",  # capitalised past the first word: a name
                     "What happened in the 1700s?"):  # a decade, not a typo of "1700"
        assert speller.correct(question, index.doc_freqs) == (question, ())


def test_a_correction_needs_a_corpus_word_in_enough_passages(index: BM25Index, real_embedder) -> None:  # type: ignore[no-untyped-def]
    strict = SpellingCorrector(lambda word: real_embedder.tokenizer.count_tokens(word) == 1, min_df=4)
    # "accomplish" is in 2 passages: below min_df 4, so the typo stays
    assert strict.correct("What did workers accomlish?", index.doc_freqs) == ("What did workers accomlish?", ())
