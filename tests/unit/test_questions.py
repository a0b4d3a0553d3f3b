"""Question types and the split of compound questions (answer/questions.py): rules only, no model."""

from __future__ import annotations

import pytest

from localrag.answer.questions import kind_of, plan


@pytest.mark.parametrize(("question", "kind"), [
    ("Who designed the Golden Gate Bridge?", "factoid"),
    ("In what year did the bridge open?", "factoid"),
    ("How many people live in Fresno?", "factoid"),
    ("Survival is at the heart of what concept for workers?", "factoid"),  # the wh-word mid-sentence
    ("The French church in Portarlington was built when?", "factoid"),
    ("Currently, how many votes are needed for a majority?", "factoid"),  # after a leading phrase
    ("After reopening, where will the art pieces be located?", "factoid"),
    ("Why did Tesla move where he did?", "reason"),  # why first: a reason, whatever follows
    ("Is the bridge painted red?", "yesno"),
    ("Did Tesla work for Edison?", "yesno"),
    ("Who won the match in 2010? Was it Asuka?", "yesno"),  # the last sentence asks yes or no
    ("Why is the sky blue?", "reason"),
    ("How do honeybees find flowers?", "reason"),
    ("The name of the engineer who designed the bridge?", "factoid"),  # no question word, but asked
    ("How common were suspension bridges then?", "factoid"),
    ("Name a bridge Strauss designed.", "factoid"),
    ("Bees tell each other the way with a ____?", "factoid"),
    ("Compare the two bridges.", "open"),
    ("Explain the waggle dance.", "open"),
    ("waggle dance direction", "open"),
])
def test_kind_of(question: str, kind: str) -> None:
    assert kind_of(question) == kind
    assert plan(question).kind == kind
    assert plan(question).parts == (question,)


@pytest.mark.parametrize(("question", "parts"), [
    ("Who designed the bridge, and in what year did the ferry stop?",
     ("Who designed the bridge?", "In what year did the ferry stop?")),
    ("Who designed the bridge and when did it open?", ("Who designed the bridge?", "When did it open?")),
    ("What is the capital of France? Who is its mayor?", ("What is the capital of France?", "Who is its mayor?")),
    ("How many people live in Paris; who founded it?", ("How many people live in Paris?", "Who founded it?")),
])
def test_compound_questions_are_split_into_their_parts(question: str, parts: tuple[str, ...]) -> None:
    planned = plan(question)
    assert planned.kind == "multi" and planned.parts == parts and not planned.needs_model


def test_one_asked_fact_is_not_split() -> None:
    # "and" inside one clause joins two subjects of one question, not two questions
    assert plan("Who sang and danced in the show?").parts == ("Who sang and danced in the show?",)
    assert plan("Who won in 2010? Was it Asuka?").kind == "yesno"


def test_a_comparison_the_rules_cannot_split_asks_the_model() -> None:
    planned = plan("Which had more votes, the bridge or the tunnel?")
    assert planned.kind == "multi" and planned.needs_model and planned.parts == (
        "Which had more votes, the bridge or the tunnel?",)
    assert planned.comparison is not None and planned.comparison.options == ("the bridge", "the tunnel")


def test_parts_are_capped() -> None:
    question = "Who built it? When did it open? Where is it? What does it cost?"
    assert plan(question, max_parts=3).parts == ("Who built it?", "When did it open?", "Where is it?")
