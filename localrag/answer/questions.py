"""Question types from cheap surface features, and the split of a compound question into parts.

The type picks the answer's shape and how much context it gets (answer/adaptive.py):

- ``factoid``: a wh-question asking for a name, number, date or short phrase: one passage, the
  answer first in a few words, the source sentence after it;
- ``yesno``: the last sentence opens with an auxiliary verb ("Is ...?", "Did ...?"): the answer
  starts with "Yes" or "No";
- ``multi``: two or more asked facts ("Who designed the bridge, and when did it open?", two
  questions in one message) or a comparison ("Which is older, X or Y?", "Which was founded first,
  X or Y?"): each part is retrieved and answered on its own, then composed; a comparison's answer
  names the option that wins (``Comparison``: the options, and whether the smaller or larger value wins);
- ``reason``: "Why ...?", "How did ...?": with ``answer.short_reasons`` answered like a factoid (the reason
  or manner first in a few words, its source sentence after it), else by the general answer prompt;
- ``open``: explain, describe, summarise ... and keywords with no question mark: the general answer prompt.

Rules only, no model: they run on every question, and a wrong ``open`` costs nothing over
the general path. A comparison the rules cannot split is marked ``needs_model`` so the caller may
ask the language model for the parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

QuestionKind = Literal["factoid", "yesno", "multi", "reason", "open"]

_AUX = ("is", "are", "was", "were", "do", "does", "did", "can", "could", "has", "have", "had", "will",
        "would", "should", "shall", "may", "might", "must", "am", "isn't", "aren't", "wasn't", "weren't",
        "doesn't", "didn't", "don't", "hasn't", "haven't", "can't")
_HOW_MUCH = r"how\s+(?:many|much|long|old|far|big|large|tall|often|quickly|soon|fast|wide|deep|high|heavy)"
_WH = rf"(?:who|whom|whose|when|where|which|what|{_HOW_MUCH})"
# a wh-word, optionally after a preposition ("In what year", "By whom")
_WH_LEAD = rf"(?:(?:in|on|at|by|from|to|for|during|of|with|after|before|since)\s+)?{_WH}\b"
_WH_START = re.compile(rf"^\s*{_WH_LEAD}", re.IGNORECASE)
# "Why ...?", "How did ...?": a reason or a manner, asked of one passage
_REASON_START = re.compile(r"^\s*(?:why|how\s+(?:do|does|did|is|are|was|were|can|could|should|would))\b",
                           re.IGNORECASE)
_OPEN_START = re.compile(r"^\s*(?:explain|describe|discuss|compare|contrast|summari[sz]e|tell me about|"
                         r"what\s+(?:is|are)\s+the\s+(?:difference|relationship|role|impact|effect|significance|"
                         r"purpose))\b",
                         re.IGNORECASE)
# a wh-word past the start: "Survival is at the heart of what?", "The church was built when?", "Currently, how
# many votes ...?", "After reopening, where will ...?" (one opening with why or how-does is a reason: that check
# comes first)
_WH_ANY = re.compile(rf"\b(?:who|whom|whose|which|what|when|where|{_HOW_MUCH})\b", re.IGNORECASE)
# asks for a short fact without a wh-word: "how" past the start or with any adjective ("How common ...?",
# "... sit how?"), "Name a text ...", a blank to fill ("more ____?"), or a phrase that ends in a question mark
# ("The atomic number of oxygen?", "The name of the game is?"); keywords with no question mark stay open
_ASKS_SHORT = re.compile(r"\bhow\b|^\s*name\b|_{2,}|\?\s*$", re.IGNORECASE)
_YESNO_START = re.compile(rf"^\s*(?:{'|'.join(re.escape(a) for a in _AUX)})\b", re.IGNORECASE)
# ", and what ...", "; when ...", " and also who ..." joining two wh-clauses
_JOIN = re.compile(rf"\s*(?:,\s*(?:and\s+(?:also\s+)?)?|;\s*(?:and\s+)?|\s+and\s+(?:also\s+)?)(?={_WH_LEAD})",
                   re.IGNORECASE)
_COMPARISON = re.compile(r"\b(?:compare|comparison|difference between|both|which\s+(?:one\s+)?(?:is|was|are|were|"
                         r"came|has|had)\s+(?:first|earlier|later|older|newer|larger|bigger|smaller|longer|"
                         r"shorter|higher|lower|more|less|the\s+(?:first|oldest|largest|biggest|smallest))|"
                         r"(?:older|younger|larger|bigger|smaller|longer|shorter|earlier|later)\s*,?\s+\w[^?]*"
                         r"\s+or\s+)", re.IGNORECASE)
_SENTENCE = re.compile(r"[^?]+\?|[^?]+$")


# "Which was founded first, X or Y?": split by the rules into "When was X founded?" and "When was Y founded?"
_FIRST = re.compile(r"^\s*(?P<wh>which|who)\s+(?:one\s+)?(?P<be>is|was|are|were)\s+(?P<verb>\w+)\s+"
                    r"(?P<order>first|earlier|later|last|more\s+recently)\s*,?\s*(?P<x>[^?]+?)\s*,?\s+or\s+"
                    r"(?P<y>[^?]+?)\s*\?\s*$", re.IGNORECASE)
# "Which is older, X or Y?": "When was X founded?" ...; "Which river is longer, X or Y?": "How long is X?" ...
_BE = r"(?:is|was|are|were|has|had)"
_ADJECTIVE = re.compile(rf"^\s*(?P<wh>which|who|what)(?:\s+(?!{_BE}\b)\w+)?\s+{_BE}\s+(?:the\s+)?(?P<adj>\w+)"
                        # a noun after the adjective ("more votes") only before a comma
                        r"(?:(?:\s+[^,?]+?)?\s*,\s*|\s+)(?P<x>[^?]+?)\s*,?\s+or\s+(?P<y>[^?]+?)\s*\?\s*$",
                        re.IGNORECASE)
# the answer the comparison wants: the smaller value ("min": older, first, smaller ...) or the larger ("max")
_SMALLEST = {"first", "earlier", "earliest", "older", "oldest", "smaller", "smallest", "shorter", "shortest",
             "lower", "lowest", "fewer", "less", "lighter", "cheaper"}
_LARGEST = {"last", "later", "latest", "more recently", "newer", "newest", "younger", "youngest", "larger",
            "largest", "bigger", "biggest", "longer", "longest", "taller", "tallest", "higher", "highest", "more",
            "heavier", "greater", "wider", "deeper"}
_HOW = {"larger": "large", "largest": "large", "bigger": "big", "biggest": "big", "smaller": "small",
        "smallest": "small", "longer": "long", "longest": "long", "shorter": "short", "shortest": "short",
        "taller": "tall", "tallest": "tall", "higher": "high", "highest": "high", "lower": "low", "lowest": "low",
        "heavier": "heavy", "lighter": "light", "wider": "wide", "deeper": "deep"}
# adjectives that compare dates: the parts' answers are read as years
_DATES = {"first", "earlier", "earliest", "older", "oldest", "last", "later", "latest", "more recently", "newer",
          "newest", "younger", "youngest"}


@dataclass(frozen=True, slots=True)
class Comparison:
    """A question choosing between two options by a value each part's answer gives."""

    options: tuple[str, str]  # as the question names them
    direction: Literal["min", "max"]  # the option with the smaller or the larger value wins
    dates: bool  # the values are dates (compare years)
    # younger/older: the later/earlier birth date wins; for dates "min" is the earlier one


