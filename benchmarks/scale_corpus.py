"""Corpus for bench_scale.py: a real-embedder sample ingested by the engine, and a bulk built from it.

Sample: every SciFact abstract and SQuAD paragraph, plus documents made of two SciFact abstracts
joined (seeded), ingested through ``LocalRAG.add`` with the default embedder until about
``--ingest-chunks`` chunks exist. Its chunks keep their real vectors.

Bulk (STAND-IN VECTORS, clearly not model output): chunk i past the sample joins the first half of
sample chunk a's words with the second half of sample chunk b's (a, b drawn with a fixed seed), so
vocabulary, term statistics and lengths are real; its vector is normalise(v_a + v_b + noise) with
v_a, v_b the two source chunks' real MiniLM vectors and gaussian noise of norm about 0.3. Vectors so
keep the topic clusters of the real embedding space (which is what ANN recall depends on) without
hours of embedding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from timed_ingest import timed_add

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.eval.beir import read_jsonl
from localrag.store.sqlite import PreparedDocument
from localrag.types import Chunk, Document

NOISE_NORM = 0.3
BULK_CHUNKS_PER_DOC = 10


def source_documents(data: Path, want_chunks: int, seed: int = 11) -> list[Document]:
    """SciFact and SQuAD passages, then pairs of SciFact abstracts, about ``want_chunks`` chunks in all."""
    docs: list[Document] = []
    scifact: list[tuple[str, str]] = []
    for name in ("scifact", "squad-v1.1-dev"):
        for _, r in read_jsonl(data / name / "corpus.jsonl"):
            title, text = str(r.get("title", "")), str(r["text"])
            docs.append(Document(f"{name}/{r['_id']}", text, title=title))
            if name == "scifact":
                scifact.append((title, text))
    # ~1.4 tokens a word, 168 new tokens a chunk (200 with 32 overlapping), and chunks end at sentence
    # ends: one chunk per 128 estimated tokens matched the first run (20,562 chunks from 8,576 documents)
    estimate = sum(max(1, round(len(d.text.split()) * 1.4 / 128)) for d in docs)
    rng = np.random.default_rng(seed)
    i = 0
    while estimate < want_chunks:
        a, b = rng.choice(len(scifact), 2, replace=False)
        text = scifact[a][1] + "\n\n" + scifact[b][1]
        docs.append(Document(f"pair/{i}", text, title=scifact[a][0]))
        estimate += max(1, round(len(text.split()) * 1.4 / 128))
        i += 1
    return docs


def ingest_sample(data: Path, directory: Path, want_chunks: int, settings: Settings) -> dict[str, Any]:
    """The engine's own ingest of the sample with the real embedder: chunks/s, model load apart."""
    docs = source_documents(data, want_chunks)
    with LocalRAG(directory, settings=settings) as rag:
        timing = timed_add(rag, docs)
    return {
        "documents": len(docs),
        "chunks": timing.report.chunks_added,
        "seconds": round(timing.seconds, 1),
        "chunks_per_s": round(timing.chunks_per_s, 1),
        "embedder": settings.embed.model,
        "embedder_load_s": round(timing.load_s, 2),
    }


def sample_rows(rag: LocalRAG) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """(keys, chunk texts, titles, real vectors) of the ingested sample."""
    ns_id = rag.store.namespace_id("")
    assert ns_id is not None
    rows = rag.store._conn().execute(
        "SELECT c.id, c.text, d.title FROM chunks c JOIN documents d ON d.id = c.document_id"
        " WHERE c.namespace_id = ? ORDER BY c.id", (ns_id,)).fetchall()
    keys = np.asarray([r[0] for r in rows], np.int64)
    return keys, [r[1] for r in rows], [r[2] for r in rows], rag.store.vectors(keys, ns_id, rag.indexes.dim)


def bulk_documents(
    texts: list[str], titles: list[str], vectors: np.ndarray, count: int, seed: int, start: int = 0
) -> Iterator[PreparedDocument]:
    """``count`` recombined chunks with stand-in vectors, ``BULK_CHUNKS_PER_DOC`` to a document."""
    rng = np.random.default_rng(seed)
    dim = vectors.shape[1]
    words = [t.split() for t in texts]
    made = 0
    doc_no = start
    while made < count:
        n = min(BULK_CHUNKS_PER_DOC, count - made)
        a = rng.integers(0, len(texts), n)
        b = rng.integers(0, len(texts), n)
        noise = rng.normal(0.0, NOISE_NORM / np.sqrt(dim), (n, dim)).astype(np.float32)
        vec = vectors[a] + vectors[b] + noise
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        parts = [" ".join(words[x][: len(words[x]) // 2] + words[y][len(words[y]) // 2 :])
                 for x, y in zip(a, b, strict=True)]
        chunks, offset = [], 0
        for ordinal, part in enumerate(parts):
            chunks.append(Chunk(part, offset, offset + len(part), ordinal))
            offset += len(part) + 1
        doc = Document(f"bulk/{doc_no}", "\n".join(parts), title=titles[int(a[0])])
        yield PreparedDocument(doc, f"bulk{doc_no}", chunks, vec)
        made += n
        doc_no += 1


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
