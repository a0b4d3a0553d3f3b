"""vector.backend = "pinecone_documents": the pipeline's own search and answer suites, re-run with every
chunk on one hosted document index reached through the official SDK (our server on 127.0.0.1 stands in
for hosted Pinecone), plus replicas: engines with their own empty data directories sharing that index."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import HashingEmbedder
from serving import running_server, sdk_client
from suites import collect_pipeline_suites
from threaded_server import app_in_thread

from localrag import engine as engine_module
from localrag.config import Settings, load_settings
from localrag.engine import LocalRAG
from localrag.errors import ConfigError, NotFoundError
from localrag.pinecone.hosted_docs import schema
from localrag.server import create_app as create_rag_app
from localrag.types import Document

pytestmark = pytest.mark.server
DIM = 64  # the fake embedder's

# The pipeline's own suites, collected again so they run against this module's fixtures and environment.
# Left out: tests of the local index files and of the single-writer lock, which this mode does not have
# (its store is the hosted index; replicas write side by side).
_LOCAL_ONLY = {
    "test_reopen_uses_saved_indexes_and_rebuilds_damaged_ones",
    "test_stale_index_is_caught_up_from_the_change_log",
    "test_reader_behind_a_pruned_change_log_rebuilds",
    "test_the_writer_removes_temp_files_left_by_a_killed_index_save",
    "test_second_process_reader_sees_new_writes",
}
collect_pipeline_suites(globals(), "hosted_documents", _LOCAL_ONLY)

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our server as the hosted service; yields the host of the document index the pipeline uses."""
    with running_server(tmp_path_factory.mktemp("hosted")) as url:
        pc = sdk_client(url)
        bm = load_settings(None).bm25
        pc.indexes.create(name="corpus", schema=schema(DIM, bm.stem, bm.stopwords))
        yield pc.indexes.describe("corpus").host


