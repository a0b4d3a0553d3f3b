"""The Documents API's contract: the SDK 10.2 docstring examples run unchanged against ``localrag serve``,
error bodies and limits, include_fields, persistence, legacy indexes beside document ones, embed and
sparse_embed on the local models, and the README quick-start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pinecone import DenseVectorQuery, QueryStringQuery, SparseValues, SparseVectorQuery, TextQuery
from pinecone.schema_builder import SchemaBuilder
from serving import running_server, sdk_client
from threaded_server import app_in_thread

from localrag.pinecone import Pinecone
from localrag.pinecone.documents_embed import EmbedderSource
from localrag.pinecone.server import create_app

pytestmark = pytest.mark.server

README = Path(__file__).resolve().parents[2] / "README.md"


def articles(pc: Any, name: str = "articles-en") -> Any:
    schema = (SchemaBuilder()
              .add_dense_vector_field("embedding", dimension=1536, metric="cosine")
              .add_string_field("title", full_text_search={"language": "en"})
              .add_string_field("content", full_text_search={"language": "en", "stemming": True})
              .build())
    pc.indexes.create(name=name, schema=schema)
    return pc.index(name=name)


def test_sdk_docstring_examples_run_unchanged(sdk: Any) -> None:
    """The calls of the SDK's own examples (client/documents.py, score_by.py), verbatim but for the client."""
    idx = articles(sdk)
    response = idx.documents.upsert(
        namespace="published",
        documents=[
            {"_id": "article-101", "embedding": [0.1] * 1536, "title": "Vector basics"},
            {"_id": "article-102", "embedding": [0.2] * 1536},
        ],
    )
    assert response.upserted_count == 2
    idx.documents.upsert(namespace="published", documents=[
        {"_id": "article-101", "embedding": [0.1] * 1536, "title": "Intro to vectors",
         "content": "machine learning with vectors", "category": "tech"},
        {"_id": "article-102", "embedding": [0.2] * 1536, "title": "Advanced retrieval",
         "content": "learning to rank for machine retrieval", "category": "tech"},
        {"_id": "article-103", "embedding": [0.3] * 1536, "title": "Old news", "content": "machine",
         "category": "obsolete"},
        {"_id": "article-104", "embedding": [0.4] * 1536, "title": "Gardening", "category": "obsolete"},
    ])
    response = idx.documents.search(
        namespace="published",
        top_k=5,
        score_by=[TextQuery(query="machine learning", fields=["content"])],
        include_fields=["title", "content"],
        filter={"category": {"$eq": "tech"}},
    )
    assert [doc.id for doc in response.matches] == ["article-101", "article-102"]
    assert response.matches[0].title == "Intro to vectors" and response.matches[0].score > response.matches[1].score
    response = idx.documents.search(
        namespace="published",
        top_k=5,
        score_by=[TextQuery(query="machine learning", fields=["content"])],
        filter={"title": {"$match_phrase": "intro to vectors"}},
    )
    assert [doc.id for doc in response.matches] == ["article-101"]
    response = idx.documents.search(namespace="published", top_k=5,
                                    score_by=[QueryStringQuery(query="content:(machine OR retrieval) NOT title:old")])
    assert [doc.id for doc in response.matches] == ["article-102", "article-101"]
    response = idx.documents.search(namespace="published", top_k=2,
                                    score_by=[DenseVectorQuery(field="embedding", values=[0.1] * 1536)])
    assert len(response.matches) == 2 and response.matches[0].score == pytest.approx(1.0)

    response = idx.documents.fetch(namespace="published", ids=["article-101", "article-102"])
    assert {doc_id: doc.title for doc_id, doc in response.documents.items()} == {
        "article-101": "Intro to vectors", "article-102": "Advanced retrieval"}
    pagination_token, fetched = None, []
    while True:
        response = idx.documents.fetch(namespace="published", filter={"category": {"$eq": "tech"}},
                                       pagination_token=pagination_token, limit=1)
        fetched += list(response.documents)
        if response.pagination is None:
            break
        pagination_token = response.pagination.next
    assert fetched == ["article-101", "article-102"]
    response = idx.documents.fetch(namespace="published", filter={"title": {"$match_any": "vectors retrieval"}})
    assert sorted(response.documents) == ["article-101", "article-102"]

    assert [doc.id for doc in idx.documents.list(namespace="published", prefix="article-10")] == [
        "article-101", "article-102", "article-103", "article-104"]
    pages = list(idx.documents.list(namespace="published", limit=3).pages())
    assert [len(page.items) for page in pages] == [3, 1] and pages[-1].pagination_token is None

    idx.documents.update(namespace="published", documents=[
        {"_id": "article-101", "title": "An introduction to vector search"},
        {"_id": "article-102", "_remove_fields": ["category"]},
    ])
    docs = idx.documents.fetch(namespace="published", ids=["article-101", "article-102"]).documents
    assert docs["article-101"].title == "An introduction to vector search"
    assert "category" not in docs["article-102"].to_dict()
    response = idx.documents.update(namespace="published", filter={"category": {"$eq": "obsolete"}},
                                    set_fields={"review_status": "archived"})
    assert response.matched_records == 2
    response = idx.documents.delete(namespace="published", filter={"category": {"$eq": "obsolete"}})
    assert response.matched_records == 2
    idx.documents.delete(namespace="published", ids=["article-101"])
    idx.documents.delete(namespace="drafts", delete_all=True)
    assert [doc.id for doc in idx.documents.list(namespace="published")] == ["article-102"]
    model = sdk.indexes.describe("articles-en")
    assert set(model.schema.fields) == {"embedding", "title", "content"}
    sdk.indexes.delete("articles-en")


