"""ask() with context compression on, with real models: SmolLM2-135M (llama.cpp, one thread) and the
default embedder scoring the sentences. The budget is tight enough that the passages must be cut, so
the model sees compressed passages; every citation must still quote its document exactly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sample_data import small_model_settings

from localrag.answer.compress import ELISION
from localrag.answer.context import ContextBuilder
from localrag.engine import LocalRAG
from localrag.samples import SAMPLE_DIR

pytestmark = pytest.mark.model

BUDGET = 120
QUESTION = "Who built the first running machine?"


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRAG]:
    settings = small_model_settings(k=3, context_tokens=BUDGET, compression="sentences", adaptive=False)
    engine = LocalRAG(tmp_path_factory.mktemp("compress") / "data", settings=settings)
    engine.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
    yield engine
    engine.close()


def test_compressed_context_fits_the_budget_and_keeps_exact_slices(rag: LocalRAG) -> None:
    hits = rag.search(QUESTION, k=3)
    pipeline = rag.answers
    context = pipeline.build_context(QUESTION, hits, 64)
    whole = ContextBuilder(pipeline.generator.count_tokens, 10**9).build(hits)
    assert whole.tokens > BUDGET >= context.tokens  # it had to be cut
    assert any(s.segments for s in context.sources) or len(context.sources) < len(whole.sources)
    assert any("Drais" in s.text for s in context.sources)  # the answering sentence survived
    for source in context.sources:
        document = rag.get_document(source.doc_id, source.namespace).text
        slices = source.segments or ((0, len(source.text), source.char_start),)
        for text_start, text_end, doc_start in slices:
            assert document[doc_start : doc_start + text_end - text_start] == source.text[text_start:text_end]
        assert source.text.count(ELISION) == max(0, len(source.segments) - 1)


def test_ask_with_compression_cites_quotes_that_resolve_in_the_document(rag: LocalRAG) -> None:
    answer = rag.ask(QUESTION)
    assert not answer.abstained, answer.generated_text
    assert answer.citations, answer.text
    for c in answer.citations:
        document = rag.get_document(c.doc_id, c.namespace)
        assert c.quote and document.text[c.quote_start : c.quote_end] == c.quote
        assert ELISION.strip() not in c.quote
        assert c.char_start <= c.quote_start < c.quote_end <= c.char_end
        assert c.chunk_id in c.chunk_ids
    assert any("Drais" in c.quote for c in answer.citations), [c.quote for c in answer.citations]