@dataclass(frozen=True, slots=True)
class QuestionPlan:
    kind: QuestionKind
    parts: tuple[str, ...]  # the questions to answer: the question itself, or its parts (multi)
    needs_model: bool = False  # a comparison the rules could not split: ask the model for the parts
    comparison: Comparison | None = None  # the parts' answers are composed into the option that wins


def comparison_of(question: str) -> tuple[Comparison, tuple[str, ...]] | None:
    """The comparison ``question`` asks, and its parts when the rules can write them (else ``()``)."""
    first = _FIRST.match(question)
    if first is not None:
        order = " ".join(first.group("order").lower().split())
        x, y = first.group("x"), first.group("y")
        verb, be = first.group("verb"), "were" if first.group("be").lower() in ("are", "were") else "was"
        comparison = Comparison((x, y), "min" if order in _SMALLEST else "max", True)
        return comparison, (f"When {be} {x} {verb}?", f"When {be} {y} {verb}?")
    adjective = _ADJECTIVE.match(question)
    if adjective is not None:
        adj = adjective.group("adj").lower()
        if adj in _SMALLEST or adj in _LARGEST:
            # "older" wants the earlier date: the smaller year
            direction: Literal["min", "max"] = "min" if adj in _SMALLEST else "max"
            x, y = adjective.group("x"), adjective.group("y")
            comparison = Comparison((x, y), direction, adj in _DATES)
            # parts by rule where the adjective says what to ask (the 0.5B model's split often gave one part);
            # "more"/"fewer" and the like need the model
            if adj in _DATES:
                verb = "born" if adjective.group("wh").lower() == "who" else "founded"
                return comparison, (f"When was {x} {verb}?", f"When was {y} {verb}?")
            if adj in _HOW:
                return comparison, (f"How {_HOW[adj]} is {x}?", f"How {_HOW[adj]} is {y}?")
            return comparison, ()
    return None


