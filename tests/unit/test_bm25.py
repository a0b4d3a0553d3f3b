"""BM25Index: exact parity with rank_bm25.BM25Okapi (static and incremental), allow, persistence."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from localrag.errors import CorruptIndexError, InvalidInputError
from localrag.fileio import load_arrays, save_arrays
from localrag.index import bm25 as bm25_module
from localrag.index.bm25 import BM25Index
from localrag.index.tokenize import TextTokenizer
from localrag.protocols import KeywordIndex

TOK = TextTokenizer()
WORDS = [
    "model", "models", "modelling", "data", "dataset", "protein", "proteins", "cell", "cells",
    "cancer", "gene", "genes", "expression", "patient", "patients", "treatment", "clinical",
    "trial", "trials", "risk", "effect", "effects", "study", "studies", "result", "results",
    "mouse", "mice", "brain", "neuron", "neurons", "signal", "signalling", "pathway", "pathways",
    "immune", "response", "responses", "infection", "virus", "viral", "vaccine", "dose", "doses",
    "drug", "drugs", "therapy", "outcome", "outcomes", "sample", "samples", "method", "methods",
    "analysis", "analyses", "network", "networks", "learning", "training", "accuracy", "error",
    "errors", "café", "naïve", "Zürich", "résumé",
]
COMMON = ["the", "of", "and", "protein", "cell", "study"]  # frequent: some end up in > half the documents


def make_corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(WORDS))]
    docs = []
    for _ in range(n):
        words = rng.choices(WORDS, weights, k=rng.randint(0, 30)) + rng.sample(COMMON, rng.randint(0, 4))
        rng.shuffle(words)
        docs.append(" ".join(words).capitalize() + ".")
    return docs


def make_queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    queries = [" ".join(rng.sample(WORDS + COMMON, rng.randint(1, 5))) for _ in range(n)]
    return [*queries, "protein protein cells", "Café NAÏVE", "models of the cell", "the"]


def expected(
    live: dict[int, str], query: str, k: int, allow: set[int] | None = None
) -> list[tuple[int, float]]:
    """The oracle: BM25Okapi built fresh on the live corpus; docs holding a query term, best first."""
    keys = sorted(live)
    docs = [TOK(live[key]) for key in keys]
    if not any(docs):  # BM25Okapi divides by the vocabulary size
        return []
    scores = BM25Okapi(docs).get_scores(TOK(query))
    terms = set(TOK(query))
    found = [(key, float(s)) for key, doc, s in zip(keys, docs, scores, strict=True) if terms & set(doc)]
    found = [hit for hit in found if allow is None or hit[0] in allow]
    return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:k]


def assert_parity(index: BM25Index, live: dict[int, str], queries: list[str], k: int = 10) -> None:
    assert len(index) == len(live)
    assert index.keys().tolist() == sorted(live)
    for query in queries:
        want = expected(live, query, len(live) + 1)
        got = index.search(query, len(live) + 1)
        assert [key for key, _ in got] == [key for key, _ in want], query
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)
        assert [key for key, _ in index.search(query, k)] == [key for key, _ in want[:k]], query


def build(live: dict[int, str], **kw: float) -> BM25Index:
    index = BM25Index(TOK, **kw)
    index.add(np.array(list(live), dtype=np.int64), list(live.values()))
    return index


def test_implements_keyword_index_protocol() -> None:
    assert isinstance(BM25Index(), KeywordIndex)


def test_static_parity_with_bm25okapi() -> None:
    live = dict(enumerate(make_corpus(300), start=100))
    # The corpus exercises the epsilon floor: some terms have a negative raw IDF.
    ref = BM25Okapi([TOK(t) for t in live.values()])
    assert any(ref.idf[t] == ref.epsilon * ref.average_idf for t in ref.idf)
    assert_parity(build(live), live, make_queries(60))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # BM25Okapi: 0/0 on empty docs when b=1
@pytest.mark.parametrize(("k1", "b", "epsilon"), [(1.2, 0.5, 0.1), (0.9, 1.0, 0.5), (2.0, 0.0, 0.25)])
def test_parity_with_other_parameters(k1: float, b: float, epsilon: float) -> None:
    live = dict(enumerate(make_corpus(120, seed=5)))
    index = build(live, k1=k1, b=b, epsilon=epsilon)
    keys = sorted(live)
    ref = BM25Okapi([TOK(live[key]) for key in keys], k1=k1, b=b, epsilon=epsilon)
    for query in make_queries(20):
        scores = dict(index.search(query, len(live)))
        ref_scores = ref.get_scores(TOK(query))
        for i, key in enumerate(keys):
            if key in scores:
                assert abs(scores[key] - ref_scores[i]) < 1e-6


def test_documents_scoring_zero_still_match_when_idf_is_floored_at_zero() -> None:
    # epsilon 0 floors the idf of a term in most documents at 0: its documents still match (score 0),
    # as BM25Okapi ranks them, so the candidate set cannot be "total > 0" there.
    index = BM25Index(epsilon=0.0)
    texts = ["common word here", "common word there", "common rare", "common again", "other text"]
    index.add(np.arange(5, dtype=np.int64), texts)
    found = dict(index.search("common", 10))
    assert sorted(found) == [0, 1, 2, 3] and all(score == 0.0 for score in found.values())
    mixed = dict(index.search("common rare", 10))
    assert sorted(mixed) == [0, 1, 2, 3] and mixed[2] > 0 and mixed[0] == 0.0


def test_repeated_query_token_counts_each_time() -> None:
    live = dict(enumerate(make_corpus(80, seed=2)))
    index = build(live)
    once = dict(index.search("virus", 100))
    twice = dict(index.search("virus virus", 100))
    assert once and once.keys() == twice.keys()
    for key, score in once.items():
        assert twice[key] == pytest.approx(2 * score, abs=1e-9)
    assert_parity(index, live, ["virus virus", "virus virus brain"])


def test_parity_after_incremental_adds_removes_and_upserts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25_module, "_MIN_DEAD", 8)  # make compaction happen at this small size
    corpus = make_corpus(400, seed=3)
    queries = make_queries(15, seed=4)
    index = BM25Index(TOK)
    live: dict[int, str] = {}
    rng = random.Random(7)
    for start in range(0, 300, 25):  # batches of adds, each followed by a search (new runs, merges)
        batch = {key: corpus[key] for key in range(start, start + 25)}
        index.add(np.array(list(batch), dtype=np.int64), list(batch.values()))
        live.update(batch)
        assert index.search(queries[0], 5) == expected(live, queries[0], 5)
    assert_parity(index, live, queries)

    gone = rng.sample(sorted(live), 120)
    index.remove(np.array(gone, dtype=np.int64))
    for key in gone:
        del live[key]
    assert_parity(index, live, queries)

    upserts = {key: corpus[300 + i] for i, key in enumerate(rng.sample(sorted(live), 40))}
    fresh = {key: corpus[key] for key in range(340, 400)}
    index.add(np.array(list(upserts) + list(fresh), dtype=np.int64), [*upserts.values(), *fresh.values()])
    live.update(upserts)
    live.update(fresh)
    assert_parity(index, live, queries)


def test_remove_everything_then_add_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25_module, "_MIN_DEAD", 0)  # also drops the dead vocabulary
    live = dict(enumerate(make_corpus(50, seed=8)))
    index = build(live)
    index.remove(np.array(list(live), dtype=np.int64))
    assert len(index) == 0 and index.search("virus protein", 10) == []
    assert index.keys().tolist() == []
    live = {1000 + i: text for i, text in enumerate(make_corpus(40, seed=9))}
    index.add(np.array(list(live), dtype=np.int64), list(live.values()))
    assert_parity(index, live, make_queries(10, seed=10))


def test_empty_documents_count_towards_avgdl() -> None:
    live = {1: "virus vaccine", 2: "", 3: "the of and", 4: "virus brain brain", 5: "neuron"}
    index = build(live)
    assert len(index) == 5
    assert_parity(index, live, ["virus", "brain virus", "neuron"])


def test_no_match_empty_query_and_k_zero() -> None:
    index = build(dict(enumerate(make_corpus(30))))
    assert index.search("zzzunknownword", 10) == []
    assert index.search("", 10) == []
    assert index.search("the of and", 10) == []  # stopwords only
    assert index.search("virus", 0) == []
    assert BM25Index().search("virus", 10) == []


def test_ties_break_by_key_even_when_k_cuts_through_them() -> None:
    index = BM25Index(TOK)
    keys = np.array([50, 7, 31, 12, 99, 98, 97, 96, 95, 94], dtype=np.int64)
    index.add(keys, ["virus cell"] * 4 + ["brain", "mouse", "gene", "drug", "dose", "risk"])
    hits = index.search("virus", 2)
    assert [key for key, _ in hits] == [7, 12]
    assert hits[0][1] == hits[1][1] > 0


def test_results_sorted_and_capped() -> None:
    live = dict(enumerate(make_corpus(200, seed=11)))
    index = build(live)
    hits = index.search("virus brain network", 7)
    assert len(hits) == 7
    assert all(isinstance(key, int) and isinstance(score, float) for key, score in hits)
    assert all((a[1], -a[0]) >= (b[1], -b[0]) for a, b in itertools.pairwise(hits))


def test_allow_filters_before_top_k() -> None:
    live = dict(enumerate(make_corpus(300, seed=12), start=1))
    index = build(live)
    query = "virus vaccine"
    matching = [key for key, _ in expected(live, query, len(live))]
    assert len(matching) > 40
    # Allow only the weakest matches plus keys the index lacks: still exactly k come back.
    allow_set = set(matching[-25:]) | {10_000, 10_001}
    allow = np.array(sorted(allow_set), dtype=np.int64)
    hits = index.search(query, 10, allow=allow)
    assert len(hits) == 10
    assert hits == expected(live, query, 10, allow_set)
    assert {key for key, _ in hits} <= allow_set


def test_allow_with_fewer_matches_than_k_and_edge_cases() -> None:
    live = dict(enumerate(make_corpus(100, seed=13)))
    index = build(live)
    query = "virus"
    matching = [key for key, _ in expected(live, query, len(live))]
    non_matching = sorted(set(live) - set(matching))
    allow = np.array(sorted(matching[:3] + non_matching[:5]), dtype=np.int64)
    hits = index.search(query, 10, allow=allow)
    assert [key for key, _ in hits] == [key for key, _ in expected(live, query, 10, set(allow.tolist()))]
    assert len(hits) == 3
    assert index.search(query, 10, allow=np.array([], dtype=np.int64)) == []
    unsorted = np.array([matching[2], matching[0], matching[0]], dtype=np.int64)
    assert index.search(query, 10, allow=unsorted) == expected(live, query, 10, {matching[0], matching[2]})


def test_allow_with_sparse_keys() -> None:
    """Keys far apart take the binary-search path instead of the lookup table."""
    corpus = make_corpus(60, seed=14)
    live = {key * 1_000_003 - 5_000_000: text for key, text in enumerate(corpus)}
    index = build(live)
    allow_set = set(sorted(live)[::2])
    allow = np.array(sorted(allow_set), dtype=np.int64)
    for query in make_queries(10, seed=15):
        got, want = index.search(query, 5, allow=allow), expected(live, query, 5, allow_set)
        assert [key for key, _ in got] == [key for key, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)


def test_upsert_replaces_and_duplicate_keys_in_a_batch_keep_the_last() -> None:
    index = BM25Index(TOK)
    index.add(np.array([1, 2], dtype=np.int64), ["virus vaccine", "brain neuron"])
    index.add(np.array([1, 3, 1], dtype=np.int64), ["ignored text", "mouse", "brain signal"])
    assert len(index) == 3
    assert index.search("virus vaccine", 10) == []
    assert [key for key, _ in index.search("brain", 10)] == [1, 2]  # equal scores: key order
    assert index.search("ignored", 10) == []


def test_remove_missing_keys_is_not_an_error() -> None:
    index = build({1: "virus", 2: "brain"})
    index.remove(np.array([2, 99], dtype=np.int64))
    index.remove(np.array([2], dtype=np.int64))
    assert index.keys().tolist() == [1]
    assert index.search("brain", 10) == []


def test_invalid_input() -> None:
    index = BM25Index()
    with pytest.raises(InvalidInputError):
        index.add(np.array([1, 2], dtype=np.int64), ["only one"])
    with pytest.raises(InvalidInputError):
        index.add(np.array([1.5]), ["float key"])
    with pytest.raises(InvalidInputError):
        index.add(np.array([1], dtype=np.int64), [b"bytes"])  # type: ignore[list-item]
    assert len(index) == 0


def test_save_load_round_trip(tmp_path: Path) -> None:
    tok = TextTokenizer(stem=False, stopwords=True)
    live = dict(enumerate(make_corpus(150, seed=16), start=5))
    index = BM25Index(tok, k1=1.3, b=0.6, epsilon=0.3)
    index.add(np.array(list(live), dtype=np.int64), list(live.values()))
    index.remove(np.array([5, 6, 7], dtype=np.int64))
    path = tmp_path / "bm25.npz"
    index.save(path, stamp=42)
    loaded, stamp = BM25Index.load(path)
    assert stamp == 42
    assert loaded.tokenizer.config() == tok.config()
    assert (loaded.k1, loaded.b, loaded.epsilon) == (1.3, 0.6, 0.3)
    assert loaded.keys().tolist() == index.keys().tolist()
    for query in make_queries(20, seed=17):
        assert loaded.search(query, 10) == index.search(query, 10)
        allow = index.keys()[::3]
        assert loaded.search(query, 5, allow=allow) == index.search(query, 5, allow=allow)
    # The loaded index stays incremental.
    loaded.add(np.array([1000], dtype=np.int64), ["virus virus vaccine"])
    loaded.remove(np.array([8], dtype=np.int64))
    assert loaded.search("virus", 1)[0][0] == 1000
    assert 8 not in loaded.keys().tolist()


def test_save_load_empty_index(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    BM25Index().save(path, stamp=0)
    loaded, stamp = BM25Index.load(path)
    assert stamp == 0 and len(loaded) == 0 and loaded.search("virus", 3) == []


def test_load_parity_with_reference(tmp_path: Path) -> None:
    live = dict(enumerate(make_corpus(120, seed=18)))
    build(live).save(tmp_path / "i.npz", stamp=1)
    loaded, _ = BM25Index.load(tmp_path / "i.npz")
    assert_parity(loaded, live, make_queries(15, seed=19))


def saved(tmp_path: Path) -> Path:
    path = tmp_path / "bm25.npz"
    build(dict(enumerate(make_corpus(40, seed=20)))).save(path, stamp=3)
    return path


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_damaged_file_raises_corrupt_index_error(tmp_path: Path, damage: str) -> None:
    path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not an npz file at all" * 10)
    else:
        data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError):
        BM25Index.load(path)


def rewrite(path: Path, **changes: np.ndarray | None) -> None:
    arrays = load_arrays(path)
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    save_arrays(path, **arrays)


@pytest.mark.parametrize(
    "change",
    [
        {"inv_slots": None},
        {"meta": np.frombuffer(b'{"format": 99}', dtype=np.uint8)},
        {"meta": np.frombuffer(b"{not json", dtype=np.uint8)},
        {"vocab": np.frombuffer(b"a\nb", dtype=np.uint8)},
        {"fwd_terms": np.full(5, 10**6, dtype=np.int32)},
        {"keys": np.zeros((2, 2), dtype=np.int64)},
        {"doc_len": np.zeros(40, dtype=np.float32)},
    ],
)
def test_inconsistent_file_raises_corrupt_index_error(
    tmp_path: Path, change: dict[str, np.ndarray | None]
) -> None:
    path = saved(tmp_path)
    rewrite(path, **change)
    with pytest.raises(CorruptIndexError):
        BM25Index.load(path)


def test_out_of_range_postings_raise_corrupt_index_error(tmp_path: Path) -> None:
    path = saved(tmp_path)
    arrays = load_arrays(path)
    bad_terms = arrays["fwd_terms"].copy()
    bad_terms[0] = len(arrays["inv_counts"])  # one past the vocabulary
    rewrite(path, fwd_terms=bad_terms)
    with pytest.raises(CorruptIndexError):
        BM25Index.load(path)


def test_doc_lengths_must_match_postings(tmp_path: Path) -> None:
    path = saved(tmp_path)
    doc_len = load_arrays(path)["doc_len"].copy()
    doc_len[0] += 1
    rewrite(path, doc_len=doc_len)
    with pytest.raises(CorruptIndexError):
        BM25Index.load(path)


_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "search"]),
        st.lists(st.integers(0, 30), min_size=1, max_size=6),
        st.lists(st.lists(st.sampled_from(WORDS[:12] + COMMON[:2]), max_size=8), min_size=6, max_size=6),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops, query=st.lists(st.sampled_from(WORDS[:14] + COMMON), min_size=1, max_size=4))
def test_property_parity_over_random_operations(ops: list[tuple[str, list[int], list[list[str]]]],
                                                query: list[str]) -> None:
    index = BM25Index(TOK)
    live: dict[int, str] = {}
    for op, keys, texts in ops:
        if op == "add":
            batch = dict(zip(keys, (" ".join(t) for t in texts), strict=False))  # the last text of a key wins
            index.add(np.array(keys, dtype=np.int64), [" ".join(t) for t in texts[: len(keys)]])
            live.update(batch)
        elif op == "remove":
            index.remove(np.array(keys, dtype=np.int64))
            for key in keys:
                live.pop(key, None)
        else:
            index.search(" ".join(texts[0]), 3)
    text = " ".join(query)
    if not live:
        assert index.search(text, 5) == []
        return
    want = expected(live, text, 5)
    got = index.search(text, 5)
    assert [key for key, _ in got] == [key for key, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)
    assert index.keys().tolist() == sorted(live)


def test_memory_mapped_load_keeps_parity_and_stays_incremental(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large saved arrays are memory-mapped on load (here every one, by lowering the size bar)."""
    monkeypatch.setattr(bm25_module, "_MMAP_FROM", 1)
    monkeypatch.setattr(bm25_module, "_MIN_DEAD", 8)
    corpus = make_corpus(300, seed=30)
    live = dict(enumerate(corpus[:200]))
    build(live).save(tmp_path / "i.npz", stamp=1)
    loaded, _ = BM25Index.load(tmp_path / "i.npz")
    assert isinstance(loaded._runs[0].slots, np.memmap) and isinstance(loaded._fterm.data, np.memmap)
    assert loaded._runs[0].tf.dtype == np.uint16  # saved narrow
    queries = make_queries(15, seed=31)
    assert_parity(loaded, live, queries)
    # changes after a mapped load: removals, upserts and new documents, then a compaction
    gone = list(range(0, 200, 3))
    loaded.remove(np.array(gone, dtype=np.int64))
    for key in gone:
        del live[key]
    fresh = {key: corpus[key] for key in range(200, 300)}
    fresh.update({1: corpus[250], 2: corpus[260]})
    loaded.add(np.array(list(fresh), dtype=np.int64), list(fresh.values()))
    live.update(fresh)
    assert not isinstance(loaded._fterm.data, np.memmap)  # copied into memory once it changed
    assert_parity(loaded, live, queries)
    loaded.save(tmp_path / "j.npz", stamp=2)  # over a file other than the one still mapped
    again, stamp = BM25Index.load(tmp_path / "j.npz")
    assert stamp == 2
    assert_parity(again, live, queries)