@pytest.fixture(autouse=True)
def documents_backend(hosted: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Switching needs no code change: settings (here from the environment) pick the backend.

    The suites assume that a new data directory is an empty corpus; here the corpus is the hosted index,
    so each data directory whose engine reads its own settings gets a namespace prefix of its own (the
    replica tests below
    pass one shared prefix explicitly)."""
    prefix = f"t{next(_prefixes)}-"
    monkeypatch.setenv("PINECONE_API_KEY", "test-key")
    monkeypatch.setenv("LOCALRAG_VECTOR__BACKEND", "pinecone_documents")
    monkeypatch.setenv("LOCALRAG_VECTOR__HOST", hosted)
    monkeypatch.setenv("LOCALRAG_VECTOR__NAMESPACE_PREFIX", prefix)
    corpora: dict[Path, str] = {}

    def fresh_corpus(path: Path | None) -> Settings:
        loaded = load_settings(path)
        own = corpora.setdefault(Path(path or ".").resolve(), f"{prefix}{len(corpora)}-")
        return replace(loaded, vector=replace(loaded.vector, namespace_prefix=own))

    monkeypatch.setattr(engine_module, "load_settings", fresh_corpus)
    return prefix


class ReplicaPair:
    """Two engines with their own data dirs as one: ``add`` (and ``sync``) go through the first replica,
    everything else (search, ask, documents, delete, stats, the tests' own attribute writes) through the
    second, so each suite test checks that one replica's writes are what the other reads."""

    _VIA_FIRST = frozenset({"add", "sync"})

    def __init__(self, first: LocalRAG, second: LocalRAG) -> None:
        object.__setattr__(self, "_first", first)
        object.__setattr__(self, "_second", second)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._first if name in self._VIA_FIRST else self._second, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._second, name, value)


@pytest.fixture(params=["one engine", "two replicas"])
def fake_rag(request: pytest.FixtureRequest, tmp_path: Path, fake_embedder: HashingEmbedder) -> Iterator[Any]:
    """The suites' engine: one, or a pair of replicas sharing the hosted corpus (one data dir's prefix)."""
    first = LocalRAG(tmp_path / "data", embedder=fake_embedder)
    if request.param == "one engine":
        yield first
    else:
        shared = replace(load_settings(None), vector=first.settings.vector)
        with LocalRAG(tmp_path / "replica", settings=shared, embedder=fake_embedder) as second:
            yield ReplicaPair(first, second)
    first.close()


def test_everything_lives_on_the_hosted_index(fake_rag: LocalRAG, hosted: str) -> None:
    fake_rag.add([Document("p1", "pinecone hosted documents text", title="One", metadata={"topic": "x"}),
                  Document("p2", "another document entirely", metadata={"topic": "y", "n": 3})])
    assert fake_rag.store.stats()["documents"] == 0  # the local store stays empty
    remote = sdk_client(hosted.rsplit("/data/", 1)[0]).index(host=hosted)
    namespace = fake_rag.settings.vector.namespace_prefix
    found = remote.documents.fetch(namespace=namespace, filter={"doc_id": "p1"}).documents
    (record,) = found.values()
    assert record.get("chunk") == "pinecone hosted documents text" and record.get("m_topic") == "x"
    assert record.get("text").startswith("One\n")  # what BM25 indexes: title + chunk
    keyword = fake_rag.search("hosted documents", k=2, mode="keyword")
    assert keyword[0].doc_id == "p1" and keyword[0].scores["keyword"] > 0
    dense = fake_rag.search("another document entirely", k=1, mode="dense", filter={"n": {"$gte": 2}})
    assert [h.doc_id for h in dense] == ["p2"] and dense[0].metadata == {"topic": "y", "n": 3}
    stats = fake_rag.stats()
    assert stats["documents"] == 2 and stats["namespaces"][""]["vector_index"] == "pinecone_documents"


def _replica(tmp_path: Path, name: str) -> LocalRAG:
    """One replica: its own (empty) data directory, the test's hosted namespace prefix."""
    return LocalRAG(tmp_path / name, settings=load_settings(None), embedder=HashingEmbedder())


def test_two_replicas_share_one_hosted_index(tmp_path: Path) -> None:
    """Ingest through one, search, ask, list, read and delete through the other; each has only an empty data dir."""
    with _replica(tmp_path, "a") as a, _replica(tmp_path, "b") as b:
        text = "The violin concert opens with Bach. " * 3
        report = a.add([Document("v", text, title="Concert", metadata={"kind": "music"}),
                        Document("g", "Roses want acid soil and morning sun. " * 3, metadata={"kind": "garden"})],
                       namespace="shared")
        assert sorted(report.added) == ["g", "v"]
        hits = b.search("violin concert Bach", k=2, namespace="shared")
        assert hits[0].doc_id == "v" and hits[0].text in text
        assert b.get_document("v", namespace="shared").text == text  # whole text, from the chunk parts
        assert [d["doc_id"] for d in b.documents(namespace="shared")] == ["g", "v"]
        assert b.search("violin", k=5, namespace="shared", filter={"kind": "garden"})[0].doc_id == "g"
        # B's unchanged re-ingest is recognised from the hosted content hash: nothing re-embedded
        assert b.add(Document("v", text, title="Concert", metadata={"kind": "music"}),
                     namespace="shared").unchanged == ("v",)
        assert b.delete(doc_ids=["v", "missing"], namespace="shared") == 1
        assert {h.doc_id for h in a.search("violin concert Bach", k=5, namespace="shared")} == {"g"}
        with pytest.raises(NotFoundError):
            a.get_document("v", namespace="shared")
        assert a.delete(filter={"kind": "garden"}, namespace="shared") == 1
        assert b.search("roses soil", k=5, namespace="shared") == []
        assert a.stats()["documents"] == 0


def test_a_shrunk_document_loses_its_surplus_chunks(tmp_path: Path) -> None:
    with _replica(tmp_path, "a") as a, _replica(tmp_path, "b") as b:
        long_text = " ".join(f"word{i} sentence about astronomy." for i in range(400))
        a.add(Document("d", long_text))
        chunks_before = a.stats()["chunks"]
        assert chunks_before > 1
        b.add(Document("d", "now a short note about gardening."))
        assert a.stats()["chunks"] == 1
        assert a.get_document("d").text == "now a short note about gardening."
        assert [h.doc_id for h in a.search("astronomy word17", k=5, mode="keyword")] == []


def test_two_serve_replicas_behind_one_hosted_index(tmp_path: Path) -> None:
    """Two `localrag serve` apps on 127.0.0.1, each with its own empty data dir: HTTP writes through one
    are searched, answered and deleted through the other."""
    settings = load_settings(None).with_overrides({"generate": {"providers": "extractive"}})
    with LocalRAG(tmp_path / "a", settings=settings, embedder=HashingEmbedder()) as rag_a, \
            LocalRAG(tmp_path / "b", settings=settings, embedder=HashingEmbedder()) as rag_b, \
            app_in_thread(create_rag_app(tmp_path / "a", rag=rag_a)) as url_a, \
            app_in_thread(create_rag_app(tmp_path / "b", rag=rag_b)) as url_b, \
            httpx.Client(base_url=url_a, timeout=60) as a, httpx.Client(base_url=url_b, timeout=60) as b:
        for doc in ({"doc_id": "bees", "title": "Honeybees", "metadata": {"topic": "bees"},
                     "text": "Honeybees tell each other where flowers are with the waggle dance."},
                    {"doc_id": "tides", "title": "Tides", "metadata": {"topic": "sea"},
                     "text": "Tides rise and fall twice a day because the moon pulls on the oceans."}):
            assert a.post("/v1/documents", json=doc).status_code == 201
        hits = b.post("/v1/search", json={"query": "waggle dance flowers", "k": 2}).json()["hits"]
        assert hits[0]["doc_id"] == "bees"
        question = {"question": "How do honeybees tell each other where flowers are?", "k": 1}
        answer = b.post("/v1/ask", json=question).json()
        assert not answer["abstained"] and answer["citations"][0]["doc_id"] == "bees"
        assert {d["doc_id"] for d in b.get("/v1/documents").json()["documents"]} == {"bees", "tides"}
        assert b.delete("/v1/documents/bees").json() == {"deleted": 1}
        assert a.delete("/v1/documents/bees").status_code == 404  # gone for every replica
        hits = a.post("/v1/search", json={"query": "waggle dance flowers", "k": 2}).json()["hits"]
        assert [h["doc_id"] for h in hits] == ["tides"]
        again = b.post("/v1/ask", json=question).json()  # not an answer cached before the delete
        assert all(c["doc_id"] != "bees" for c in again["citations"])


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_documents(self, texts: Any) -> Any:
        self.embedded.extend(texts)
        return super().embed_documents(texts)


def test_a_rewrite_on_another_replica_embeds_only_changed_chunks(tmp_path: Path) -> None:
    """The unchanged chunks' vectors come back from the hosted index (as from the store, locally)."""
    counting = CountingEmbedder()
    with _replica(tmp_path, "a") as a, \
            LocalRAG(tmp_path / "b", settings=load_settings(None), embedder=counting) as b:
        body = " ".join(f"sentence {i} about the orbit of comets." for i in range(300))
        a.add(Document("c", body))
        chunks = a.stats()["chunks"]
        assert chunks > 2
        b.add(Document("c", body + " One more closing sentence."))
        assert 0 < len(counting.embedded) < chunks  # the tail chunk, not the whole document
        assert b.get_document("c").text.endswith("One more closing sentence.")


def test_a_replica_with_another_embedding_model_is_refused(tmp_path: Path) -> None:
    other = HashingEmbedder()  # the same dimension: only the recorded vector space tells them apart
    other.vector_space = "fine-tuned-elsewhere"  # type: ignore[misc]
    with _replica(tmp_path, "a") as a, \
            LocalRAG(tmp_path / "b", settings=load_settings(None), embedder=other) as b:
        a.add(Document("x", "comets have tails of dust and gas"))
        with pytest.raises(ConfigError, match="fine-tuned-elsewhere"):
            b.search("comets", k=1, mode="dense")
        with pytest.raises(ConfigError, match="was indexed with"):
            b.add(Document("y", "another text"))
        assert b.search("comets", k=1, mode="keyword")[0].doc_id == "x"  # BM25 needs no vectors
        assert [h.doc_id for h in a.search("comets dust", k=2)] == ["x"]  # nothing was written