def test_include_fields_defaults_differ_for_search_and_fetch(sdk: Any, tmp_path: Path) -> None:
    for pc in (sdk, Pinecone(path=tmp_path)):
        idx = articles(pc, "incl")
        idx.documents.upsert(namespace="n", documents=[
            {"_id": "a", "embedding": [1.0] * 1536, "title": "alpha", "year": 2020}])
        clause = [TextQuery(query="alpha", fields=["title"])]
        hit = idx.documents.search(namespace="n", top_k=1, score_by=clause).matches[0]
        assert set(hit.to_dict()) == {"_id", "_score"}
        hit = idx.documents.search(namespace="n", top_k=1, score_by=clause, include_fields=["*"]).matches[0]
        assert set(hit.to_dict()) == {"_id", "_score", "embedding", "title", "year"}
        doc = idx.documents.fetch(namespace="n", ids=["a"]).documents["a"]
        assert set(doc.to_dict()) == {"_id", "embedding", "title", "year"} and doc.year == 2020.0
        doc = idx.documents.fetch(namespace="n", ids=["a"], include_fields=["year"]).documents["a"]
        assert doc.to_dict() == {"_id": "a", "year": 2020.0}
        pc.indexes.delete("incl")


def _post(url: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, headers={"Api-Key": "k", "X-Pinecone-Api-Version": "2026-07"})


