"""End to end with the real embedding model, a real SQLite file and real FAISS/BM25."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from sample_data import sample_texts

from localrag.config import IndexSettings, Settings
from localrag.engine import LocalRAG
from localrag.errors import FilterError
from localrag.index.faiss_index import FaissIndex
from localrag.samples import SAMPLE_DIR, SAMPLE_QUESTION
from localrag.types import Document

pytestmark = pytest.mark.model


@pytest.fixture
def rag(tmp_path: Path, real_embedder):  # type: ignore[no-untyped-def]
    with LocalRAG(tmp_path / "data", embedder=real_embedder) as engine:
        yield engine


def test_sample_corpus_ingest_search_delete(rag: LocalRAG) -> None:
    report = rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
    assert len(report.added) == 5 and not report.skipped
    for mode in ("dense", "keyword", "hybrid"):
        top = rag.search(SAMPLE_QUESTION, k=3, mode=mode)[0]  # type: ignore[arg-type]
        assert top.source.endswith("honeybees.md"), mode
        assert "dance" in top.text
    html_hit = rag.search("lactic acid bacteria starter", k=1)[0]
    assert html_hit.title == "Sourdough bread" and "console.log" not in html_hit.text
    again = rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
    assert len(again.unchanged) == 5 and again.chunks_added == 0
    honeybees = rag.search(SAMPLE_QUESTION, k=1)[0].doc_id
    assert rag.delete(doc_ids=[honeybees]) == 1
    assert all(h.doc_id != honeybees for h in rag.search(SAMPLE_QUESTION, k=10))
    assert rag.search("Fresnel lens", k=1, filter={"file_type": "text"})[0].source.endswith("lighthouses.txt")


def test_bad_inputs_are_skipped_with_reasons_and_nothing_stored_is_lost(rag: LocalRAG, tmp_path: Path) -> None:
    rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
    before = rag.stats()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage without xref")
    (bad / "binary.bin").write_bytes(bytes(range(256)) * 64)
    (bad / "empty.txt").write_text("")
    (bad / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    with (bad / "huge.txt").open("w") as fh:
        line = "fifty megabytes of text to test the size limit\n"
        fh.write(line * (50 * 1024 * 1024 // len(line) + 1))
    (bad / "good.md").write_text("# Tea\n\nGreen tea is made from unoxidised leaves of Camellia sinensis.\n")
    report = rag.add(bad)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"corrupt.pdf", "binary.bin", "empty.txt", "broken.docx", "huge.txt"}, reasons
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.bin"]
    assert "limit" in reasons["huge.txt"]
    assert len(report.added) == 1
    after = rag.stats()
    assert after["documents"] == before["documents"] + 1
    assert rag.search(SAMPLE_QUESTION, k=1)[0].source.endswith("honeybees.md")
    with pytest.raises(FilterError):
        rag.search("tea", filter={"file_type": {"$regex": "m.*"}})
    assert rag.stats()["documents"] == after["documents"]


def test_pdf_and_docx_pages_and_spans(rag: LocalRAG, tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph("Glaciers form where snow accumulates faster than it melts.")
    document.add_paragraph("Over centuries the snow compacts into dense blue ice.")
    document.save(tmp_path / "glaciers.docx")
    report = rag.add(tmp_path / "glaciers.docx")
    assert len(report.added) == 1
    hit = rag.search("how does snow turn into glacier ice", k=1)[0]
    assert hit.source.endswith("glaciers.docx")
    stored = rag.get_document(hit.doc_id)
    assert stored.text[hit.char_start : hit.char_end] == hit.text
    with zipfile.ZipFile(tmp_path / "glaciers.docx") as z:
        assert "word/document.xml" in z.namelist()


def test_hnsw_recall_against_exact_on_real_embeddings(real_embedder) -> None:  # type: ignore[no-untyped-def]
    texts = sample_texts(2000)
    vectors = real_embedder.embed_documents(texts)
    keys = np.arange(1, len(texts) + 1, dtype=np.int64)
    exact = FaissIndex(vectors.shape[1], IndexSettings())
    approx = FaissIndex(vectors.shape[1], IndexSettings(exact_threshold=100))
    exact.add(keys, vectors)
    approx.add(keys, vectors)
    assert (exact.kind, approx.kind) == ("flat", "hnsw")
    queries = real_embedder.embed_documents([t[:80] for t in texts[::20]])
    found = total = 0
    for truth, got in zip(exact.search(queries, 10), approx.search(queries, 10), strict=True):
        found += len({k for k, _ in truth} & {k for k, _ in got})
        total += len(truth)
    assert found / total >= 0.95, f"HNSW recall@10 {found / total:.3f}"


def test_default_settings_give_a_searchable_store_after_reopen(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    settings = Settings()
    with LocalRAG(tmp_path, settings=settings, embedder=real_embedder) as rag:
        rag.add(
            [
                Document("a", "Volcanoes erupt when magma rises through the crust."),
                Document("b", "Penguins live in the southern hemisphere."),
            ]
        )
    with LocalRAG(tmp_path, settings=settings, embedder=real_embedder, read_only=True) as rag:
        assert rag.search("lava and eruptions", k=1, mode="dense")[0].doc_id == "a"
