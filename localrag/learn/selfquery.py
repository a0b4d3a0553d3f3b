"""Self-query: a metadata filter read from the question, over the fields and values the namespace holds.

Rules carry most of it; the local model helps where they are unsure:

* dates by rules relative to ``now`` (learn/dates.py), put on the catalogue's year or date field;
* enumerated values (senders, types, projects, file types...) by matching the catalogue's own values in
  the question: a whole multi-word value ("Maria Chen"), a person's unique first or last name, a value
  beside its field's name ("project Apollo", "priority 2"), a single word with a cue ("the reports");
* the local LLM, asked for JSON that a grammar restricts to the catalogue's fields and values
  (learn/selfquery_llm.py), confirms weak rule matches; alone it is never trusted enough to apply.

Every condition carries a confidence; those under ``learn.self_query_min_confidence`` are shown but
never applied. Applied hard, the filter replaces the request's (absent) filter; applied softly, the plain
and filtered lists are fused by RRF so matching hits rise without the others vanishing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from localrag.learn.catalogue import Catalogue, FieldInfo, iso_day
from localrag.learn.dates import DateSpan, find_dates

log = logging.getLogger(__name__)

PERSON_FIELDS = re.compile(r"^(from|sender|author|authors|to|cc|owner|by|assignee|person|people|creator|speaker"
                           r"|participants?|reporter|signed_by|written_by)$", re.I)
TYPE_FIELDS = re.compile(r"(^|_)(file_?type|type|format|ext|extension|kind|mime)$", re.I)
# words people use for file types, by the values loaders store (ingest/loaders.py, ingest/formats/)
FILE_TYPE_WORDS = {
    "pdf": ("pdf", "pdfs"), "docx": ("word document", "word documents", "word file", "word files", "docx"),
    "xlsx": ("spreadsheet", "spreadsheets", "excel", "xlsx"), "pptx": ("slides", "powerpoint", "presentation",
                                                                      "presentations", "pptx"),
    "markdown": ("markdown", "md"), "html": ("web page", "web pages", "html"), "eml": ("eml",),
    "text": ("text file", "text files", "txt"), "image": ("image", "images", "scan", "scans", "photo", "photos"),
    "csv": ("csv",), "odt": ("odt",), "rtf": ("rtf",), "epub": ("ebook", "ebooks", "epub"),
}
_CUES = frozenset(["the", "a", "an", "all", "any", "which", "what", "those", "these", "my", "our", "in", "from",
                   "of", "latest", "last", "recent", "every", "each", "their", "his", "her", "its", "only", "among"])
_AFTER_CUES = frozenset(["from", "about", "by", "regarding", "mentioning", "sent", "written"])
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'&.+-]*[A-Za-z0-9]|[A-Za-z0-9]")
_EMAIL = re.compile(r"<[^>]*>|\S+@\S+")

EXPLICIT_DATE = 0.95
BARE_YEAR = 0.75
OUT_OF_RANGE = 0.4  # a date the namespace holds no documents from
FULL_VALUE = 0.9  # a multi-word value, or a value beside its field's name
CUED_WORD = 0.8  # one word with a cue: a determiner or preposition before it, a plural, a capital
BARE_WORD = 0.55
LLM_ALONE = 0.6  # the most a condition only the model proposed can reach (below the default bar)


class FilterModel(Protocol):
    """Proposes (field, value) pairs for a question from the catalogue, with its probability for them."""

    def propose(self, question: str, catalogue: Catalogue) -> tuple[list[tuple[str, Any]], float]: ...


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    clause: Any  # the field's filter clause: a value, or an operator object
    confidence: float
    reason: str  # "date", "value", "field name", "llm", ...
    text: str = ""  # the question's words it was read from


@dataclass(frozen=True, slots=True)
class Proposal:
    """The filter read from a question: its conditions, and the filter of those that are confident enough."""

    question: str
    conditions: tuple[Condition, ...] = ()
    min_confidence: float = 0.7
    model_used: bool = False

    @property
    def kept(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.confidence >= self.min_confidence)

    @property
    def filter(self) -> dict[str, Any] | None:
        """The conditions at or above the bar, as one filter (None: nothing confident)."""
        kept = self.kept
        return {c.field: c.clause for c in kept} if kept else None

    @property
    def confidence(self) -> float:
        kept = self.kept
        return min(c.confidence for c in kept) if kept else max((c.confidence for c in self.conditions), default=0.0)

    def describe(self, applied: str) -> dict[str, Any]:
        """What responses show: the filter, how sure, and whether and how it was applied."""
        return {
            "filter": self.filter,
            "applied": applied if self.filter is not None else "no",
            "confidence": round(self.confidence, 3),
            "conditions": [{"field": c.field, "clause": c.clause, "confidence": round(c.confidence, 3),
                            "reason": c.reason, "text": c.text} for c in self.conditions],
        }


@dataclass
class _Candidate:
    field: str
    value: Any
    confidence: float
    start: int  # token span in the question
    end: int
    reason: str
    text: str = ""


class SelfQuery:
    """Reads filters from questions. ``model``: an optional FilterModel (the local LLM)."""

    def __init__(self, model: FilterModel | None = None, min_confidence: float = 0.7) -> None:
        self.model = model
        self.min_confidence = min_confidence

    def propose(self, question: str, catalogue: Catalogue, now: date) -> Proposal:
        tokens = [(m.group(0), m.start()) for m in _WORD.finditer(question)]
        conditions: list[Condition] = list(_date_conditions(question, catalogue, now))
        candidates = _value_candidates(question, tokens, catalogue)
        used_model = False
        if self.model is not None and any(f.role == "enum" for f in catalogue.fields.values()):
            try:
                pairs, probability = self.model.propose(question, catalogue)
                used_model = True
            except Exception as e:  # the model is a helper: rules stand without it
                log.warning("self-query model failed, rules only: %s", e)
                pairs, probability = [], 0.0
            candidates = _combine(candidates, pairs, probability, question, catalogue)
        taken = {c.field for c in conditions}
        by_field: dict[str, list[_Candidate]] = {}
        for c in candidates:
            if c.field not in taken:
                by_field.setdefault(c.field, []).append(c)
        for name, group in by_field.items():
            values = list(dict.fromkeys(c.value for c in group))
            clause = values[0] if len(values) == 1 else {"$in": values}
            conditions.append(Condition(name, clause, min(c.confidence for c in group), group[0].reason,
                                        " / ".join(dict.fromkeys(c.text for c in group))))
        return Proposal(question, tuple(conditions), self.min_confidence, used_model)


# -- dates ------------------------------------------------------------------------------
def _date_conditions(question: str, catalogue: Catalogue, now: date) -> list[Condition]:
    spans = find_dates(question, now)
    if not spans:
        return []
    condition = _date_condition(spans[0], catalogue)
    if condition is None:
        return []
    if len(spans) > 1:  # two dates in one question ("2023 vs 2024") compare rather than filter
        condition = Condition(condition.field, condition.clause, min(condition.confidence, BARE_WORD),
                              condition.reason, condition.text)
    return [condition]


def _date_condition(span: DateSpan, catalogue: Catalogue) -> Condition | None:
    year_field, date_field = catalogue.year_field(), catalogue.date_field()
    confidence = EXPLICIT_DATE if span.explicit else BARE_YEAR
    whole_years = (span.start is None or (span.start.month, span.start.day) == (1, 1)) and (
        span.end is None or (span.end.month, span.end.day) == (12, 31))
    if year_field is not None and (whole_years or date_field is None):
        low = None if span.start is None else span.start.year
        high = None if span.end is None else span.end.year
        clause: Any = low if low == high and low is not None else _range(low, high)
        if not whole_years:
            confidence = min(confidence, 0.6)  # a month asked, only a year to filter on: broader than asked
        return Condition(year_field.name, clause, _in_range(confidence, low, high, year_field), "date", span.text)
    if date_field is None:
        return None
    low_day = None if span.start is None else int(span.start.strftime("%Y%m%d"))
    high_day = None if span.end is None else int(span.end.strftime("%Y%m%d"))
    confidence = _in_range(confidence, low_day, high_day, date_field)
    if date_field.date_format == "ymd":
        return Condition(date_field.name, _range(low_day, high_day), confidence, "date", span.text)
    # ISO strings: the filter language compares only numbers, so the range becomes the catalogue's values in it
    inside = [v for v in date_field.values if _day_in(iso_day(v), span)]
    if not inside or len(inside) > 10_000:
        return None
    return Condition(date_field.name, {"$in": inside}, confidence, "date", span.text)


def _day_in(day: date | None, span: DateSpan) -> bool:
    return day is not None and (span.start is None or day >= span.start) and (span.end is None or day <= span.end)


def _range(low: int | None, high: int | None) -> dict[str, int]:
    clause = {}
    if low is not None:
        clause["$gte"] = low
    if high is not None:
        clause["$lte"] = high
    return clause


def _in_range(confidence: float, low: int | None, high: int | None, info: FieldInfo) -> float:
    """Lower when the namespace holds no documents in the range: the filter would leave nothing."""
    if info.low is None or info.high is None:
        return confidence
    if (high is not None and high < info.low) or (low is not None and low > info.high):
        return min(confidence, OUT_OF_RANGE)
    return confidence


# -- values ------------------------------------------------------------------------------
def _norm(word: str) -> str:
    word = word.lower()
    return word[:-2] if word.endswith("'s") else word


def _forms(words: Sequence[str]) -> list[tuple[str, ...]]:
    """A value's word sequence and its plural (last word + s / es / ies)."""
    base = tuple(words)
    last = base[-1]
    plurals = {last + "s", last + "es"} | ({last[:-1] + "ies"} if last.endswith("y") else set())
    return [base, *[(*base[:-1], p) for p in sorted(plurals)]]


