"""Self-query: dates read by rules against a fixed now, the catalogue of a real SQLite store, filters proposed
and applied hard or softly, low confidence never applied, and the filter shown in results."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.errors import InvalidInputError
from localrag.learn.catalogue import build_catalogue
from localrag.learn.dates import find_dates
from localrag.learn.selfquery import Proposal, SelfQuery
from localrag.types import Document, SearchRequest

NOW = date(2026, 12, 3)

RECORDS = [
    ("chen-24", "The escrow agreement holds the deposit until delivery.", "Maria Chen", "email", 2024, 20240315, "eml"),
    ("chen-26", "The escrow agreement holds the deposit until delivery.", "Maria Chen", "memo", 2026, 20260310, "pdf"),
    ("okafor-23", "The escrow agreement holds the deposit until delivery.", "John Okafor", "report", 2023, 20230610,
     "pdf"),
    ("nair-25", "The escrow agreement holds the deposit until delivery.", "Priya Nair", "minutes", 2025, 20250101,
     "docx"),
    ("lopez-22", "Solar panels cover the roof of the warehouse.", "Ana Lopez", "report", 2022, 20220420, "pdf"),
]


def _docs() -> list[Document]:
    return [Document(doc_id, text, metadata={"sender": sender, "type": kind, "year": year, "date": day,
                                             "file_type": file_type})
            for doc_id, text, sender, kind, year, day, file_type in RECORDS]


@pytest.fixture
def rag(tmp_path: Path, fake_embedder: Any) -> Any:
    settings = Settings().with_overrides({"learn": {"self_query": "filter"}})
    engine = LocalRAG(tmp_path / "data", embedder=fake_embedder, settings=settings)
    engine.add(_docs())
    engine.self_query.clock = lambda: NOW
    yield engine
    engine.close()


def _span(question: str) -> tuple[date | None, date | None]:
    spans = find_dates(question, NOW)
    assert len(spans) == 1, spans
    return spans[0].start, spans[0].end


@pytest.mark.parametrize(("question", "start", "end"), [
    ("minutes in 2024", date(2024, 1, 1), date(2024, 12, 31)),
    ("what happened last March", date(2026, 3, 1), date(2026, 3, 31)),  # the most recent March before now
    ("notes since 2023", date(2023, 1, 1), None),
    ("mail after 2023", date(2024, 1, 1), None),
    ("reports before 2021", None, date(2020, 12, 31)),
    ("between March 2022 and May 2023", date(2022, 3, 1), date(2023, 5, 31)),
    ("budgets 2021-2023", date(2021, 1, 1), date(2023, 12, 31)),
    ("anything from last year", date(2025, 1, 1), date(2025, 12, 31)),
    ("what changed last month", date(2026, 11, 1), date(2026, 11, 30)),
    ("in Q3 2025", date(2025, 7, 1), date(2025, 9, 30)),
    ("until June 2024", None, date(2024, 6, 30)),
    ("from 2023 on", date(2023, 1, 1), None),
])
def test_dates_are_read_relative_to_now(question: str, start: date | None, end: date | None) -> None:
    assert _span(question) == (start, end)


def test_last_december_asked_in_december_is_the_year_before() -> None:
    spans = find_dates("emails from last December", date(2026, 12, 3))
    assert (spans[0].start, spans[0].end) == (date(2025, 12, 1), date(2025, 12, 31))


@pytest.mark.parametrize("question", ["May I ask about budgets?", "How do bees march?", "from 2023 on the budget"])
def test_words_that_only_look_like_dates(question: str) -> None:
    spans = find_dates(question, NOW)
    assert all(s.end is not None for s in spans)  # "from 2023 on the budget" is 2023, not "since 2023"
    if question != "from 2023 on the budget":
        assert spans == []


def test_catalogue_from_a_real_store_lists_fields_roles_and_values(rag: Any) -> None:
    catalogue = rag.self_query.catalogue("")
    assert catalogue.documents == len(RECORDS)
    fields = catalogue.fields
    assert fields["year"].role == "year" and (fields["year"].low, fields["year"].high) == (2022, 2026)
    assert fields["date"].role == "date" and fields["date"].date_format == "ymd"
    assert fields["sender"].role == "enum"
    assert set(fields["sender"].values) == {"Maria Chen", "John Okafor", "Priya Nair", "Ana Lopez"}
    assert "source" not in fields and "doc_id" not in fields
    assert rag.self_query.catalogue("elsewhere").documents == 0
    rag.add([Document("extra", "Another record.", metadata={"sender": "Zoe Park", "year": 2021})])
    assert "Zoe Park" in rag.self_query.catalogue("").fields["sender"].values  # rebuilt after a write


def test_iso_date_strings_become_the_values_in_range() -> None:
    catalogue = build_catalogue([{"date": "2024-03-02T10:00:00+00:00"}, {"date": "2024-04-09T08:00:00+00:00"},
                                 {"date": "2025-03-01T00:00:00+00:00"}])
    assert catalogue.fields["date"].date_format == "iso"
    proposal = SelfQuery().propose("mail from March 2024", catalogue, NOW)
    assert proposal.filter == {"date": {"$in": ["2024-03-02T10:00:00+00:00"]}}


@pytest.mark.parametrize(("question", "expected"), [
    ("What did Maria Chen say about the escrow?", {"sender": "Maria Chen"}),
    ("What did Okafor write about the escrow?", {"sender": "John Okafor"}),
    ("escrow emails in 2024", {"type": "email", "year": 2024}),
    ("the escrow minutes since 2025", {"type": "minutes", "year": {"$gte": 2025}}),
    ("Is there a PDF on the escrow?", {"file_type": "pdf"}),
    ("the escrow memo from last March", {"type": "memo", "date": {"$gte": 20260301, "$lte": 20260331}}),
    ("What did the 2024 report say?", {"type": "report", "year": 2024}),
])
def test_filters_are_proposed_from_the_catalogue(rag: Any, question: str, expected: dict[str, Any]) -> None:
    assert rag.self_query.propose(question).filter == expected


@pytest.mark.parametrize("question", [
    "What does the escrow agreement hold?", "How do I report a problem with the escrow?",
    "Note the terms of the escrow", "May the deposit be released early?", "Did sales pass 2000 units?",
])
def test_no_filter_where_none_is_implied(rag: Any, question: str) -> None:
    assert rag.self_query.propose(question).filter is None


def test_low_confidence_is_shown_but_never_applied(rag: Any) -> None:
    proposal = rag.self_query.propose("How do I report a problem with the escrow?")
    assert [(c.field, c.clause) for c in proposal.conditions] == [("type", "report")]
    assert proposal.conditions[0].confidence < 0.7 and proposal.filter is None
    result = rag.retrieve([SearchRequest("How do I report a problem with the escrow?", 5)])[0]
    assert result.self_query is not None and result.self_query["applied"] == "no"
    assert result.self_query["conditions"][0]["clause"] == "report"
    assert len(result.hits) == 5  # nothing filtered away
    # a date outside the namespace's years would leave nothing: proposed, not applied
    assert rag.self_query.propose("escrow notes in 2019").filter is None


def test_filter_mode_applies_the_filter_hard(rag: Any) -> None:
    result = rag.retrieve([SearchRequest("What did Maria Chen say about the escrow agreement?", 5)])[0]
    assert {h.doc_id for h in result.hits} == {"chen-24", "chen-26"}
    assert result.self_query == {**result.self_query, "filter": {"sender": "Maria Chen"}, "applied": "filter"}
    assert result.timings["self_query"] >= 0


def test_boost_mode_ranks_matches_first_and_keeps_the_rest(rag: Any) -> None:
    request = SearchRequest("What did Priya Nair say about the escrow agreement?", 5, self_query="boost")
    result = rag.retrieve([request])[0]
    assert result.hits[0].doc_id == "nair-25"
    assert len(result.hits) == 5 and result.self_query is not None and result.self_query["applied"] == "boost"


def test_an_explicit_filter_and_off_leave_the_search_alone(rag: Any) -> None:
    own = rag.retrieve([SearchRequest("What did Maria Chen say about the escrow?", 5, filter={"year": 2023})])[0]
    assert [h.doc_id for h in own.hits] == ["okafor-23"] and own.self_query is None
    off = rag.retrieve([SearchRequest("What did Maria Chen say about the escrow?", 5, self_query="off")])[0]
    assert off.self_query is None and len(off.hits) == 5
    with pytest.raises(InvalidInputError):
        rag.search("escrow", self_query="sometimes")


def test_a_confirming_model_lifts_a_weak_match_and_a_lone_one_stays_below_the_bar() -> None:
    catalogue = build_catalogue([{"type": t} for t in ("report", "memo", "email")])

    class Model:
        def __init__(self, pairs: list[tuple[str, Any]]) -> None:
            self.pairs = pairs

        def propose(self, question: str, catalogue: Any) -> tuple[list[tuple[str, Any]], float]:
            return self.pairs, 0.9

    question = "report escrow"  # "report" alone: a weak cue
    assert SelfQuery().propose(question, catalogue, NOW).filter is None
    assert SelfQuery(Model([("type", "report")])).propose(question, catalogue, NOW).filter == {"type": "report"}
    # "memo" only inside another word: no rule matches it, the model alone is shown but never applied
    lone = SelfQuery(Model([("type", "memo")])).propose("escrow memorandum", catalogue, NOW)
    assert [(c.field, c.clause, c.reason) for c in lone.conditions] == [("type", "memo", "llm")]
    assert lone.conditions[0].confidence < 0.7 and lone.filter is None
    made_up = SelfQuery(Model([("type", "email")])).propose("escrow deposit", catalogue, NOW)
    assert made_up.conditions == ()  # not grounded in the question's words: dropped


def test_proposal_describes_what_responses_show() -> None:
    proposal = Proposal("q")
    assert proposal.describe("filter") == {"filter": None, "applied": "no", "confidence": 0.0, "conditions": []}


def test_answers_carry_the_proposal_into_json_and_the_footer(rag: Any) -> None:
    from localrag.answer.format import answer_dict, format_footer
    from localrag.generate.extractive import ExtractiveGenerator

    rag._generator = ExtractiveGenerator()
    answer = rag.ask("What did John Okafor say about the escrow agreement?", k=3)
    assert answer.self_query is not None and answer.self_query["filter"] == {"sender": "John Okafor"}
    assert {h.doc_id for h in answer.hits} == {"okafor-23"}
    assert answer_dict(answer)["self_query"]["applied"] == "filter"
    assert "self-query filter {'sender': 'John Okafor'}" in format_footer(answer)
