"""The engine on a real SQLite file and real FAISS/BM25, with the fake embedder.

The real models are exercised in tests/integration.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fakes import HashingEmbedder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localrag.engine import LocalRAG
from localrag.errors import ConfigError, FilterError, InvalidInputError, StoreLockedError
from localrag.index.manager import DENSE_FILE, INDEX_DIR, KEYWORD_FILE
from localrag.types import Document

TOPICS = [
    "astronomy telescope stars",
    "cooking pasta sauce",
    "football goal league",
    "python code compiler",
    "garden roses soil",
    "violin orchestra concert",
]


def docs(n: int, prefix: str = "d") -> list[Document]:
    return [
        Document(
            f"{prefix}{i}",
            f"Document {i} is about {TOPICS[i % len(TOPICS)]}. " * 3,
            title=f"Title {i}",
            metadata={"topic": TOPICS[i % len(TOPICS)].split()[0], "n": i, "tags": [f"t{i % 3}", f"u{i % 2}"]},
        )
        for i in range(n)
    ]


def test_ingest_search_delete(fake_rag: LocalRAG) -> None:
    report = fake_rag.add(docs(12))
    assert len(report.added) == 12 and report.chunks_added >= 12
    for mode in ("dense", "keyword", "hybrid"):
        hits = fake_rag.search("telescope stars", k=3, mode=mode)  # type: ignore[arg-type]
        assert hits and hits[0].metadata["topic"] == "astronomy", mode
        assert hits[0].text == fake_rag.get_document(hits[0].doc_id).text[hits[0].char_start : hits[0].char_end]
    hybrid = fake_rag.search("telescope stars", k=3)
    assert set(hybrid[0].scores) >= {"fused"}
    assert fake_rag.delete(doc_ids=["d0", "d6"]) == 2
    remaining = {h.doc_id for h in fake_rag.search("telescope stars", k=20)}
    assert "d0" not in remaining and "d6" not in remaining
    assert fake_rag.delete(doc_ids=["d0"]) == 0
    assert fake_rag.delete(filter={"topic": "cooking"}) == 2
    with pytest.raises(InvalidInputError, match="empty filter"):
        fake_rag.delete(filter={})
    with pytest.raises(InvalidInputError, match="exactly one"):
        fake_rag.delete()
    assert all(h.metadata["topic"] != "cooking" for h in fake_rag.search("pasta sauce", k=20))


def test_unchanged_reingest_is_a_noop_and_changes_replace(fake_rag: LocalRAG, fake_embedder: HashingEmbedder) -> None:
    fake_rag.add(docs(6))
    generation = fake_rag.store.generation()
    calls = fake_embedder.calls
    again = fake_rag.add(docs(6))
    assert len(again.unchanged) == 6 and not again.added and not again.updated
    assert fake_rag.store.generation() == generation and fake_embedder.calls == calls
    changed = Document("d1", "Completely new words about submarines and sonar.", title="New")
    report = fake_rag.add(changed)
    assert report.updated == ("d1",)
    hits = fake_rag.search("submarines sonar", k=1, mode="keyword")
    assert hits[0].doc_id == "d1"
    assert not [h for h in fake_rag.search("cooking pasta", k=20, mode="keyword") if h.doc_id == "d1"]


def test_namespaces_isolate(fake_rag: LocalRAG) -> None:
    fake_rag.add(docs(3, "a"), namespace="alpha")
    fake_rag.add(docs(3, "b"), namespace="beta")
    assert {h.doc_id[0] for h in fake_rag.search("astronomy", k=10, namespace="alpha")} == {"a"}
    assert {h.doc_id[0] for h in fake_rag.search("astronomy", k=10, namespace="beta")} == {"b"}
    assert fake_rag.search("astronomy", namespace="nobody") == []
    fake_rag.delete(doc_ids=["a0", "b0"], namespace="alpha")
    assert "b0" in {h.doc_id for h in fake_rag.search("astronomy", k=10, namespace="beta")}


def test_reopen_uses_saved_indexes_and_rebuilds_damaged_ones(tmp_path: Path, fake_embedder: HashingEmbedder) -> None:
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        rag.add(docs(8))
        before = [(h.doc_id, round(h.score, 5)) for h in rag.search("violin concert", k=5)]
    folder = tmp_path / INDEX_DIR / "1"
    assert (folder / DENSE_FILE).exists() and (folder / KEYWORD_FILE).exists()
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        assert [(h.doc_id, round(h.score, 5)) for h in rag.search("violin concert", k=5)] == before
    (folder / DENSE_FILE).write_bytes(b"garbage")
    (folder / KEYWORD_FILE).unlink()
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        assert [(h.doc_id, round(h.score, 5)) for h in rag.search("violin concert", k=5)] == before


def test_stale_index_is_caught_up_from_the_change_log(tmp_path: Path, fake_embedder: HashingEmbedder) -> None:
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        rag.add(docs(4))
    saved = {name: (tmp_path / INDEX_DIR / "1" / name).read_bytes() for name in (DENSE_FILE, KEYWORD_FILE)}
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        rag.add(Document("late", "a late document about lighthouses and fog"))
        rag.delete(doc_ids=["d0"])
    for name, data in saved.items():  # roll the cache files back: they are now stale
        (tmp_path / INDEX_DIR / "1" / name).write_bytes(data)
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        assert rag.search("lighthouses fog", k=1, mode="keyword")[0].doc_id == "late"
        assert "d0" not in {h.doc_id for h in rag.search("astronomy", k=10)}


def test_second_process_reader_sees_new_writes(tmp_path: Path, fake_embedder: HashingEmbedder) -> None:
    writer = LocalRAG(tmp_path, embedder=fake_embedder)
    reader = LocalRAG(tmp_path, embedder=fake_embedder, read_only=True)
    writer.add(docs(2))
    assert {h.doc_id for h in reader.search("astronomy", k=5)} >= {"d0"}
    with pytest.raises(StoreLockedError):
        reader.add(docs(1, "x"))
    second_writer = LocalRAG(tmp_path, embedder=fake_embedder)
    with pytest.raises(StoreLockedError, match="another process"):
        second_writer.add(docs(1, "y"))
    second_writer.close()
    writer.close()
    reader.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"filter": {"n": {"$gtx": 1}}}, FilterError, "unknown operator"),
        ({"filter": {"$and": "nope"}}, FilterError, r"\$and"),
        ({"k": 0}, InvalidInputError, "k must be an integer"),
        ({"mode": "fuzzy"}, InvalidInputError, "mode must be one of"),
        ({"alpha": 2.0}, InvalidInputError, "alpha"),
    ],
)
def test_bad_search_input_is_a_clear_error_and_loses_nothing(
    fake_rag: LocalRAG, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    fake_rag.add(docs(3))
    with pytest.raises(error, match=message):
        fake_rag.search("astronomy", **kwargs)
    assert fake_rag.stats()["documents"] == 3
    assert fake_rag.search("astronomy", k=1)


def test_other_embedding_model_is_refused(tmp_path: Path, fake_embedder: HashingEmbedder) -> None:
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        rag.add(docs(1))
    other = HashingEmbedder(dim=32)
    other.vector_space = "something-else"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="was indexed with"):
        LocalRAG(tmp_path, embedder=other)
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:  # the store is untouched
        assert rag.search("astronomy", k=1)


def test_concurrent_searches_while_writing(fake_rag: LocalRAG) -> None:
    fake_rag.add(docs(30))
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for _ in range(40):
                hits = fake_rag.search("garden roses soil", k=5)
                assert hits and all(h.text for h in hits)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    for batch in range(5):
        fake_rag.add(docs(6, prefix=f"w{batch}-"))
    for t in threads:
        t.join()
    assert not errors
    assert fake_rag.stats()["documents"] == 60


# -- filters against a brute-force oracle --------------------------------------------------

FIELDS = {
    "color": st.sampled_from(["red", "green", "blue"]),
    "year": st.integers(1990, 2000),
    "tags": st.lists(st.sampled_from(["x", "y", "z"]), max_size=3, unique=True),
    "flag": st.booleans(),
}


@st.composite
def metadata(draw: st.DrawFn) -> dict[str, Any]:
    return {name: draw(strategy) for name, strategy in FIELDS.items() if draw(st.booleans())}


@st.composite
def filters(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and draw(st.integers(0, 4)) == 0:
        return {draw(st.sampled_from(["$and", "$or"])): draw(st.lists(filters(depth + 1), min_size=1, max_size=3))}
    field = draw(st.sampled_from(sorted(FIELDS)))
    op = draw(st.sampled_from(["$eq", "$ne", "$in", "$nin", "$exists"] + (["$gt", "$lte"] if field == "year" else [])))
    if op == "$exists":
        return {field: {op: draw(st.booleans())}}
    scalar = {
        "color": FIELDS["color"],
        "year": FIELDS["year"],
        "tags": st.sampled_from(["x", "y", "z"]),
        "flag": st.booleans(),
    }[field]
    if op in ("$in", "$nin"):
        return {field: {op: draw(st.lists(scalar, min_size=1, max_size=3))}}
    return {field: {op: draw(scalar)}}


def oracle(flt: dict[str, Any], md: dict[str, Any]) -> bool:
    """Straight from Pinecone's documented semantics (missing fields match only $exists: false)."""
    ((key, value),) = flt.items()
    if key == "$and":
        return all(oracle(f, md) for f in value)
    if key == "$or":
        return any(oracle(f, md) for f in value)
    ((op, operand),) = value.items()
    if op == "$exists":
        return (key in md) == operand
    if key not in md:
        return False
    have = md[key] if isinstance(md[key], list) else [md[key]]
    if op == "$eq":
        return any(h == operand and type(h) is type(operand) for h in have)
    if op == "$ne":
        return not any(h == operand and type(h) is type(operand) for h in have)
    if op == "$in":
        return any(h == o and type(h) is type(o) for h in have for o in operand)
    if op == "$nin":
        return not any(h == o and type(h) is type(o) for h in have for o in operand)
    if op == "$gt":
        return any(h > operand for h in have)  # only "year" (ints) gets comparisons
    if op == "$lte":
        return any(h <= operand for h in have)
    raise AssertionError(op)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(records=st.lists(metadata(), min_size=1, max_size=25), flt=filters(), k=st.integers(1, 8))