def test_error_bodies_and_limits(server_url: str, sdk: Any) -> None:
    bad = _post(server_url, "/indexes", {"name": "bad", "schema": {"fields": {
        "t": {"type": "string"}}}})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert "full_text_search, embed or sparse_embed" in bad.json()["error"]["message"]
    for fields in ({"v": {"type": "dense_vector", "dimension": 0}}, {"t": {"type": "integer"}},
                   {"t": {"type": "string", "full_text_search": {"ngram": {"min_gram": 2, "max_gram": 3}}}}):
        assert _post(server_url, "/indexes", {"name": "bad", "schema": {"fields": fields}}).status_code == 400
    articles(sdk, "errs")
    base = "/data/errs/namespaces/n/documents"
    cases = [
        ("upsert", {"documents": [{"_id": "a", "title": "x"}]}, "lacks the required fields"),
        ("upsert", {"documents": [{"_id": "a", "embedding": [1.0] * 3}]}, "expected 1536 values"),
        ("upsert", {"documents": [{"_id": "a", "embedding": [1.0] * 1536, "x": None}]}, "null"),
        ("upsert", {"documents": [{"_id": "é", "embedding": [1.0] * 1536}]}, "ASCII"),
        ("upsert", {"documents": [{"_id": str(i), "embedding": [0.0]} for i in range(1001)]}, "maximum limit of 1000"),
        ("search", {"score_by": [{"type": "text", "query": "x", "fields": ["category"]}], "top_k": 1},
         "not a full-text searchable"),
        ("search", {"score_by": [{"type": "text", "query": "x", "fields": ["title"], "boost": 2}], "top_k": 1},
         "unknown keys"),
        ("search", {"score_by": [{"type": "query_string", "query": "titl*"}], "top_k": 1}, "not supported"),
        ("search", {"score_by": [{"type": "text", "query": "x", "fields": ["title"]}], "top_k": 10001}, "top_k"),
        ("search", {"score_by": [{"type": "text", "query": "x", "fields": ["title"]}], "top_k": 1,
                    "filter": {"title": {"$eq": "x"}}}, "full-text field"),
        ("delete", {"filter": {"title": {"$match_any": "x"}}}, "not supported in this filter"),
        ("delete", {}, "exactly one"),
        ("fetch", {"ids": ["a"], "filter": {"year": 1}}, "exactly one"),
    ]
    for op, body, needle in cases:
        response = _post(server_url, f"{base}/{op}", body)
        assert response.status_code == 400, (op, body, response.text)
        assert response.json()["code"] == 3 and response.json()["details"] == [], response.text
        assert needle in response.json()["message"], (needle, response.json())
    big = {"documents": [{"_id": "a", "embedding": [1.0] * 1536, "text": "x" * (2 * 1024 * 1024)}]}
    assert _post(server_url, f"{base}/upsert", big).status_code == 400
    assert _post(server_url, "/data/nope/namespaces/n/documents/search", cases[5][1]).status_code == 404
    sdk.indexes.delete("errs")


def test_legacy_indexes_beside_document_ones(sdk: Any, tmp_path: Path) -> None:
    for pc in (sdk, Pinecone(path=tmp_path)):
        pc.create_index(name="legacy", dimension=3, metric="dotproduct")
        legacy = pc.Index("legacy")
        legacy.upsert(vectors=[("v", [1.0, 0.0, 0.0])])
        assert legacy.query(vector=[1.0, 0.0, 0.0], top_k=1).matches[0].id == "v"
        with pytest.raises(Exception) as refused:
            legacy.documents.upsert(namespace="n", documents=[{"_id": "a", "title": "x"}])
        assert "vector index" in str(refused.value)
        docs = articles(pc, "docs")
        with pytest.raises(Exception) as refused:
            docs.upsert(vectors=[("v", [1.0] * 1536)])
        assert "document index" in str(refused.value)
        assert sorted(pc.list_indexes().names()) == ["docs", "legacy"]
        pc.delete_index("legacy")
        pc.indexes.delete("docs")


def test_documents_survive_a_restart(tmp_path: Path) -> None:
    pc = Pinecone(path=tmp_path)
    idx = pc.indexes.create(name="keep", schema={"fields": {
        "body": {"type": "string", "full_text_search": {"language": "en", "stemming": True}},
        "kw": {"type": "sparse_vector"}}})
    assert idx.name == "keep"
    docs = pc.index(name="keep").documents
    docs.upsert(namespace="n", documents=[{"_id": "a", "body": "running dogs", "kw": {"indices": [3], "values": [1.0]}},
                                          {"_id": "b", "body": "a cat sat"}])
    docs.delete(namespace="n", ids=["b"])
    before = docs.search(namespace="n", top_k=3, score_by=[TextQuery(query="run dog", fields=["body"])]).matches
    assert [m.id for m in before] == ["a"]  # stemming: "run" finds "running"
    pc.close()
    pc = Pinecone(path=tmp_path)
    docs = pc.index(name="keep").documents
    after = docs.search(namespace="n", top_k=3, score_by=[TextQuery(query="run dog", fields=["body"])]).matches
    assert [(m.id, m.score) for m in after] == [(m.id, m.score) for m in before]
    hit = docs.search(namespace="n", top_k=3, score_by=[SparseVectorQuery(
        field="kw", sparse_values=SparseValues(indices=[3], values=[2.0]))]).matches
    assert [(m.id, m.score) for m in hit] == [("a", 2.0)]
    assert [d.id for d in docs.list(namespace="n")] == ["a"]
    pc.close()


