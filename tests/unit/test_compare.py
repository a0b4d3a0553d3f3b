"""Comparison questions: the rules that read them (answer/questions.py) and the winner of their parts'
answers (answer/compare.py)."""

from __future__ import annotations

from localrag.answer.compare import assign, value_of, winner
from localrag.answer.questions import Comparison, comparison_of, plan


def test_a_which_first_question_is_split_by_the_rules_into_one_part_per_option() -> None:
    planned = plan("Which was founded first, the University of Chicago or Harvard University?")
    assert planned.kind == "multi" and not planned.needs_model
    assert planned.parts == ("When was the University of Chicago founded?", "When was Harvard University founded?")
    assert planned.comparison == Comparison(("the University of Chicago", "Harvard University"), "min", True)
    assert plan("Who was born last, Tesla or Edison?").comparison == Comparison(("Tesla", "Edison"), "max", True)


def test_an_adjective_comparison_is_split_by_what_the_adjective_asks() -> None:
    planned = plan("Which river is longer, the Rhine or the Danube?")
    assert not planned.needs_model and planned.parts == ("How long is the Rhine?", "How long is the Danube?")
    assert planned.comparison == Comparison(("the Rhine", "the Danube"), "max", False)
    assert comparison_of("Which is older, the bridge or the tunnel?") == (
        Comparison(("the bridge", "the tunnel"), "min", True),
        ("When was the bridge founded?", "When was the tunnel founded?"))
    assert comparison_of("Who is younger, Tesla or Edison?") == (
        Comparison(("Tesla", "Edison"), "max", True), ("When was Tesla born?", "When was Edison born?"))
    # "fewer" says which wins but not what to ask: the model writes the parts, the winner is still read
    assert comparison_of("Which has fewer members, the club or the team?") == (
        Comparison(("the club", "the team"), "min", False), ())
    assert comparison_of("Who designed the bridge?") is None


def test_values_are_read_as_years_or_quantities() -> None:
    assert value_of("10 July 1856", dates=True) == 1856
    assert value_of("500 BC", dates=True) == -500
    assert value_of("the 13th century", dates=True) is None
    assert value_of("about 1,230 km", dates=False) == 1230
    assert value_of("2.5 million people", dates=False) == 2_500_000


def test_the_option_with_the_wanted_value_wins() -> None:
    comparison = Comparison(("Nikola Tesla", "Zhu Shijie"), "min", True)
    parts = ("When was Nikola Tesla born?", "When was Zhu Shijie born?")
    assert winner(comparison, parts, ["10 July 1856", "1249"]) == (1, [0, 1])
    assert winner(Comparison(comparison.options, "max", True), parts, ["1856", "1249"]) == (0, [0, 1])
    # the model may write the parts in the other order: they are matched to the options by their words
    assert assign(comparison, parts[::-1]) == [1, 0]
    assert winner(comparison, parts[::-1], ["1249", "1856"]) == (0, [1, 0])
    # undecided: an abstained part, no number, or equal values
    assert winner(comparison, parts, ["1856", ""]) is None
    assert winner(comparison, parts, ["1856", "long ago"]) is None
    assert winner(comparison, parts, ["1856", "1856"]) is None
