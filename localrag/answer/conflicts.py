"""Conflicting sources: passages that disagree on the fact a question asks about.

The question's type says what kind of fact it wants: a number ("how many", "how much"), a date
("when", "what year"), a name ("who", "which person") or yes/no (a question opening with an
auxiliary verb). In each passage, the sentence sharing most of the question's content words (at
least ``min_overlap`` of them) is where the passage answers it; the values of the wanted kind in
that sentence, less those the question itself names, are the passage's answer (yes/no: whether the
sentence is negated). Two passages of different documents disagree when their values have nothing
in common while their sentences otherwise say the same thing (``min_agreement`` of the shorter one's
other words shared). Passages that share a value agree and are not flagged. The bars were set on
SQuAD questions whose context is the five paragraphs of their article closest to them (other years
and names near the topic, no real conflict): the first version, which only asked half the question's
words, flagged 33% of 300 such questions; these bars flag 0.7%.

Precedence (``answer.conflict_precedence``): ``"date"`` prefers the side whose document has the
newest metadata date (``answer.conflict_date_field``, ISO 8601), ``"priority"`` the side with the
highest metadata ``priority``; the preferred side is marked and named first. With no precedence, or
when the field is missing on every side, no side is preferred.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from localrag.answer.citations import best_sentence
from localrag.answer.claims import names, negated, numbers
from localrag.answer.context import Context
from localrag.answer.sentences import terms
from localrag.types import Conflict, ConflictSide

Kind = Literal["number", "date", "name", "yes/no"]

_DATE_Q = re.compile(r"^\s*(?:when\b|(?:in\s+)?(?:what|which)\s+(?:year|date|month|day|century|decade)\b)",
                     re.IGNORECASE)
_NUMBER_Q = re.compile(r"^\s*(?:how\s+(?:many|much|long|far|old|tall|high|big|large|deep|heavy)\b|"
                       r"what\s+(?:number|percentage|percent|share|amount|population|size)\b)", re.IGNORECASE)
_NAME_Q = re.compile(r"^\s*(?:who|whom|whose|which\s+(?:person|people|company|team|country|city|player|"
                     r"artist|author|man|woman|organi[sz]ation))\b", re.IGNORECASE)
_YES_NO_Q = re.compile(r"^\s*(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b",
                       re.IGNORECASE)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_MONTH = re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
                    r"December)\s+\d{1,2}(?:st|nd|rd|th)?(?:,\s*\d{4})?|\b\d{1,2}\s+(?:January|February|March|"
                    r"April|May|June|July|August|September|October|November|December)(?:\s+\d{4})?")


def question_kind(question: str) -> Kind | None:
    """The kind of fact ``question`` asks for, or None when it is none of these."""
    if _DATE_Q.search(question):
        return "date"
    if _NUMBER_Q.search(question):
        return "number"
    if _NAME_Q.search(question):
        return "name"
    if _YES_NO_Q.search(question):
        return "yes/no"
    return None


def values(sentence: str, kind: Kind, question: str) -> set[str]:
    """The answers of ``kind`` that ``sentence`` gives, less what ``question`` already names."""
    if kind == "yes/no":
        return {"no" if negated(sentence) != negated(question) else "yes"}
    if kind == "date":
        found = set(_YEAR.findall(sentence)) | {m.group() for m in _MONTH.finditer(sentence)}
        asked = set(_YEAR.findall(question))
        return {v for v in found if v not in asked}
    if kind == "number":
        return numbers(sentence) - numbers(question)
    asked_names = question.lower()
    return {n for n in names(sentence) if n.lower() not in asked_names and n.split()[-1].lower() not in asked_names}


def find_conflicts(
    question: str,
    context: Context,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    precedence: str = "",
    date_field: str = "date",
    min_overlap: float = 0.75,
    min_agreement: float = 0.4,
    max_values: int = 2,
) -> tuple[Conflict, ...]:
    """The disagreement among ``context``'s passages on what ``question`` asks, if any (at most one:
    the question asks one thing). ``metadata`` maps doc_id → document metadata, for precedence.

    Two passages disagree only when they say the same thing but the value: each one's sentence holds
    ``min_overlap`` of the question's content words and at most ``max_values`` values, and the two
    sentences share ``min_agreement`` of the shorter one's other words. Passages of one article that
    merely mention other years or names near the topic are not a conflict."""
    kind = question_kind(question)
    if kind is None or len(context.sources) < 2:
        return ()
    asked = terms(question)
    if not asked:
        return ()
    answers: list[tuple[int, str, set[str], set[str]]] = []  # (number, doc_id, values, other words)
    for source in context.sources:
        start, end, _ = best_sentence(source.text, question)
        sentence = source.text[start:end]
        words = terms(sentence)
        if len(asked & words) / len(asked) < min_overlap:
            continue  # this passage does not speak of what was asked
        found = values(sentence, kind, question)
        if found and len(found) <= max_values:
            answers.append((source.number, source.doc_id, found, words - terms(" ".join(found))))
    disagreeing = {
        i for i, (_, doc_a, a, words_a) in enumerate(answers) for j, (_, doc_b, b, words_b) in enumerate(answers)
        if i != j and doc_a != doc_b and not a & b
        and len(words_a & words_b) >= min_agreement * min(len(words_a), len(words_b))
    }
    if not disagreeing:
        return ()
    metadata = metadata or {}
    sides = [ConflictSide(number, _value(found, kind), doc_id)
             for i, (number, doc_id, found, _) in enumerate(answers) if i in disagreeing]
    sides = _with_precedence(sides, metadata, precedence, date_field)
    return (Conflict(topic=question.strip(), kind=kind, sides=tuple(sides)),)


def _value(found: set[str], kind: Kind) -> str:
    if kind == "yes/no":
        return next(iter(found))
    return ", ".join(sorted(found, key=lambda v: (len(v), v)))


def _with_precedence(
    sides: list[ConflictSide], metadata: Mapping[str, Mapping[str, Any]], precedence: str, date_field: str
) -> list[ConflictSide]:
    if precedence not in ("date", "priority"):
        return sides
    field = date_field if precedence == "date" else "priority"

    def key(side: ConflictSide) -> tuple[int, Any]:
        value = metadata.get(side.doc_id, {}).get(field)
        if value is None:
            return (0, "")
        if precedence == "priority":
            try:
                return (1, float(value))
            except (TypeError, ValueError):
                return (0, "")
        return (1, str(value))  # ISO 8601 dates order as strings

    ranked = sorted(sides, key=key, reverse=True)
    if key(ranked[0])[0] == 0 or key(ranked[0]) == key(ranked[-1]):
        return sides  # no side has the field, or all tie: none preferred
    best = key(ranked[0])
    return [ConflictSide(s.citation, s.value, s.doc_id, preferred=key(s) == best) for s in ranked]


def conflict_note(conflicts: Sequence[Conflict], numbering: Mapping[int, int] | None = None) -> str:
    """A sentence saying which source says what, each side cited ("The sources disagree: ...")."""
    notes = []
    for conflict in conflicts:
        parts = []
        for side in conflict.sides:
            number = (numbering or {}).get(side.citation, side.citation)
            preferred = " (preferred)" if side.preferred else ""
            parts.append(f"{side.value} [{number}]{preferred}")
        notes.append("The sources disagree: " + "; ".join(parts) + ".")
    return " ".join(notes)
