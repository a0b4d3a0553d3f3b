"""Conflicting sources (answer/conflicts.py), without a model."""

from __future__ import annotations

import pytest

from localrag.answer.conflicts import conflict_note, find_conflicts, question_kind
from localrag.answer.context import Context, ContextSource


def source(number: int, text: str, doc_id: str) -> ContextSource:
    return ContextSource(number, doc_id, "", "", "", text, 0, len(text), None, (number,),
                         ((number, 0, len(text), None),))


def context(*texts: tuple[str, str]) -> Context:
    return Context(tuple(source(i + 1, text, doc) for i, (doc, text) in enumerate(texts)))


@pytest.mark.parametrize(("question", "kind"), [
    ("When did the museum open?", "date"), ("In what year was it built?", "date"),
    ("How many people live in Oslo?", "number"), ("Who won the match?", "name"),
    ("Is the bridge open at night?", "yes/no"), ("Why do bees dance?", None),
])
def test_the_question_says_what_kind_of_fact_it_wants(question: str, kind: str | None) -> None:
    assert question_kind(question) == kind


def test_two_documents_giving_different_years_conflict() -> None:
    ctx = context(("a", "The museum opened to the public in 1931."), ("b", "The museum opened to the public in 1934."),
                  ("c", "Bees dance to share where flowers are."))
    (conflict,) = find_conflicts("When did the museum open to the public?", ctx)
    assert conflict.kind == "date" and [(s.citation, s.value, s.doc_id) for s in conflict.sides] == [
        (1, "1931", "a"), (2, "1934", "b")]
    assert not any(s.preferred for s in conflict.sides)
    assert conflict_note([conflict]) == "The sources disagree: 1931 [1]; 1934 [2]."


def test_agreeing_or_silent_documents_are_not_flagged() -> None:
    agree = context(("a", "The museum opened to the public in 1934, after a long delay."),
                    ("b", "In 1934 the museum opened to the public."))
    assert find_conflicts("When did the museum open to the public?", agree) == ()
    # a passage that does not speak of what was asked gives no side
    silent = context(("a", "The museum opened to the public in 1934."), ("b", "The harbour froze over in 1931."))
    assert find_conflicts("When did the museum open to the public?", silent) == ()
    # a passage near the topic that mentions another year says something else: not the other side
    nearby = context(("a", "The Harbor Museum opened to the public in 1934 after a long delay."),
                     ("b", "The museum's new wing, paid for by the city council, was finished in 1958 after "
                           "a long public debate about the museum."))
    assert find_conflicts("When did the Harbor Museum open to the public?", nearby) == ()
    # one document cannot disagree with itself
    same = context(("a", "The museum opened to the public in 1931."), ("a", "The museum opened to the public in 1934."))
    assert find_conflicts("When did the museum open to the public?", same) == ()


def test_names_numbers_and_yes_no() -> None:
    names = context(("a", "Asuka won the women's match at WrestleMania."),
                    ("b", "Charlotte Flair won the women's match at WrestleMania."))
    (conflict,) = find_conflicts("Who won the women's match at WrestleMania?", names)
    assert {s.value for s in conflict.sides} == {"Asuka", "Charlotte Flair"}
    counts = context(("a", "The hive holds about 20,000 bees in winter."),
                     ("b", "In winter the hive holds 50,000 bees."))
    assert {s.value for s in find_conflicts("How many bees does the hive hold in winter?", counts)[0].sides} == {
        "20000", "50000"}
    yes_no = context(("a", "The bridge is open to cyclists at night."),
                     ("b", "The bridge is not open to cyclists at night."))
    assert {s.value for s in find_conflicts("Is the bridge open to cyclists at night?", yes_no)[0].sides} == {
        "yes", "no"}


def test_precedence_by_date_or_priority() -> None:
    ctx = context(("old", "The museum opened to the public in 1931."),
                  ("new", "The museum opened to the public in 1934."))
    meta = {"old": {"date": "1990-04-01", "priority": 5}, "new": {"date": "2021-09-15", "priority": 1}}
    by_date = find_conflicts("When did the museum open to the public?", ctx, meta, precedence="date")[0]
    assert [(s.doc_id, s.preferred) for s in by_date.sides] == [("new", True), ("old", False)]
    assert conflict_note([by_date]) == "The sources disagree: 1934 [2] (preferred); 1931 [1]."
    by_priority = find_conflicts("When did the museum open to the public?", ctx, meta, precedence="priority")[0]
    assert [(s.doc_id, s.preferred) for s in by_priority.sides] == [("old", True), ("new", False)]
    # the field missing everywhere: no side preferred, the order kept
    plain = find_conflicts("When did the museum open to the public?", ctx, {}, precedence="date")[0]
    assert [s.doc_id for s in plain.sides] == ["old", "new"] and not any(s.preferred for s in plain.sides)
