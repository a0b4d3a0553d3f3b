"""Context compression: sentence selection within the budget, exact offsets, order and elisions.

The scorer here is the lexical score alone (no model), so which sentences win is known in advance;
tests/integration/test_compress_ask.py runs the embedding scorer with a real model.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from localrag.answer.citations import check
from localrag.answer.compress import ELISION, EmbeddingScorer, compress, lexical_score
from localrag.answer.context import Context, ContextBuilder
from localrag.answer.sentences import sentences
from localrag.generate.base import approx_tokens
from localrag.generate.prompts import render_source
from localrag.types import Hit

PREFIX = "Header line that is not part of the passage. "
BEES = (
    "Honeybees share the location of flowers with a waggle dance. The angle of the dance gives the "
    "direction relative to the sun. Workers groom one another in the hive at night. The duration of the "
    "waggle run encodes the distance to the flowers. Drones do not forage. A colony can hold fifty thousand "
    "workers. The queen lays up to two thousand eggs a day."
)
TIDES = (
    "Tides follow the moon. Spring tides come at new and full moon. The waggle dance of bees was decoded by "
    "Karl von Frisch. Neap tides come at the quarter moons."
)
DOCS = {"bees": PREFIX + BEES, "tides": TIDES}


def lexical(question: str, texts: Sequence[str]) -> list[float]:
    return [lexical_score(question, t) for t in texts]


def hit(doc_id: str, chunk_id: int = 1) -> Hit:
    document = DOCS[doc_id]
    start = len(PREFIX) if doc_id == "bees" else 0
    return Hit(chunk_id=chunk_id, doc_id=doc_id, text=document[start:], score=1.0, source=f"/c/{doc_id}.md",
               title=doc_id.title(), char_start=start, char_end=len(document))


def whole(hits: list[Hit]) -> Context:
    return ContextBuilder(approx_tokens, 10**9).build(hits)


def exact(context: Context) -> None:
    """Every kept slice of every source is the document's text at its offsets."""
    for source in context.sources:
        document = DOCS[source.doc_id]
        if not source.segments:
            assert document[source.char_start : source.char_end] == source.text
            continue
        for text_start, text_end, doc_start in source.segments:
            assert document[doc_start : doc_start + text_end - text_start] == source.text[text_start:text_end]
        assert source.segments[0][2] == source.char_start
        last = source.segments[-1]
        assert last[2] + last[1] - last[0] == source.char_end


QUESTION = "How does the waggle dance encode the distance to flowers?"


def test_keeps_the_most_relevant_sentences_within_the_budget_with_exact_offsets() -> None:
    full = whole([hit("bees"), hit("tides", 2)])
    budget = 90  # of 154: room for the three sentences sharing the question's words, not for the rest
    out = compress(full, QUESTION, budget, approx_tokens, lexical)
    assert out is not None and out.tokens <= budget < full.tokens
    assert out.tokens == sum(approx_tokens(render_source(s.number, s.title, s.text)) for s in out.sources)
    bees = out.sources[0]
    assert bees.doc_id == "bees" and bees.number == 1
    # The sentence naming waggle, distance and flowers is kept; the off-topic ones are not.
    assert "The duration of the waggle run encodes the distance to the flowers." in bees.text
    assert "Drones do not forage." not in bees.text and "groom" not in bees.text
    # A lower-ranked passage's relevant sentence is kept too (truncation would drop that passage).
    assert [s.text for s in out.sources[1:]] == ["The waggle dance of bees was decoded by Karl von Frisch."]
    truncated = ContextBuilder(approx_tokens, budget).build([hit("bees"), hit("tides", 2)])
    assert [s.doc_id for s in truncated.sources] == ["bees"] and "Frisch" not in truncated.sources[0].text
    exact(out)