@pytest.mark.model
def test_embed_and_sparse_embed_on_local_models(tmp_path: Path, real_embedder: Any) -> None:
    source = EmbedderSource(lambda: real_embedder, real_embedder.dim)
    schema = {"fields": {"body": {"type": "string", "embed": {"model": "llama-text-embed-v2"}, "sparse_embed": {}},
                         "secret": {"type": "string", "sparse_embed": {}, "store_text": False}}}
    texts = {"cat": "The cat sleeps on the warm windowsill all afternoon.",
             "stock": "Shares fell sharply after the quarterly earnings report.",
             "bake": "Knead the dough and let the bread rise before baking."}
    with app_in_thread(create_app(tmp_path / "served", embedder=source)) as url:
        for pc in (sdk_client(url), Pinecone(path=tmp_path / "inproc", embedder=source)):
            model = pc.indexes.create(name="emb", schema={"fields": {"body": schema["fields"]["body"]}})
            if isinstance(pc, Pinecone):
                embed = model.schema["fields"]["body"]["embed"]
                assert (embed["dimension"], embed["model"]) == (real_embedder.dim, "llama-text-embed-v2")
            else:
                embed = model.schema.fields["body"].embed
                assert (embed.dimension, embed.model) == (real_embedder.dim, "llama-text-embed-v2")
            docs = pc.index(name="emb").documents
            upserted = docs.upsert(namespace="n", documents=[{"_id": k, "body": v} for k, v in texts.items()])
            assert upserted.upserted_count == 3 and upserted.usage.embed_total_tokens > 0
            hits = docs.search(namespace="n", top_k=3, score_by=[{"type": "embed", "field": "body",
                                                                 "query": "a kitten napping in the sun"}]).matches
            assert hits[0].id == "cat" and hits[0].score > hits[1].score
            hits = docs.search(namespace="n", top_k=3, score_by=[{"type": "sparse_embed", "field": "body",
                                                                 "query": "bread dough"}]).matches
            assert [h.id for h in hits] == ["bake"]
            hits = docs.search(namespace="n", top_k=3, score_by=[TextQuery(query="earnings", fields=["body"])])
            assert [h.id for h in hits.matches] == ["stock"]  # stored text is full-text searchable too
            pc.indexes.delete("emb")
    pc = Pinecone(path=tmp_path / "hidden", embedder=source)
    pc.indexes.create(name="hid", schema={"fields": {"secret": schema["fields"]["secret"]}})
    docs = pc.index(name="hid").documents
    docs.upsert(namespace="n", documents=[{"_id": "s", "secret": "launch codes"}])
    assert docs.fetch(namespace="n", ids=["s"]).documents["s"].to_dict() == {"_id": "s"}
    hits = docs.search(namespace="n", top_k=1, score_by=[{"type": "sparse_embed", "field": "secret",
                                                         "query": "launch"}]).matches
    assert [h.id for h in hits] == ["s"]
    with pytest.raises(Exception, match="store_text"):
        docs.fetch(namespace="n", ids=["s"], include_fields=["secret"])
    pc.close()


