"""Claim grounding in the ask pipeline: statuses, the flag/drop/abstain policies, conflicts and the JSON form.

A scripted generator writes the answer and a scripted judge gives the model's margins (unit tests of the
pipeline's layer; the real model's judgements are tested in tests/integration/test_grounding.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fakes
import pytest

from localrag.answer.context import Context, ContextSource
from localrag.answer.format import answer_dict, format_claims
from localrag.answer.grounding import apply_policy, ground
from localrag.engine import LocalRAG
from localrag.generate.prompts import DEFAULT_ABSTAIN
from localrag.types import Claim, Document

BRIDGE = Document("bridge", "The Golden Gate Bridge opened to traffic in 1937. Its chief engineer was Joseph Strauss.",
                  title="Bridge")
TIDES = Document("tides", "Tides rise and fall twice a day because the moon pulls on the oceans.", title="Tides")
OLD = Document("old", "The Harbor Museum opened to the public in 1931.", metadata={"date": "1990-01-01"})
NEW = Document("new", "The Harbor Museum opened to the public in 1934.", metadata={"date": "2021-01-01"})


class Scripted(fakes.Scripted):
    name = "llamacpp"  # the claim judge runs only on answers written by the llama.cpp provider


class Judge:
    """Says yes (margin +3) to claims containing a word of ``yes``, no (-3) otherwise."""

    def __init__(self, *yes: str) -> None:
        self.yes = yes
        self.calls: list[tuple[str, str]] = []

    def margins(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.calls.extend(pairs)
        return [3.0 if any(w in claim for w in self.yes) else -3.0 for _, claim in pairs]


def answering(rag: LocalRAG, reply: str, judge: Any, **answer: Any) -> LocalRAG:
    rag.settings = rag.settings.with_overrides({"answer": {"k": 2, **answer}})
    rag._generator = Scripted(reply)
    rag._answers = None
    rag.answers._judge = judge
    return rag


@pytest.fixture
def corpus(fake_rag: LocalRAG) -> LocalRAG:
    fake_rag.add([BRIDGE, TIDES])
    return fake_rag


TWO = "The Golden Gate Bridge opened to traffic in 1937 [1]. Joseph Strauss painted it gold every summer [1]."


def test_flag_keeps_the_text_and_marks_each_claim(corpus: LocalRAG) -> None:
    judge = Judge("opened")
    answer = answering(corpus, TWO, judge).ask("When did the Golden Gate Bridge open to traffic?")
    assert answer.text == TWO and not answer.abstained
    first, second = answer.claims
    assert (first.status, second.status) == ("supported", "unsupported")
    assert first.citations == (1,) and first.score > 0.9 and second.score < 0.1
    assert answer.text[first.start:first.end] == "The Golden Gate Bridge opened to traffic in 1937 [1]."
    assert len(judge.calls) == 2 and "grounding" in answer.timings
    data = answer_dict(answer)
    assert data["claims"][1] == {"text": "Joseph Strauss painted it gold every summer.", "start": second.start,
                                 "end": second.end, "status": "unsupported", "citations": [1],
                                 "score": second.score}
    assert "[unsupported] Joseph Strauss painted it gold every summer. [1]" in format_claims(answer)


def test_drop_removes_failed_claims_and_renumbers_the_citations(corpus: LocalRAG) -> None:
    reply = "The moon pulls on the oceans [2]. The Golden Gate Bridge opened in 1936 [1]. Tides rise twice a day [2]."
    answer = answering(corpus, reply, Judge("moon", "Tides", "1936"), grounding_policy="drop").ask(
        "Why are there tides and when did the bridge open?")
    # 1936 is not in the passage while it holds another year: contradicted by the rules, whatever the judge says
    assert answer.text == "The moon pulls on the oceans [1]. Tides rise twice a day [1]."
    assert [c.status for c in answer.claims] == ["supported", "supported"]
    assert all(answer.text[c.start:c.end].endswith("[1].") for c in answer.claims)
    assert [(c.number, c.doc_id) for c in answer.citations] == [(1, "tides")] * len(answer.citations)


def test_abstain_withholds_an_answer_whose_core_claim_fails(corpus: LocalRAG) -> None:
    reply = "The Golden Gate Bridge did not open to traffic in 1937 [1]. Its chief engineer was Joseph Strauss [1]."
    answer = answering(corpus, reply, Judge("engineer", "open"), grounding_policy="abstain").ask(
        "When did the Golden Gate Bridge open to traffic?")
    assert answer.abstained and answer.text == DEFAULT_ABSTAIN and answer.citations == ()
    assert answer.claims[0].status == "contradicted"  # negation on the claim's side only
    # the core claim holds: kept, the later failure only flagged
    ok = answering(corpus, TWO, Judge("opened"), grounding_policy="abstain").ask("When did the bridge open?")
    assert not ok.abstained and ok.text == TWO


def test_grounding_off_and_no_judge(corpus: LocalRAG) -> None:
    judge = Judge("opened")
    off = answering(corpus, TWO, judge, grounding=False).ask("When did the Golden Gate Bridge open?")
    assert off.claims == () and judge.calls == []
    # without a llama.cpp model (judge None), rules and word overlap decide: the invention is unsupported
    plain = answering(corpus, TWO, None, grounding=True).ask("When did the Golden Gate Bridge open?")
    assert [c.status for c in plain.claims] == ["supported", "unsupported"]


def test_conflicting_sources_are_named_and_cited_in_the_answer(fake_rag: LocalRAG) -> None:
    fake_rag.add([OLD, NEW])
    reply = "The Harbor Museum opened to the public in 1934."  # the engine cites the passage saying so
    answer = answering(fake_rag, reply, Judge("opened"), conflict_precedence="date").ask(
        "When did the Harbor Museum open to the public?")
    (conflict,) = answer.conflicts
    new, old = conflict.sides
    assert (new.doc_id, new.value, new.preferred, old.doc_id, old.value) == ("new", "1934", True, "old", "1931")
    assert answer.text.endswith(f"The sources disagree: 1934 [{new.citation}] (preferred); 1931 [{old.citation}].")
    assert {c.doc_id for c in answer.citations} == {"old", "new"}
    assert answer_dict(answer)["conflicts"] == [{"topic": "When did the Harbor Museum open to the public?",
                                                 "kind": "date", "sides": [
        {"citation": new.citation, "value": "1934", "doc_id": "new", "preferred": True},
        {"citation": old.citation, "value": "1931", "doc_id": "old", "preferred": False}]}]
    off = answering(fake_rag, reply, Judge("opened"), conflicts=False).ask("When did the Harbor Museum open?")
    assert off.conflicts == () and "disagree" not in off.text


def source(number: int, text: str) -> ContextSource:
    return ContextSource(number, f"d{number}", "", "", "", text, 0, len(text), None, (number,),
                         ((number, 0, len(text), None),))


def test_only_the_first_claims_go_to_the_judge() -> None:
    context = Context((source(1, BRIDGE.text),))
    text = " ".join(f"The Golden Gate Bridge opened to traffic in 1937, said guide {i} [1]." for i in range(5))
    judge = Judge("opened")
    claims = ground(text, context, judge, min_score=0.25, max_claims=2)
    assert len(claims) == 5 and len(judge.calls) == 2


def test_drop_with_every_claim_failed_abstains() -> None:
    claims = (Claim("A b c d.", 0, 10, "unsupported", (1,), 0.1),)
    assert apply_policy("A b c d [1].", claims, "drop")[3] is True
    assert apply_policy("A b c d [1].", claims, "flag") == ("A b c d [1].", claims, {}, False)
