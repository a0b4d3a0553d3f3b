"""The store reads the large-index paths use: exact vectors by key (the IVF rerank) and the
namespace's texts in key-ordered batches (the bulk rebuild)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from localrag.store.sqlite import PreparedDocument, SQLiteStore
from localrag.types import Chunk, Document

DIM = 4


def write(store: SQLiteStore, namespace: str, doc_id: str, n_chunks: int) -> PreparedDocument:
    parts = [f"{doc_id} part {i} words" for i in range(n_chunks)]
    chunks, offset = [], 0
    for i, part in enumerate(parts):
        chunks.append(Chunk(part, offset, offset + len(part), i))
        offset += len(part) + 1
    vectors = np.random.default_rng(abs(hash(doc_id)) % 1000).standard_normal((n_chunks, DIM)).astype(np.float32)
    item = PreparedDocument(Document(doc_id, "\n".join(parts), title=f"T{doc_id}"), doc_id, chunks, vectors)
    store.write_documents(namespace, [item], DIM)
    return item


def test_iter_index_texts_pages_through_the_namespace_in_key_order(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    for i in range(5):
        write(store, "a", f"d{i}", 5)
        write(store, "b", f"e{i}", 2)  # interleaved keys of another namespace are not returned
    ns = store.namespace_id("a")
    assert ns is not None
    batches = list(store.iter_index_texts(ns, batch=7))
    assert [len(k) for k, _ in batches] == [7, 7, 7, 4]
    keys = np.concatenate([k for k, _ in batches])
    texts = [t for _, ts in batches for t in ts]
    whole_keys, whole_texts = store.index_texts(None, ns)
    assert np.array_equal(keys, whole_keys) and texts == whole_texts
    assert texts[0].startswith("Td0\n")  # title-prefixed, as the indexes see a chunk
    store.close()


def test_find_vectors_returns_the_stored_vectors_and_skips_missing_keys(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    first = write(store, "a", "d0", 3)
    write(store, "b", "e0", 2)
    ns_a, ns_b = store.namespace_id("a"), store.namespace_id("b")
    assert ns_a is not None and ns_b is not None
    keys_a, keys_b = store.chunk_keys(ns_a), store.chunk_keys(ns_b)
    asked = np.array([keys_a[2], 10_000, keys_b[0], keys_a[0]], dtype=np.int64)
    found, vectors = store.find_vectors(asked, ns_a, DIM)
    assert found.tolist() == [keys_a[2], keys_a[0]]  # in the order asked; gone and foreign keys left out
    assert np.array_equal(vectors, first.vectors[[2, 0]])
    store.delete_documents("a", ["d0"])
    found, vectors = store.find_vectors(keys_a, ns_a, DIM)
    assert len(found) == 0 and vectors.shape == (0, DIM)
    store.close()
