"""A namespace's metadata catalogue: which fields its documents carry, their kinds and, for the few-valued
ones, their values, so self-query (learn/selfquery.py) proposes filters only on fields and values that exist.

Built from the documents' metadata as the retriever's filter table holds it (one dict per document), so it
costs one pass over that table per store generation and reads nothing else.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

Role = Literal["year", "date", "enum", "other"]

MAX_VALUES = 100  # a field with more distinct values is not enumerated (it is free text or an id)
MAX_VALUE_CHARS = 80
# identifiers and paths: never a filter a question implies
SKIPPED_FIELDS = frozenset({"doc_id", "source", "message_id", "parent_doc_id", "attachment_of", "attachment_ids",
                            "attachments", "attachments_skipped", "subject", "title", "pages"})
_ISO_DATE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)")
_YEAR_NAME = re.compile(r"(^|_)years?($|_)", re.I)


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One metadata field: its role, how many documents carry it, and its values when it has few.

    ``date_format`` for a date field: "ymd" (numbers like 20240315) or "iso" (strings like "2024-03-15...").
    """

    name: str
    role: Role
    count: int
    values: tuple[Any, ...] = ()  # distinct values (list elements counted singly), most frequent first
    low: float | None = None  # numeric range of a year or date field
    high: float | None = None
    date_format: str = ""


@dataclass(frozen=True, slots=True)
class Catalogue:
    documents: int
    fields: Mapping[str, FieldInfo] = field(default_factory=dict)

    def by_role(self, role: Role) -> list[FieldInfo]:
        return [info for info in self.fields.values() if info.role == role]

    def year_field(self) -> FieldInfo | None:
        fields = self.by_role("year")
        return max(fields, key=lambda f: f.count) if fields else None

    def date_field(self) -> FieldInfo | None:
        fields = self.by_role("date")
        named = [f for f in fields if f.name.lower() == "date"]
        ranked = named or sorted(fields, key=lambda f: -f.count)
        return ranked[0] if ranked else None

    def describe(self, max_values: int = 12) -> dict[str, Any]:
        """A JSON-ready summary (the CLI and the LLM prompt show it)."""
        out: dict[str, Any] = {}
        for info in self.fields.values():
            item: dict[str, Any] = {"role": info.role, "documents": info.count}
            if info.values:
                item["values"] = list(info.values[:max_values])
            if info.low is not None:
                item["range"] = [info.low, info.high]
            out[info.name] = item
        return out


def iso_day(value: Any) -> date | None:
    """The day an ISO 8601 string starts with, or None."""
    match = _ISO_DATE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def ymd_day(value: float) -> date | None:
    number = int(value)
    try:
        return date(number // 10000, number // 100 % 100, number % 100) if number == value else None
    except ValueError:
        return None


def build_catalogue(metadatas: Sequence[Mapping[str, Any]], max_values: int = MAX_VALUES) -> Catalogue:
    """The catalogue of these documents' metadata."""
    counts: Counter[str] = Counter()
    values: dict[str, Counter[Any]] = {}
    kinds: dict[str, set[str]] = {}
    for metadata in metadatas:
        for name, value in metadata.items():
            if name in SKIPPED_FIELDS or value is None:
                continue
            counts[name] += 1
            seen = values.setdefault(name, Counter())
            kind = kinds.setdefault(name, set())
            for item in value if isinstance(value, list) else [value]:
                kind.add("bool" if isinstance(item, bool) else "number" if isinstance(item, (int, float)) else
                         "string" if isinstance(item, str) else "other")
                if len(seen) <= 10 * max_values and isinstance(item, (str, int, float, bool)):
                    seen[item] += 1
    fields = {name: _field(name, counts[name], kinds[name], values[name], max_values) for name in counts}
    return Catalogue(len(metadatas), fields)


def _field(name: str, count: int, kinds: set[str], seen: Counter[Any], max_values: int) -> FieldInfo:
    distinct = [value for value, _ in seen.most_common()]
    if kinds == {"number"} and distinct:
        numbers = [float(v) for v in distinct]
        low, high = min(numbers), max(numbers)
        if all(n.is_integer() for n in numbers):
            if low >= 1800 and high <= 2200 and _YEAR_NAME.search(name):
                return FieldInfo(name, "year", count, tuple(sorted(distinct)), low, high)
            if low >= 18000101 and high <= 22001231 and all(ymd_day(n) for n in numbers):
                return FieldInfo(name, "date", count, (), low, high, "ymd")
    if kinds == {"string"} and distinct and all(iso_day(v) for v in distinct[:50]):
        days = sorted(d for d in (iso_day(v) for v in distinct) if d is not None)
        return FieldInfo(name, "date", count, tuple(sorted(distinct)) if len(distinct) <= 10_000 else (),
                         float(days[0].strftime("%Y%m%d")), float(days[-1].strftime("%Y%m%d")), "iso")
    few = len(distinct) <= max_values and len(seen) <= max_values
    short = all(not isinstance(v, str) or len(v) <= MAX_VALUE_CHARS for v in distinct)
    if few and short and kinds <= {"string", "number", "bool"}:
        return FieldInfo(name, "enum", count, tuple(distinct))
    return FieldInfo(name, "other", count)
