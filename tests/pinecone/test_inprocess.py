"""localrag.pinecone in process: the SDK's call shapes and Pinecone's semantics, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from localrag.errors import InvalidInputError, NotFoundError
from localrag.pinecone import ApiError, Pinecone, ServerlessSpec, SparseValues, Vector


@pytest.fixture
def pc(tmp_path: Path) -> Pinecone:
    client = Pinecone(api_key="ignored", path=tmp_path)
    yield client
    client.close()


def test_upsert_forms_batches_and_fetch(pc: Pinecone) -> None:
    pc.create_index(name="forms", dimension=2, metric="dotproduct", spec=ServerlessSpec(cloud="aws", region="eu"))
    assert pc.describe_index("forms").spec == {"serverless": {"cloud": "aws", "region": "eu"}}
    idx = pc.Index("forms")
    response = idx.upsert(vectors=[("t", [1, 0]), ("m", [0, 1], {"n": 3}), {"id": "d", "values": [1, 1]},
                                   Vector(id="v", values=[2, 0], sparse_values=SparseValues([4], [1.5]))],
                          namespace="__default__", batch_size=3)
    assert response.upserted_count == 4 and response["upserted_count"] == 4
    got = idx.fetch(ids=["m", "v", "absent"])
    assert set(got.vectors) == {"m", "v"}  # a missing id is omitted
    assert got.vectors["m"].metadata == {"n": 3.0} and got.vectors["v"].sparse_values.indices == [4]
    hybrid = idx.query(vector=[1, 0], sparse_vector={"indices": [4], "values": [2.0]}, top_k=2)
    assert [(m.id, m.score) for m in hybrid.matches] == [("v", 5.0), ("d", 1.0)]  # dense + sparse
    idx.delete(ids=["absent"])  # deleting a missing id is not an error
    assert idx.describe_index_stats().total_vector_count == 4


def test_filters_apply_before_top_k(pc: Pinecone) -> None:
    pc.create_index(name="filt", dimension=2, metric="cosine")
    idx = pc.Index("filt")
    idx.upsert(vectors=[(f"near{i}", [1, 0.01 * i], {"keep": False}) for i in range(50)]
               + [(f"far{i}", [-1, 0.01 * i], {"keep": True}) for i in range(3)])
    matches = idx.query(vector=[1, 0], top_k=3, filter={"keep": True}).matches
    assert sorted(m.id for m in matches) == ["far0", "far1", "far2"]  # exactly k, all far from the query


def test_list_is_bitwise_and_paginated(pc: Pinecone) -> None:
    pc.create_index(name="order", dimension=1, metric="dotproduct")
    idx = pc.Index("order")
    ids = ["b", "B", "a#2", "a#10", "_", "a", "Z9"]
    idx.upsert(vectors=[(i, [1.0]) for i in ids], namespace="ns")
    pages = list(idx.list(namespace="ns", limit=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [v.id for p in pages for v in p] == sorted(ids, key=str.encode) == ["B", "Z9", "_", "a", "a#10", "a#2", "b"]
    assert [v.id for v in idx.list_paginated(prefix="a#", namespace="ns").vectors] == ["a#10", "a#2"]
    with pytest.raises(ApiError) as info:
        idx.list_paginated(namespace="ns", pagination_token="not-a-token")
    assert info.value.status_code == 400 and isinstance(info.value, InvalidInputError)


def test_update_merges_and_errors_keep_their_class(pc: Pinecone) -> None:
    pc.create_index(name="upd", dimension=2, metric="cosine")
    idx = pc.Index("upd")
    idx.upsert(vectors=[("a", [1, 0], {"x": "1", "y": "2"})])
    idx.update(id="a", set_metadata={"y": "3", "z": True})
    assert idx.fetch(ids=["a"]).vectors["a"].metadata == {"x": "1", "y": "3", "z": True}
    assert idx.update(filter={"z": True}, set_metadata={"w": 1}, dry_run=True).matched_records == 1
    assert "w" not in idx.fetch(ids=["a"]).vectors["a"].metadata
    with pytest.raises(NotFoundError):  # the localrag class and the SDK-shaped one at once
        pc.describe_index("nope")
    with pytest.raises(ApiError) as info:
        idx.update(id="a", set_metadata={"x": None})
    assert info.value.body["code"] == 3


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with Pinecone(path=tmp_path) as pc:
        pc.create_index(name="keep", dimension=3, metric="euclidean", deletion_protection="enabled", tags={"t": "1"})
        pc.Index("keep").upsert(vectors=[("a", [1, 2, 3], {"k": "v"})], namespace="n")
        pc.Index("keep").create_namespace(name="empty")
    with Pinecone(path=tmp_path) as pc:
        model = pc.describe_index("keep")
        assert (model.metric, model.deletion_protection, model.tags) == ("euclidean", "enabled", {"t": "1"})
        idx = pc.Index(host=model.host)
        assert idx.fetch(ids=["a"], namespace="n").vectors["a"].values == [1.0, 2.0, 3.0]
        assert [n.name for page in idx.list_namespaces() for n in page.namespaces] == ["empty", "n"]
        with pytest.raises(ApiError) as info:
            pc.delete_index("keep")
        assert info.value.status_code == 403
        pc.configure_index("keep", deletion_protection="disabled")
        pc.delete_index("keep")
        assert not pc.has_index("keep") and pc.list_indexes().names() == []


def test_a_cleared_namespace_never_reuses_a_cached_filter(tmp_path: Path) -> None:
    """Filter results are cached per namespace version; emptying a namespace must not restart the count."""
    with Pinecone(path=tmp_path) as pc:
        pc.create_index(name="cache", dimension=2, metric="dotproduct")
        index = pc.Index("cache")
        flt = {"genre": {"$eq": "a"}}
        index.upsert(vectors=[("x", [1.0, 0.0], {"genre": "a"})])
        assert [m.id for m in index.query(vector=[1.0, 0.0], top_k=5, filter=flt).matches] == ["x"]
        index.delete(delete_all=True)
        index.upsert(vectors=[("y", [1.0, 0.0], {"genre": "b"})])  # the same slot, the same count of writes
        assert index.query(vector=[1.0, 0.0], top_k=5, filter=flt).matches == []
        pc.indexes.create(name="dcache", schema={"fields": {"t": {"type": "string", "full_text_search": {}}}})
        docs = pc.index(name="dcache").documents
        clause = [{"type": "text", "query": "word", "fields": ["t"]}]
        docs.upsert(namespace="n", documents=[{"_id": "x", "t": "word", "genre": "a"}])
        assert [m.id for m in docs.search(namespace="n", top_k=5, score_by=clause, filter=flt).matches] == ["x"]
        docs.delete(namespace="n", delete_all=True)
        docs.upsert(namespace="n", documents=[{"_id": "y", "t": "word", "genre": "b"}])
        assert docs.search(namespace="n", top_k=5, score_by=clause, filter=flt).matches == []