def test_filtered_search_matches_oracle(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]], flt: dict[str, Any], k: int
) -> None:
    path = tmp_path_factory.mktemp("filters")
    with LocalRAG(path, embedder=HashingEmbedder()) as rag:
        rag.add([Document(f"r{i}", f"record number {i} text", metadata=md) for i, md in enumerate(records)])
        expected = {f"r{i}" for i, md in enumerate(records) if oracle(flt, md)}
        for mode in ("dense", "hybrid"):
            hits = rag.search("record text", k=k, mode=mode, filter=flt)  # type: ignore[arg-type]
            got = [h.doc_id for h in hits]
            assert set(got) <= expected, (flt, mode)
            assert len(got) == min(k, len(expected)), (flt, mode)  # filtered before top-k


def test_reader_behind_a_pruned_change_log_rebuilds(tmp_path: Path, fake_embedder: HashingEmbedder) -> None:
    writer = LocalRAG(tmp_path, embedder=fake_embedder)
    writer.add(docs(3))
    reader = LocalRAG(tmp_path, embedder=fake_embedder, read_only=True)
    writer.add(Document("late", "an entry about lighthouses and fog"))
    writer.delete(doc_ids=["d0"])
    writer.store.prune_changes(writer.store.generation())  # the log no longer reaches the reader
    assert reader.search("lighthouses fog", k=1, mode="keyword")[0].doc_id == "late"
    assert "d0" not in {h.doc_id for h in reader.search("astronomy", k=10)}
    reader.close()
    writer.close()


def test_iter_documents_pages_through_every_document(tmp_path: Path, fake_embedder: Any) -> None:
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        rag.add(docs(5))
        rag.add(docs(2, prefix="x"), namespace="other")
        found = list(rag.iter_documents(page=2))
        assert [d.doc_id for d in found] == ["d0", "d1", "d2", "d3", "d4"]
        assert found[3].metadata["n"] == 3 and found[3].title == "Title 3"
        assert [d.doc_id for d in rag.iter_documents("other", page=2)] == ["x0", "x1"]
        assert list(rag.iter_documents("missing")) == []


def test_the_writer_removes_temp_files_left_by_a_killed_index_save(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]

    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        rag.add([Document("a", "alpha beta gamma")])
    leftover = next((tmp_path / "indexes").rglob("*.npz")).with_name(".dense.npz.x1y2.tmp")
    leftover.write_bytes(b"half a save")
    with LocalRAG(tmp_path, embedder=fake_embedder, read_only=True) as reader:
        assert reader.search("alpha", k=1)[0].doc_id == "a"
    assert leftover.exists()  # readers never delete: the writer may be saving
    with LocalRAG(tmp_path, embedder=fake_embedder) as rag:
        rag.add([Document("b", "delta epsilon")])
    assert not leftover.exists()