def _value_candidates(question: str, tokens: list[tuple[str, int]], catalogue: Catalogue) -> list[_Candidate]:
    words = [_norm(t) for t, _ in tokens]
    found: list[_Candidate] = []
    for info in catalogue.fields.values():
        if info.role != "enum":
            continue
        name_words = tuple(w for w in re.split(r"[_\W]+", info.name.lower()) if w)
        person = bool(PERSON_FIELDS.match(info.name)) or _looks_like_names(info.values)
        unique = _unique_name_parts(info.values) if person else {}
        for value in info.values:
            if isinstance(value, bool):
                continue
            value_words = tuple(_norm(w) for w in _WORD.findall(_EMAIL.sub(" ", str(value)))) or ()
            if not value_words:
                continue
            phrases = [(form, "value") for form in _forms(value_words)]
            if TYPE_FIELDS.search(info.name) and isinstance(value, str):
                phrases += [(tuple(s.split()), "file type") for s in FILE_TYPE_WORDS.get(value.lower(), ())]
            for phrase, reason in phrases:
                for start in _find(words, phrase):
                    end = start + len(phrase)
                    confidence = _word_confidence(tokens, words, start, end, phrase, value, person)
                    if _beside_name(words, start, end, name_words):
                        confidence, reason = max(confidence, FULL_VALUE), "field name"
                    found.append(_Candidate(info.name, value, confidence, start, end, reason,
                                            question[tokens[start][1]:tokens[end - 1][1] + len(tokens[end - 1][0])]))
            for part, owner in unique.items():
                if owner != value:
                    continue
                for start in _find(words, (part,)):
                    capital = tokens[start][0][:1].isupper()
                    found.append(_Candidate(info.name, value, CUED_WORD if capital else BARE_WORD, start, start + 1,
                                            "name", tokens[start][0]))
    return _resolve(found)


