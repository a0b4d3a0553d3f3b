"""Adaptive answers (answer/adaptive.py) with real models: SmolLM2-135M (llama.cpp, one thread) and the
default embedder. SmolLM2 is tiny: these tests check the shape the engine guarantees (type, lead, citations,
parts, abstention before generating), not answer quality; bench_answers.py measures that with the 0.5B model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sample_data import small_model_settings

from localrag.answer.citations import strip_markers
from localrag.engine import LocalRAG
from localrag.types import Answer, Document

pytestmark = pytest.mark.model

DOCS = [
    Document("bridge", "The Golden Gate Bridge was designed by the engineer Joseph Strauss. The bridge opened to "
             "traffic in 1937 and was then the longest suspension bridge in the world.", title="Golden Gate Bridge"),
    Document("bees", "Honeybees tell each other where flowers are with the waggle dance. The angle of the dance "
             "shows the direction relative to the sun.", title="Honeybees"),
    Document("tides", "Tides rise and fall twice a day because the moon pulls on the oceans.", title="Tides"),
]


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRAG]:
    engine = LocalRAG(tmp_path_factory.mktemp("adaptive") / "data", settings=small_model_settings())
    engine.add(DOCS)
    yield engine
    engine.close()


def resolves(answer: Answer, rag: LocalRAG) -> None:
    for citation in answer.citations:
        document = rag.get_document(citation.doc_id)
        assert document.text[citation.quote_start:citation.quote_end] == citation.quote


def test_a_factoid_answer_leads_with_a_short_answer_found_in_its_cited_passage(rag: LocalRAG) -> None:
    answer = rag.ask("Who designed the Golden Gate Bridge?")
    assert answer.kind == "factoid" and answer.parts == ()
    assert [h.doc_id for h in answer.hits] == ["bridge"]  # one passage for a factoid
    if not answer.abstained:  # the short answer must have been found in the passage, else it abstains
        assert answer.short and strip_markers(answer.text).startswith(answer.short[:1].upper() + answer.short[1:])
        assert len(answer.short.split()) <= 12
        assert {c.doc_id for c in answer.citations} == {"bridge"}
        resolves(answer, rag)


def test_a_yes_no_answer_starts_with_yes_or_no_and_cites_the_passage(rag: LocalRAG) -> None:
    answer = rag.ask("Did Joseph Strauss design the Golden Gate Bridge?")
    assert answer.kind == "yesno" and not answer.abstained
    assert answer.short in ("Yes", "No") and answer.text.startswith(answer.short)
    assert answer.usage["completion_tokens"] == 0  # read from the yes/no logits, no text generated
    assert "bridge" in {c.doc_id for c in answer.citations}
    resolves(answer, rag)


def test_a_two_part_question_is_split_and_each_part_retrieves_its_own_passage(rag: LocalRAG) -> None:
    answer = rag.ask("Who designed the Golden Gate Bridge, and what do honeybees use to tell each other where "
                     "flowers are?")
    assert answer.kind == "multi"
    assert answer.parts == ("Who designed the Golden Gate Bridge?",
                            "What do honeybees use to tell each other where flowers are?")
    assert {h.doc_id for h in answer.hits} == {"bridge", "bees"}
    if not answer.abstained:
        numbers = {c.number for c in answer.citations}
        assert numbers and numbers <= {1, 2}
        resolves(answer, rag)


def test_an_out_of_corpus_question_abstains_before_generating(rag: LocalRAG) -> None:
    for question in ("What is the population of Liaocheng?", "Why did the Byzantine senate dissolve?"):
        answer = rag.ask(question)
        assert answer.abstained and answer.citations == (), answer.text
        assert answer.usage.get("completion_tokens", 0) == 0


def test_a_why_question_leads_with_the_reason_then_its_source(rag: LocalRAG) -> None:
    """answer.short_reasons (default): a reason is answered like a factoid, the short answer first."""
    answer = rag.ask("Why do tides rise and fall?")
    assert answer.kind == "factoid" and "tides" in {h.doc_id for h in answer.hits}
    if not answer.abstained:
        assert answer.short and strip_markers(answer.text).startswith(answer.short[:1].upper() + answer.short[1:])
        assert {c.doc_id for c in answer.citations} == {"tides"}
        resolves(answer, rag)


def test_without_short_reasons_why_questions_keep_the_general_path(tmp_path: Path) -> None:
    with LocalRAG(tmp_path / "data", settings=small_model_settings(short_reasons=False)) as engine:
        engine.add(DOCS)
        answer = engine.ask("Why do tides rise and fall?")
    assert answer.kind == "" and answer.short == ""
    if not answer.abstained:
        assert "tides" in {c.doc_id for c in answer.citations}
