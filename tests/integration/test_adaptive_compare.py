"""Comparison questions and spelling correction on the adaptive path (answer/adaptive.py, compare.py,
spelling.py) with real models: SmolLM2-135M (llama.cpp, one thread) and the default embedder. The composition
is checked on parts answered as given (SmolLM2 is too small to be relied on for the years); the whole path is
checked for what the engine guarantees: the rule split, one passage retrieved per option, the corrected word."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sample_data import small_model_settings

from localrag.answer.adaptive import AdaptiveAnswerer, PartAnswer
from localrag.answer.citations import strip_markers
from localrag.answer.questions import plan
from localrag.engine import LocalRAG
from localrag.types import Document

pytestmark = pytest.mark.model

DOCS = [
    Document("golden", "The Golden Gate Bridge was designed by the engineer Joseph Strauss. It was opened to traffic "
             "in 1937.", title="Golden Gate Bridge"),
    Document("bay", "The Bay Bridge was designed by Charles Purcell. The Bay Bridge was opened in 1936, six months "
             "before its neighbour.", title="Bay Bridge"),
    Document("bees", "Honeybees tell each other where flowers are with the waggle dance.", title="Honeybees"),
]
QUESTION = "Which was opened first, the Golden Gate Bridge or the Bay Bridge?"


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRAG]:
    engine = LocalRAG(tmp_path_factory.mktemp("compare") / "data", settings=small_model_settings())
    engine.add(DOCS)
    yield engine
    engine.close()


def _part(rag: LocalRAG, question: str, short: str) -> PartAnswer:
    hits = rag.search(question, k=1)
    context = rag.answers.build_context(question, hits, 256)
    source = context.sources[0]
    return PartAnswer(question, "factoid", short, source.text, source, tuple(hits), 0.9, None)


def test_a_comparison_answer_names_the_winner_first_and_cites_both_passages(rag: LocalRAG) -> None:
    answerer = rag.answers._adaptive_answerer()
    assert isinstance(answerer, AdaptiveAnswerer)
    planned = plan(QUESTION)
    parts = [_part(rag, planned.parts[0], "1937"), _part(rag, planned.parts[1], "1936")]
    assert [p.hits[0].doc_id for p in parts] == ["golden", "bay"]
    answer = answerer._compose(QUESTION, planned, parts, {}, time.perf_counter())
    assert answer.short == "the Bay Bridge" and not answer.abstained
    assert answer.text.startswith("The Bay Bridge [2] (the Golden Gate Bridge: 1937 [1]; the Bay Bridge: 1936 [2]).")
    assert {c.doc_id for c in answer.citations} == {"golden", "bay"}
    # "Which was opened last" wants the later year: the other bridge wins
    later = plan(QUESTION.replace("first", "last"))
    assert answerer._compose(QUESTION, later, parts, {}, time.perf_counter()).short == "the Golden Gate Bridge"
    # an abstained part leaves no winner: the parts are listed
    undecided = answerer._compose(QUESTION, planned, [parts[0], _part(rag, planned.parts[1], "")], {},
                                  time.perf_counter())
    assert undecided.short == "1937" and "do not say" in undecided.text


def test_a_comparison_question_retrieves_one_passage_per_option(rag: LocalRAG) -> None:
    answer = rag.ask(QUESTION)
    assert answer.kind == "multi"
    assert answer.parts == ("When was the Golden Gate Bridge opened?", "When was the Bay Bridge opened?")
    assert {h.doc_id for h in answer.hits} == {"golden", "bay"}
    if answer.short in ("the Bay Bridge", "the Golden Gate Bridge"):  # both years read: the winner leads
        assert strip_markers(answer.text).lower().startswith(answer.short.lower())
        assert {c.doc_id for c in answer.citations} == {"golden", "bay"}


def test_a_misspelled_word_is_corrected_before_searching_and_reported(rag: LocalRAG) -> None:
    answer = rag.ask("Who desgned the Golden Gate Bridge?")
    assert answer.corrected == (("desgned", "designed"),)
    assert answer.hits[0].doc_id == "golden"
    plain = rag.ask("Who designed the Golden Gate Bridge?")
    assert plain.corrected == ()