def _find(words: Sequence[str], phrase: Sequence[str]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(words) - n + 1) if tuple(words[i:i + n]) == tuple(phrase)]


def _word_confidence(tokens: list[tuple[str, int]], words: Sequence[str], start: int, end: int,
                     phrase: Sequence[str], value: Any, person: bool) -> float:
    if end - start > 1:
        return FULL_VALUE
    if isinstance(value, (int, float)):
        return BARE_WORD  # a number alone is rarely a filter; beside its field's name it is (FULL_VALUE)
    written = tokens[start][0]
    proper = str(value)[:1].isupper()
    if proper and written[:1].isupper() and (start > 0 or person):
        return CUED_WORD
    if isinstance(value, str) and value.lower() in FILE_TYPE_WORDS:
        return CUED_WORD  # "pdf", "docx": words with no other meaning
    value_words = _WORD.findall(str(value))
    plural = bool(value_words) and phrase[-1] != _norm(value_words[-1])
    # "Minutes from 2024 ...": a question that opens with the value and a preposition (mid-sentence, a verb
    # can stand there: "what did John report about")
    cued = (start > 0 and any(w in _CUES for w in words[max(0, start - 3):start])) or (
        start == 0 and end < len(words) and words[end] in _AFTER_CUES)
    return CUED_WORD if plural or cued else BARE_WORD


