"""The winner of a comparison ("Which was founded first, X or Y?") from its parts' short answers.

Each part asked for one option's value (a date or a quantity); the parts are matched to the options
by the words they share, each answer is read as a number (the year of a date; a quantity with its
"million"/"billion"), and the option whose value is the smaller or the larger, as the question asks,
wins. Anything unread (an abstained part, no number, equal values) leaves no winner: the answer then
lists the parts' answers, as for any compound question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from localrag.answer.questions import Comparison
from localrag.answer.sentences import terms

_YEAR = re.compile(r"\b(\d{3,4})\s*(BCE?|B\.C\.)?(?=\b|\s|$)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(thousand|million|billion|trillion)?\b",
                     re.IGNORECASE)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}


def value_of(answer: str, dates: bool) -> float | None:
    """The number ``answer`` gives: a year (negative before the common era) for dates, else a quantity."""
    if dates:
        years = _YEAR.findall(answer)
        if not years:
            return None
        year, era = years[-1]  # "10 July 1856": the year comes last
        return -float(year) if era else float(year)
    match = _NUMBER.search(answer)
    if match is None:
        return None
    scale = _SCALE.get((match.group(2) or "").lower(), 1.0)
    return float(match.group(1).replace(",", "")) * scale


def assign(comparison: Comparison, questions: Sequence[str]) -> list[int] | None:
    """The option each part asks about (indices into ``comparison.options``); None unless the two parts
    name the two options apart."""
    if len(questions) != 2:
        return None
    words = [terms(option) for option in comparison.options]
    shared = [[len(terms(q) & w) for w in words] for q in questions]
    straight, crossed = shared[0][0] + shared[1][1], shared[0][1] + shared[1][0]
    if straight == crossed:
        return None
    return [0, 1] if straight > crossed else [1, 0]


def winner(comparison: Comparison, questions: Sequence[str], answers: Sequence[str]) -> tuple[int, list[int]] | None:
    """(the winning part, the option of each part), or None when the answers do not decide it."""
    options = assign(comparison, questions)
    if options is None or len(answers) != 2 or not all(answers):
        return None
    values = [value_of(a, comparison.dates) for a in answers]
    if values[0] is None or values[1] is None or values[0] == values[1]:
        return None
    smaller = 0 if values[0] < values[1] else 1
    return (smaller if comparison.direction == "min" else 1 - smaller), options
