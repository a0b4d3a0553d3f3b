"""Context building: retrieved hits → numbered, de-duplicated passages within a token budget.

A passage's text is always an exact slice of its document
(``document.text[char_start:char_end] == text``), so every citation resolves to a real
span: overlapping or touching chunks of one document are merged on their offsets, gaps
between nearby chunks are filled from the document itself (only when a document
reader is given), and a passage cut to fit the budget keeps its start. A passage compressed
to its most relevant sentences (answer/compress.py) is several exact slices, each with its
document offsets in ``segments``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from localrag.generate.prompts import render_source
from localrag.types import Hit, Passage

log = logging.getLogger(__name__)

DocumentText = Callable[[str, str], str | None]  # (namespace, doc_id) -> full text, or None


@dataclass(frozen=True, slots=True)
class ContextSource:
    """One numbered passage: one chunk, or several merged chunks of the same document."""

    number: int
    doc_id: str
    namespace: str
    source: str
    title: str
    text: str
    char_start: int
    char_end: int
    page: int | None
    chunk_ids: tuple[int, ...]
    chunk_spans: tuple[tuple[int, int, int, int | None], ...]  # (chunk_id, start, end, page), by start
    tokens: int = 0
    # Compressed passages (answer/compress.py): (text_start, text_end, document_start) of each exact
    # slice of the document in ``text``; the text between slices is an elision mark. Empty: ``text``
    # is one slice, ``document.text[char_start:char_end]``.
    segments: tuple[tuple[int, int, int], ...] = ()

    def passage(self) -> Passage:
        return Passage(self.number, self.text, self.title)

    def document_span(self, start: int, end: int) -> tuple[int, int, int, int]:
        """(start, end) of the text span ``text[start:end]`` clipped to one exact slice of the document,
        and that slice's (document start, document end): a span crossing an elision keeps its larger part."""
        if not self.segments:
            return start, end, self.char_start + start, self.char_start + end
        best = max(self.segments, key=lambda seg: (min(end, seg[1]) - max(start, seg[0]), -seg[0]))
        text_start, text_end, doc_start = best
        lo, hi = max(start, text_start), min(end, text_end)
        if lo >= hi:  # no overlap at all: the whole slice
            lo, hi = text_start, text_end
        return lo, hi, doc_start + lo - text_start, doc_start + hi - text_start

    def chunk_at(self, offset: int) -> tuple[int, int | None]:
        """(chunk id, page) of the chunk holding document ``offset`` (the first, where chunks overlap)."""
        for chunk_id, start, end, page in self.chunk_spans:
            if start <= offset < end:
                return chunk_id, page
        return self.chunk_ids[0], self.page


@dataclass(frozen=True, slots=True)
class Context:
    sources: tuple[ContextSource, ...]
    tokens: int = 0
    dropped_hits: int = 0  # hits left out: duplicates, or over the budget
    hits: tuple[Hit, ...] = field(default=())

    def get(self, number: int) -> ContextSource | None:
        if 1 <= number <= len(self.sources):
            return self.sources[number - 1]
        return None

    def passages(self) -> tuple[Passage, ...]:
        return tuple(s.passage() for s in self.sources)


@dataclass(slots=True)
class _Group:
    """Hits of one document merged into one span, while the context is assembled."""

    rank: int
    hit: Hit
    start: int
    end: int
    text: str
    spans: list[tuple[int, int, int, int | None]]


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