def _beside_name(words: Sequence[str], start: int, end: int, name_words: tuple[str, ...]) -> bool:
    if not name_words:
        return False
    n = len(name_words)
    before = tuple(words[max(0, start - n):start])
    after = tuple(words[end:end + n])
    plural = (*name_words[:-1], name_words[-1] + "s")
    return before in (name_words, plural) or after in (name_words, plural)


def _looks_like_names(values: Sequence[Any]) -> bool:
    strings = [_EMAIL.sub(" ", v).strip() for v in values if isinstance(v, str)]
    pattern = re.compile(r"^[A-Z][a-z'-]+(?: [A-Z][a-z'-]+){1,2}$")
    return bool(strings) and sum(bool(pattern.match(s)) for s in strings) >= 0.8 * len(strings)


def _unique_name_parts(values: Sequence[Any]) -> dict[str, Any]:
    """First or last names that name one value of the field only ("maria" -> "Maria Chen")."""
    owners: dict[str, set[Any]] = {}
    for value in values:
        if not isinstance(value, str):
            continue
        for part in _WORD.findall(_EMAIL.sub(" ", value)):
            if len(part) >= 3:
                owners.setdefault(_norm(part), set()).add(value)
    return {part: next(iter(vs)) for part, vs in owners.items() if len(vs) == 1}


def _resolve(found: list[_Candidate]) -> list[_Candidate]:
    """Overlapping matches: the surest (then longest) wins; a value matched twice keeps its best."""
    kept: list[_Candidate] = []
    for c in sorted(found, key=lambda c: (-c.confidence, -(c.end - c.start), c.start)):
        if any(k.start < c.end and c.start < k.end and (k.field, k.value) != (c.field, c.value) for k in kept):
            continue
        if any((k.field, k.value) == (c.field, c.value) for k in kept):
            continue
        kept.append(c)
    return sorted(kept, key=lambda c: c.start)


def _combine(candidates: list[_Candidate], pairs: list[tuple[str, Any]], probability: float, question: str,
             catalogue: Catalogue) -> list[_Candidate]:
    """The model's pairs confirm matching rule candidates; alone, grounded in the question's words, they are
    kept below the bar (shown, not applied); ungrounded ones are dropped as made up."""
    lowered = question.lower()
    out = list(candidates)
    for name, value in pairs:
        info = catalogue.fields.get(name)
        if info is None or value not in info.values:
            continue
        match = next((c for c in out if (c.field, c.value) == (name, value)), None)
        if match is not None:
            match.confidence = 1 - (1 - match.confidence) * (1 - 0.5 * probability)
            match.reason += "+llm"
            continue
        grounded = any(len(w) >= 3 and w.lower() in lowered for w in _WORD.findall(_EMAIL.sub(" ", str(value))))
        if grounded:
            out.append(_Candidate(name, value, min(LLM_ALONE, LLM_ALONE * probability), -1, -1, "llm", str(value)))
    return out

