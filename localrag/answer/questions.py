"""Question types from cheap surface features, and the split of a compound question into parts.

The type picks the answer's shape and how much context it gets (answer/adaptive.py):

- ``factoid``: a wh-question asking for a name, number, date or short phrase: one passage, the
  answer first in a few words, the source sentence after it;
- ``yesno``: the last sentence opens with an auxiliary verb ("Is ...?", "Did ...?"): the answer
  starts with "Yes" or "No";
- ``multi``: two or more asked facts ("Who designed the bridge, and when did it open?", two
  questions in one message) or a comparison ("Which is older, X or Y?"): each part is retrieved
  and answered on its own, then composed;
- ``open``: anything else (why, how does, explain ...): the general answer prompt.

Rules only, no model: they run on every question, and a wrong ``open`` costs nothing over
the general path. A comparison the rules cannot split is marked ``needs_model`` so the caller may
ask the language model for the parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

QuestionKind = Literal["factoid", "yesno", "multi", "open"]

_AUX = ("is", "are", "was", "were", "do", "does", "did", "can", "could", "has", "have", "had", "will",
        "would", "should", "shall", "may", "might", "must", "am", "isn't", "aren't", "wasn't", "weren't",
        "doesn't", "didn't", "don't", "hasn't", "haven't", "can't")
_WH = (r"(?:who|whom|whose|when|where|which|what|how\s+(?:many|much|long|old|far|big|large|tall|often|quickly|soon|"
       r"fast|wide|deep|high|heavy))")
# a wh-word, optionally after a preposition ("In what year", "By whom")
_WH_LEAD = rf"(?:(?:in|on|at|by|from|to|for|during|of|with|after|before|since)\s+)?{_WH}\b"
_WH_START = re.compile(rf"^\s*{_WH_LEAD}", re.IGNORECASE)
_OPEN_START = re.compile(r"^\s*(?:why|how\s+(?:do|does|did|is|are|was|were|can|could|should|would)|"
                         r"explain|describe|discuss|summari[sz]e|tell me about|what\s+(?:is|are)\s+the\s+"
                         r"(?:difference|relationship|role|impact|effect|significance|purpose))\b",
                         re.IGNORECASE)
_WH_ANY = re.compile(r"\b(?:who|whom|whose|which|what)\b", re.IGNORECASE)  # "Survival is at the heart of what?"
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


@dataclass(frozen=True, slots=True)
class QuestionPlan:
    kind: QuestionKind
    parts: tuple[str, ...]  # the questions to answer: the question itself, or its parts (multi)
    needs_model: bool = False  # a comparison the rules could not split: ask the model for the parts


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
    if _OPEN_START.match(question):
        return "open"
    if any(_WH_START.match(s) for s in sentences) or _WH_ANY.search(last):
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
    if _COMPARISON.search(question) and kind != "open":
        return QuestionPlan("multi", (question,), needs_model=True)
    return QuestionPlan(kind, (question,))