class ContextBuilder:
    """Fits hits into ``budget`` tokens (counted by ``count_tokens``, the generator's tokenizer).

    ``merge_gap``: chunks of one document at most this many chars apart are merged into one
    passage (the gap's text read through ``document_text``); overlapping or touching chunks
    are always merged.
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        budget: int,
        *,
        document_text: DocumentText | None = None,
        merge_gap: int = 200,
    ) -> None:
        self.count_tokens = count_tokens
        self.budget = max(0, budget)
        self.document_text = document_text
        self.merge_gap = merge_gap

    def build(self, hits: Sequence[Hit]) -> Context:
        groups = self._group(hits)
        sources: list[ContextSource] = []
        used = 0
        for group in groups:
            number = len(sources) + 1
            text = group.text
            tokens = self.count_tokens(render_source(number, group.hit.title, text))
            if used + tokens > self.budget:
                if sources:
                    continue  # a smaller, lower-ranked passage may still fit
                text = self._truncate(number, group, self.budget)
                if not text:
                    break
                tokens = self.count_tokens(render_source(number, group.hit.title, text))
            end = group.start + len(text)
            spans = tuple((cid, s, min(e, end), page) for cid, s, e, page in group.spans if s < end)
            hit = group.hit
            sources.append(ContextSource(
                number=number, doc_id=hit.doc_id, namespace=hit.namespace, source=hit.source, title=hit.title,
                text=text, char_start=group.start, char_end=end, page=spans[0][3] if spans else hit.page,
                chunk_ids=tuple(span[0] for span in spans), chunk_spans=spans, tokens=tokens,
            ))
            used += tokens
        kept = sum(len(s.chunk_ids) for s in sources)
        return Context(tuple(sources), used, len(hits) - kept, tuple(hits))

    # -- dedup and merge ---------------------------------------------------------------
    def _group(self, hits: Sequence[Hit]) -> list[_Group]:
        groups: list[_Group] = []
        by_doc: dict[tuple[str, str], list[_Group]] = {}
        seen_texts: set[str] = set()
        texts: dict[tuple[str, str], str | None] = {}
        for rank, hit in enumerate(hits):
            key = _normalised(hit.text)
            if not key or key in seen_texts:
                continue  # an exact duplicate (e.g. the same text in two documents)
            seen_texts.add(key)
            doc_key = (hit.namespace, hit.doc_id)
            for group in by_doc.get(doc_key, []):
                if self._merge(group, hit, texts, doc_key):
                    break
            else:
                group = _Group(rank, hit, hit.char_start, hit.char_end, hit.text,
                               [(hit.chunk_id, hit.char_start, hit.char_end, hit.page)])
                groups.append(group)
                by_doc.setdefault(doc_key, []).append(group)
        # A merge can make two groups of one document meet: merge those too.
        for doc_groups in by_doc.values():
            doc_groups.sort(key=lambda g: g.start)
            i = 0
            while i + 1 < len(doc_groups):
                first, second = doc_groups[i], doc_groups[i + 1]
                if second.start <= first.end:
                    merged = _join(first.text, first.start, first.end, second.text, second.start, second.end)
                    first.text, first.end = merged, max(first.end, second.end)
                    first.spans.extend(second.spans)
                    first.rank = min(first.rank, second.rank)
                    groups.remove(second)
                    del doc_groups[i + 1]
                else:
                    i += 1
        for group in groups:
            group.spans.sort(key=lambda s: (s[1], s[2]))
        groups.sort(key=lambda g: g.rank)
        return groups

    def _merge(
        self, group: _Group, hit: Hit, texts: dict[tuple[str, str], str | None], doc_key: tuple[str, str]
    ) -> bool:
        start, end = hit.char_start, hit.char_end
        if start >= group.start and end <= group.end:
            group.spans.append((hit.chunk_id, start, end, hit.page))
            return True  # contained: nothing new
        if start <= group.end and end >= group.start:
            group.text = _join(group.text, group.start, group.end, hit.text, start, end)
            group.start, group.end = min(group.start, start), max(group.end, end)
            group.spans.append((hit.chunk_id, start, end, hit.page))
            return True
        gap = start - group.end if start > group.end else group.start - end
        if self.document_text is None or gap > self.merge_gap:
            return False
        if doc_key not in texts:
            texts[doc_key] = self.document_text(*doc_key)
        document = texts[doc_key]
        new_start, new_end = min(group.start, start), max(group.end, end)
        if document is None or len(document) < new_end:
            return False
        group.start, group.end, group.text = new_start, new_end, document[new_start:new_end]
        group.spans.append((hit.chunk_id, start, end, hit.page))
        return True

    def _truncate(self, number: int, group: _Group, budget: int) -> str:
        """The longest prefix of the passage (cut at a word break) that fits ``budget``."""
        text = group.text
        lo, hi = 0, len(text)
        while lo < hi:  # binary search on the char length
            mid = (lo + hi + 1) // 2
            if self.count_tokens(render_source(number, group.hit.title, text[:mid])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        cut = text[:lo]
        if lo < len(text):
            space = cut.rfind(" ")
            if space > len(cut) // 2:
                cut = cut[:space]
        return cut.rstrip()


def _join(text_a: str, start_a: int, end_a: int, text_b: str, start_b: int, end_b: int) -> str:
    """Union of two overlapping or touching exact slices of one document."""
    if start_b < start_a:
        text_a, start_a, end_a, text_b, start_b, end_b = text_b, start_b, end_b, text_a, start_a, end_a
    if end_b <= end_a:
        return text_a
    return text_a + text_b[end_a - start_b :]
