"""Context compression: keep the passages' most relevant sentences within the token budget.

Plain truncation (ContextBuilder) keeps whole passages while they fit and cuts the first one
at the budget, so a passage whose answer sits past the cut is lost. Compression instead scores
every sentence of every passage against the question (embedding cosine plus the share of the
question's content words it holds) and keeps the best ones that fit, in document order within
each passage. Adjacent kept sentences stay one exact slice of the document; non-adjacent ones
are joined by an elision mark, and each slice's document offsets are kept on the source
(``ContextSource.segments``), so a quote taken from the compressed text still maps back to the
document exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from localrag.answer.context import Context, ContextSource
from localrag.answer.sentences import sentences, terms
from localrag.generate.prompts import render_source
from localrag.protocols import Embedder

log = logging.getLogger(__name__)

ELISION = " … "  # between two kept sentences that are not adjacent in the passage
# a small edge to higher-ranked passages: on a tie, the retriever's order decides
_RANK_BONUS = 0.02


class SentenceScorer(Protocol):
    def __call__(self, question: str, texts: Sequence[str]) -> Sequence[float]:
        """Relevance of each text to the question (higher is more relevant)."""
        ...


def lexical_score(question: str, text: str) -> float:
    """The share of the question's content words (stemmed, no stopwords) the text holds."""
    wanted = terms(question)
    return len(wanted & terms(text)) / len(wanted) if wanted else 0.0


@dataclass(frozen=True, slots=True)
class EmbeddingScorer:
    """Cosine of the question's and each sentence's embeddings (one batch), plus ``lexical_weight``
    times the lexical score: the cosine sees paraphrase, the word overlap sees names and numbers a
    small embedder blurs."""

    embedder: Embedder
    lexical_weight: float = 0.5

    def __call__(self, question: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(-1)
        vectors = np.asarray(self.embedder.embed_documents(list(texts)), dtype=np.float32)
        cosines = vectors @ query
        weight = self.lexical_weight
        return [float(c) + weight * lexical_score(question, t) for c, t in zip(cosines, texts, strict=True)]


@dataclass(frozen=True, slots=True)
class _Sentence:
    source: int  # index into context.sources
    index: int  # position in its passage
    start: int  # offsets in the passage text
    end: int
    score: float
    tokens: int


def compress(
    context: Context,
    question: str,
    budget: int,
    count_tokens: Callable[[str], int],
    scorer: SentenceScorer,
) -> Context | None:
    """``context`` cut to ``budget`` tokens by sentence selection; unchanged when it fits already.

    None when not even the single best sentence fits (the caller falls back to truncation).
    """
    if context.tokens <= budget or not context.sources:
        return context
    spans = [sentences(source.text) for source in context.sources]
    flat = [(i, j, start, end) for i, passage in enumerate(spans) for j, (start, end) in enumerate(passage)]
    if not flat:
        return None
    texts = [context.sources[i].text[start:end] for i, _, start, end in flat]
    scores = scorer(question, texts)
    items = [
        _Sentence(i, j, start, end, score + _RANK_BONUS / (i + 1), count_tokens(text))
        for (i, j, start, end), text, score in zip(flat, texts, scores, strict=True)
    ]
    # The top hit's best sentence goes first: the retriever ranked that passage highest, so its best
    # sentence is kept even when a lower passage's sentence scores a little higher.
    top = max((s for s in items if s.source == 0), key=lambda s: s.score, default=None)
    order = sorted(items, key=lambda s: -s.score)
    if top is not None:
        order.remove(top)
        order.insert(0, top)
    headers = [count_tokens(render_source(n + 1, s.title, "")) for n, s in enumerate(context.sources)]
    elision = max(1, count_tokens(ELISION.strip()))
    kept: list[_Sentence] = []
    used = 0
    opened: set[int] = set()
    for sentence in order:
        # Estimated cost: the sentence, a joiner, and the source's header the first time.
        cost = sentence.tokens + elision + (0 if sentence.source in opened else headers[sentence.source])
        if used + cost > budget:
            continue
        kept.append(sentence)
        opened.add(sentence.source)
        used += cost
    # The estimate is per piece; the rendered passages are counted exactly, dropping the least
    # relevant sentence until they fit.
    while kept:
        built = _build(context, kept, count_tokens)
        if built.tokens <= budget:
            log.debug("compressed %d sentences to %d (%d -> %d tokens)", len(items), len(kept), context.tokens,
                      built.tokens)
            return built
        kept.remove(min(kept[1:] or kept, key=lambda s: s.score))
    return None


def _build(context: Context, kept: Sequence[_Sentence], count_tokens: Callable[[str], int]) -> Context:
    by_source: dict[int, list[_Sentence]] = {}
    for sentence in kept:
        by_source.setdefault(sentence.source, []).append(sentence)
    sources: list[ContextSource] = []
    used = 0
    for i in sorted(by_source):
        source = context.sources[i]
        chosen = sorted(by_source[i], key=lambda s: s.index)
        number = len(sources) + 1
        # Runs of adjacent sentences: one exact slice of the passage (and so of the document) each.
        runs: list[tuple[int, int]] = []
        previous = -2
        for s in chosen:
            if s.index == previous + 1:
                runs[-1] = (runs[-1][0], s.end)
            else:
                runs.append((s.start, s.end))
            previous = s.index
        compressed = _compressed(source, runs, number)
        tokens = count_tokens(render_source(number, compressed.title, compressed.text))
        sources.append(replace(compressed, tokens=tokens))
        used += tokens
    kept_chunks = sum(len(s.chunk_ids) for s in sources)
    total_chunks = len(context.hits) if context.hits else sum(len(s.chunk_ids) for s in context.sources)
    return Context(tuple(sources), used, max(0, total_chunks - kept_chunks), context.hits)


def _compressed(source: ContextSource, runs: Sequence[tuple[int, int]], number: int) -> ContextSource:
    if runs == [(0, len(source.text))] or (len(runs) == 1 and source.text[runs[0][0]:runs[0][1]] == source.text):
        return replace(source, number=number)
    pieces: list[str] = []
    segments: list[tuple[int, int, int]] = []
    at = 0
    for start, end in runs:
        if pieces:
            pieces.append(ELISION)
            at += len(ELISION)
        pieces.append(source.text[start:end])
        segments.append((at, at + end - start, source.char_start + start))
        at += end - start
    doc_start = source.char_start + runs[0][0]
    doc_end = source.char_start + runs[-1][1]
    spans = tuple(
        span for span in source.chunk_spans
        if any(span[1] < source.char_start + e and span[2] > source.char_start + s for s, e in runs)
    )
    return replace(
        source, number=number, text="".join(pieces), char_start=doc_start, char_end=doc_end,
        chunk_ids=tuple(span[0] for span in spans) or source.chunk_ids, chunk_spans=spans or source.chunk_spans,
        page=spans[0][3] if spans else source.page,
        segments=tuple(segments) if len(segments) > 1 else (),  # one slice: text is document[char_start:char_end]
    )