def test_readme_documents_quickstart_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- documents-quickstart -->\s*```python\n(.*?)```", text, re.S)
    assert block is not None, "README lost its Documents API quick-start"
    with running_server(tmp_path) as url:
        exec(compile(block.group(1).replace("http://127.0.0.1:5080", url), "README", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("doc-1 ") and out[1].startswith("doc-2 ") and out[2] == "['doc-1']", out
    assert out[3] == "[('doc-3', 'Gardening in spring'), ('doc-1', 'Vector search explained')]", out


def test_stats_and_namespaces_of_a_document_index(sdk: Any, tmp_path: Path) -> None:
    for pc in (sdk, Pinecone(path=tmp_path)):
        idx = articles(pc, "nss")
        for ns, n in (("one", 2), ("two", 3)):
            idx.documents.upsert(namespace=ns, documents=[
                {"_id": f"d{i}", "embedding": [1.0] * 1536, "title": "alpha" if i else "beta", "year": 2000 + i}
                for i in range(n)])
        stats = idx.describe_index_stats()
        assert {k: v.vector_count for k, v in stats.namespaces.items()} == {"one": 2, "two": 3}
        assert stats.total_vector_count == 5
        both = {"$and": [{"year": {"$gte": 2001}}, {"title": {"$match_any": "alpha"}}]}
        stats = idx.describe_index_stats(filter=both)
        assert {k: v.vector_count for k, v in stats.namespaces.items()} == {"one": 1, "two": 2}
        names = [n.name for page in idx.list_namespaces() for n in page.namespaces]
        assert names == ["one", "two"]
        assert int(idx.describe_namespace(name="two").record_count) == 3
        idx.delete_namespace(name="one")
        assert [n.name for page in idx.list_namespaces() for n in page.namespaces] == ["two"]
        assert idx.documents.fetch(namespace="one", ids=["d0"]).documents == {}
        with pytest.raises(Exception) as missing:
            idx.describe_namespace(name="one")
        assert getattr(missing.value, "status_code", None) == 404
        pc.indexes.delete("nss")


def test_sdk_schema_examples_create_what_they_declare(sdk: Any) -> None:
    """SchemaBuilder's and indexes.create's documented schemas, through the SDK against the server."""
    index = sdk.indexes.create(
        name="movie-recommendations",
        schema={"fields": {"your_vector": {
            "type": "dense_vector", "dimension": 1536, "metric": "cosine"}}},
    )
    assert index.status.ready  # the legacy-shaped schema: a vector index
    index = sdk.indexes.create(
        name="support-articles",
        schema={"fields": {
            "your_vector": {"type": "dense_vector",
                            "dimension": 1024, "metric": "cosine"},
            "keywords": {"type": "sparse_vector"},
            "body": {"type": "string",
                     "full_text_search": {"language": "en",
                                          "stemming": True}},
        }},
        deployment={"deployment_type": "managed",
                    "cloud": "aws", "region": "us-west-2"},
        tags={"env": "prod"},
    )
    described = sdk.indexes.describe("support-articles")
    assert described.tags == {"env": "prod"} and set(described.schema.fields) == {"your_vector", "keywords", "body"}
    assert described.schema.fields["body"].full_text_search.stemming is True
    built = [SchemaBuilder().add_string_field("title", full_text_search=True).build(),
             SchemaBuilder().add_string_field("title", language="english", stemming=True, stop_words=True).build(),
             SchemaBuilder().add_string_field("body", embed=True, store_text=False).build(),
             SchemaBuilder().add_dense_vector_field("your_vector", dimension=1536, metric="dotproduct")
             .add_sparse_vector_field("keyword_terms").build()]
    for i, schema in enumerate(built):
        sdk.indexes.create(name=f"built-{i}", schema=schema)
        fields = sdk.indexes.describe(f"built-{i}").schema.fields
        assert set(fields) == set(schema["fields"])
    assert sdk.indexes.describe("built-1").schema.fields["title"].full_text_search.stop_words is True
    assert sdk.indexes.describe("built-2").schema.fields["body"].store_text is False
    # A hosted model's own dimension cannot be had offline: refused, naming the local one.
    schema = SchemaBuilder().add_string_field(
        "body", embed={"model": "llama-text-embed-v2", "dimension": 512}, sparse_embed=True).build()
    with pytest.raises(Exception, match="local embedder makes 384-dimensional"):
        sdk.indexes.create(name="built-x", schema=schema)
    for name in ("movie-recommendations", "support-articles", "built-0", "built-1", "built-2", "built-3"):
        sdk.indexes.delete(name)


def test_batch_upsert_records_refused_batches(sdk: Any, tmp_path: Path) -> None:
    for pc in (sdk, Pinecone(path=tmp_path)):
        docs = articles(pc, "batches").documents
        items = [{"_id": f"d{i}", "embedding": [1.0] * (1536 if i != 7 else 3), "title": "x"} for i in range(12)]
        result = docs.batch_upsert(namespace="n", documents=items, batch_size=5, show_progress=False)
        assert (result.successful_item_count, result.failed_item_count) == (7, 5)
        assert result.has_errors and [e.batch_index for e in result.errors] == [1]
        assert {item["_id"] for item in result.failed_items} == {f"d{i}" for i in range(5, 10)}
        assert len(list(docs.list(namespace="n"))) == 7
        pc.indexes.delete("batches")