def test_order_is_kept_and_non_adjacent_sentences_are_marked_as_elided() -> None:
    full = whole([hit("bees")])
    out = compress(full, QUESTION, full.tokens * 2 // 3, approx_tokens, lexical)
    assert out is not None
    source = out.sources[0]
    pieces = source.text.split(ELISION)
    assert len(pieces) == len(source.segments) >= 2
    positions = [BEES.index(p) for p in pieces]
    assert positions == sorted(positions)  # document order
    for a, b in pairwise(source.segments):
        gap = DOCS["bees"][a[2] + a[1] - a[0] : b[2]]
        assert gap.strip(), "an elision marks text left out, never adjacent sentences"
    # Adjacent kept sentences stay one slice (no elision between them).
    spans = sentences(BEES)
    kept = [i for i, (s, e) in enumerate(spans) if BEES[s:e] in source.text]
    for i, j in pairwise(kept):
        between = source.text[source.text.index(BEES[slice(*spans[i])]):source.text.index(BEES[slice(*spans[j])])]
        assert (ELISION in between) == (j != i + 1)
    exact(out)


def test_a_context_within_the_budget_is_unchanged() -> None:
    full = whole([hit("bees"), hit("tides", 2)])
    assert compress(full, QUESTION, full.tokens, approx_tokens, lexical) is full
    short = whole([hit("tides")])
    same = compress(short, QUESTION, short.tokens + 100, approx_tokens, lexical)
    assert same is short and same.sources[0].text == TIDES and not same.sources[0].segments


def test_the_top_hits_best_sentence_is_kept_and_lower_passages_may_be_dropped() -> None:
    # The tides passage holds a sentence about the waggle dance too; a budget room for about one
    # sentence keeps the top hit's best one.
    full = whole([hit("bees"), hit("tides", 2)])
    header = approx_tokens(render_source(1, "Bees", ""))
    target = "The duration of the waggle run encodes the distance to the flowers."
    out = compress(full, QUESTION, header + approx_tokens(target) + 3, approx_tokens, lexical)
    assert out is not None
    assert [s.doc_id for s in out.sources] == ["bees"] and out.sources[0].text == target
    assert out.dropped_hits == 1
    exact(out)


def test_nothing_fits_returns_none() -> None:
    full = whole([hit("bees")])
    assert compress(full, QUESTION, 3, approx_tokens, lexical) is None


def test_citations_on_a_compressed_passage_quote_the_document_exactly() -> None:
    full = whole([hit("bees"), hit("tides", 2)])
    out = compress(full, QUESTION, 90, approx_tokens, lexical)
    assert out is not None
    checked = check("The duration of the waggle run encodes the distance [1]. Karl von Frisch decoded it [2].", out)
    assert len(checked.citations) == 2
    for c in checked.citations:
        document = DOCS[c.doc_id]
        assert document[c.quote_start : c.quote_end] == c.quote and c.quote
        assert ELISION.strip() not in c.quote
        assert c.char_start <= c.quote_start < c.quote_end <= c.char_end
    assert "encodes the distance" in checked.citations[0].quote
    assert "Karl von Frisch" in checked.citations[1].quote


def test_a_quote_crossing_an_elision_keeps_one_slice() -> None:
    full = whole([hit("bees")])
    out = compress(full, QUESTION, full.tokens * 2 // 3, approx_tokens, lexical)
    assert out is not None
    source = out.sources[0]
    assert len(source.segments) >= 2
    start, end, doc_start, doc_end = source.document_span(0, len(source.text))
    assert (start, end) in {(a, b) for a, b, _ in source.segments}
    assert DOCS["bees"][doc_start:doc_end] == source.text[start:end]


def test_embedding_scorer_combines_cosine_and_word_overlap(fake_embedder) -> None:  # type: ignore[no-untyped-def]
    texts = ["The waggle dance encodes distance.", "Neap tides come at the quarter moons."]
    plain = EmbeddingScorer(fake_embedder, lexical_weight=0.0)(QUESTION, texts)
    mixed = EmbeddingScorer(fake_embedder, lexical_weight=1.0)(QUESTION, texts)
    assert len(plain) == 2
    assert mixed[0] - plain[0] == lexical_score(QUESTION, texts[0]) > 0
    assert mixed[1] == plain[1]
    assert EmbeddingScorer(fake_embedder)(QUESTION, []) == []
