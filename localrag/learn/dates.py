"""Dates in a question, read by rules relative to a given ``now``: "in 2024", "last March", "since 2023",
"between March 2022 and May 2023", "before 2021", "last year", "in the last 2 years".

A rule parser rather than the language model, because dates are where small models fail most and
where the answer is not a matter of judgment: "last March" asked on 2026-12-03 is March 2026, always.
Each span found is an inclusive range of days (``end`` None: open-ended) with the granularity it was
written at (a whole year can be filtered on a year field, a month needs a date field).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Granularity = Literal["year", "month", "day"]

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
# a month name alone ("may", "march") is read only after a preposition or "last"/"this", or before a year
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?:19|20)\d\d"
# a point in time: "March 2024", "2024", "March", "Q1 2024"
_POINT = rf"(?:(?:q[1-4]\s+{_YEAR})|(?:{_MONTH}\s+(?:of\s+)?{_YEAR})|{_YEAR}|(?:last\s+|this\s+)?{_MONTH})"
_NUM_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}


@dataclass(frozen=True, slots=True)
class DateSpan:
    """Days from ``start`` to ``end`` inclusive (None: unbounded on that side)."""

    start: date | None
    end: date | None
    granularity: Granularity
    text: str  # the words it was read from
    explicit: bool = True  # False: a bare year with no preposition ("the 2024 minutes"), a weaker cue


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _recent_month(month: int, now: date, strictly_before: bool) -> int:
    """The year of the most recent ``month``: "last March" in December 2026 is March 2026."""
    if month < now.month or (month == now.month and not strictly_before):
        return now.year
    return now.year - 1


def _point(text: str, now: date) -> tuple[date, date, Granularity] | None:
    """The first and last day of a written point in time."""
    words = text.lower().replace(".", "").split()
    if not words:
        return None
    if words[0] in ("last", "this") and len(words) == 2 and words[1] in MONTHS:
        month = MONTHS[words[1]]
        year = _recent_month(month, now, strictly_before=words[0] == "last")
        return date(year, month, 1), _month_end(year, month), "month"
    if words[0].startswith("q") and len(words) == 2 and words[0][1:].isdigit():
        quarter, year = int(words[0][1:]), int(words[1])
        return date(year, 3 * quarter - 2, 1), _month_end(year, 3 * quarter), "month"
    if words[0] in MONTHS:
        month = MONTHS[words[0]]
        year = int(words[-1]) if words[-1].isdigit() else _recent_month(month, now, strictly_before=False)
        return date(year, month, 1), _month_end(year, month), "month"
    if words[0].isdigit():
        year = int(words[0])
        return date(year, 1, 1), date(year, 12, 31), "year"
    return None


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("between", re.compile(rf"\b(?:between|from)\s+({_POINT})\s+(?:and|to|until|through)\s+({_POINT})\b", re.I)),
    ("range", re.compile(rf"\b({_YEAR})\s*(?:-|–|to)\s*({_YEAR})\b", re.I)),
    ("since", re.compile(rf"\b(?:since|starting(?:\s+in)?)\s+({_POINT})\b", re.I)),
    # "from 2023 on" but not "from 2023 on the budget"
    ("since", re.compile(rf"\bfrom\s+({_POINT})\s+(?:onwards?\b|on(?=\s*(?:[,.;:?!]|$)))", re.I)),
    ("after", re.compile(rf"\bafter\s+({_POINT})\b", re.I)),
    ("before", re.compile(rf"\b(?:before|prior\s+to|earlier\s+than)\s+({_POINT})\b", re.I)),
    ("until", re.compile(rf"\b(?:until|till|up\s+to|through)\s+({_POINT})\b", re.I)),
    ("relative", re.compile(r"\b(?:in\s+|during\s+|from\s+)?(?:the\s+)?(last|this|past|previous|current)\s+"
                            r"(?:(\d+|one|two|three|four|five|six|ten)\s+)?(years?|months?|weeks?|days?)\b", re.I)),
    ("in", re.compile(rf"\b(?:in|during|of|for|from|dated|on)\s+(?:the\s+)?({_POINT})\b", re.I)),
    ("last_month", re.compile(rf"\b((?:last|this)\s+{_MONTH})\b", re.I)),
    ("month_year", re.compile(rf"\b((?:q[1-4]|{_MONTH})\s+(?:of\s+)?{_YEAR})\b", re.I)),
    ("bare_year", re.compile(rf"(?<![\w$£€#.,-])({_YEAR})(?![\w%.,]|\s*(?:-|to)\s*\d)", re.I)),
]


def _relative(match: re.Match[str], now: date) -> DateSpan | None:
    which, count_text, unit = match.group(1).lower(), match.group(2), match.group(3).lower().rstrip("s")
    count = 1 if count_text is None else _NUM_WORDS.get(count_text.lower()) or int(count_text)
    if count_text is None and which in ("last", "previous") and unit in ("year", "month"):
        if unit == "year":  # "last year": the previous calendar year
            return DateSpan(date(now.year - 1, 1, 1), date(now.year - 1, 12, 31), "year", match.group(0))
        year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        return DateSpan(date(year, month, 1), _month_end(year, month), "month", match.group(0))
    if count_text is None and which in ("this", "current"):
        if unit == "year":
            return DateSpan(date(now.year, 1, 1), date(now.year, 12, 31), "year", match.group(0))
        if unit == "month":
            return DateSpan(date(now.year, now.month, 1), _month_end(now.year, now.month), "month", match.group(0))
    # "the last 2 years", "the past week": a window ending today
    days = {"year": 365, "month": 30, "week": 7, "day": 1}[unit] * count
    start = date(now.year - count, now.month, min(now.day, 28)) if unit == "year" else now - timedelta(days=days)
    return DateSpan(start, now, "day", match.group(0))


def find_dates(question: str, now: date) -> list[DateSpan]:
    """The date ranges ``question`` asks about, left to right; overlapping readings keep the first rule's."""
    found: list[tuple[int, int, DateSpan]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(question):
            if any(s < match.end() and match.start() < e for s, e, _ in found):
                continue
            span = _read(kind, match, now)
            if span is not None:
                found.append((match.start(), match.end(), span))
    return [span for _, _, span in sorted(found, key=lambda item: item[0])]


def _read(kind: str, match: re.Match[str], now: date) -> DateSpan | None:
    text = match.group(0)
    if kind == "relative":
        return _relative(match, now)
    first = _point(match.group(1), now)
    if first is None:
        return None
    start, end, grain = first
    if kind in ("between", "range"):
        second = _point(match.group(2), now)
        if second is None or second[1] < start:
            return None
        return DateSpan(start, second[1], _finer(grain, second[2]), text)
    if kind == "since":
        return DateSpan(start, None, grain, text)
    if kind == "after":
        return DateSpan(end + timedelta(days=1), None, grain, text)
    if kind == "before":
        return DateSpan(None, start - timedelta(days=1), grain, text)
    if kind == "until":
        return DateSpan(None, end, grain, text)
    return DateSpan(start, end, grain, text, explicit=kind != "bare_year")


def _finer(a: Granularity, b: Granularity) -> Granularity:
    order = ("day", "month", "year")
    return a if order.index(a) < order.index(b) else b