def _question(text: str) -> str:
    text = " ".join(text.split()).strip(" ,;")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith("?") else text.rstrip(".") + "?"


def kind_of(question: str) -> QuestionKind:
    """The type of one simple question (no split)."""
    sentences = [s.strip() for s in _SENTENCE.findall(question) if s.strip()]
    last = sentences[-1] if sentences else question
    if _YESNO_START.match(last):
        return "yesno"
    if _REASON_START.match(question):
        return "reason"
    if _OPEN_START.match(question):
        return "open"
    if any(_WH_START.match(s) for s in sentences) or _WH_ANY.search(last) or _ASKS_SHORT.search(last):
        return "factoid"
    return "open"


def split_parts(question: str, max_parts: int = 3) -> tuple[str, ...]:
    """The asked facts of a compound question (one entry when it is not compound)."""
    sentences = [s.strip() for s in _SENTENCE.findall(question) if s.strip()]
    asked = [s for s in sentences if _WH_START.match(s) or _YESNO_START.match(s)]
    if len(asked) >= 2 and not (len(asked) == 2 and _YESNO_START.match(asked[1]) and not _YESNO_START.match(asked[0])):
        # two questions in one message; "Who won? Was it Asuka?" is one yes/no question, not two
        return tuple(_question(s) for s in asked[:max_parts])
    pieces = [p for p in _JOIN.split(question) if p and p.strip()]
    if len(pieces) >= 2 and _WH_START.match(pieces[0]):
        return tuple(_question(p) for p in pieces[:max_parts])
    return (" ".join(question.split()),)


def plan(question: str, max_parts: int = 3) -> QuestionPlan:
    """How to answer ``question``: its type and the parts to answer."""
    question = " ".join(question.split())
    parts = split_parts(question, max_parts)
    if len(parts) >= 2:
        return QuestionPlan("multi", parts)
    kind = kind_of(question)
    compared = comparison_of(question)
    if compared is not None and compared[1]:
        return QuestionPlan("multi", compared[1], comparison=compared[0])
    if _COMPARISON.search(question) and kind not in ("open", "reason"):
        return QuestionPlan("multi", (question,), needs_model=True,
                            comparison=compared[0] if compared is not None else None)
    return QuestionPlan(kind, (question,))
