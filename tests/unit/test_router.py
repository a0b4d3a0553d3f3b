"""The learned search router (localrag/learn/router.py): features, fitting, the table file, feedback, wiring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.errors import ConfigError
from localrag.index.bm25 import BM25Index
from localrag.learn.router import (
    ROUTES,
    Choice,
    QueryFeatures,
    RouteTable,
    apply_route,
    bucket_keys,
    fit,
    query_features,
)
from localrag.types import Document, SearchRequest


def test_features_read_question_type_marks_and_length() -> None:
    wh = query_features("What causes the seasons on Earth?")
    assert (wh.qtype, wh.quoted, wh.identifier) == ("wh", False, False)
    assert query_features("Is vitamin D linked to bone density").qtype == "yesno"
    statement = query_features('BRCA1 mutations raise "breast cancer" risk')
    assert (statement.qtype, statement.quoted, statement.identifier) == ("statement", True, True)
    assert query_features("error in parse_config").identifier and query_features("the getValue call").identifier
    assert query_features("a b c").rare_share == 0.0  # no index: rarity unknown, counted as 0
    assert bucket_keys(QueryFeatures(3, 0.7, False, True, "wh")) == ("wh|short|rare|ident", "wh|short", "wh", "*")
    assert bucket_keys(QueryFeatures(20, 0.1, True, True, "yesno"))[0] == "yesno|long|common|quoted"


def test_rare_share_comes_from_the_bm25_document_frequencies() -> None:
    index = BM25Index()
    texts = [f"common words appear here in document {i}" for i in range(200)] + ["zyxomab is a rare word"]
    index.add(np.arange(len(texts), dtype=np.int64), texts)
    n_docs, freqs = index.doc_freqs("common zyxomab unseenword")
    assert n_docs == 201 and freqs == [200, 1, 0]
    # two of three tokens under 1% of the documents (an unseen one too)
    assert query_features("common zyxomab unseenword", index.doc_freqs).rare_share == pytest.approx(2 / 3, abs=1e-3)
    assert query_features("common words", index.doc_freqs).rare_share == 0.0


def _synthetic() -> tuple[dict[str, QueryFeatures], dict[str, dict[str, float]]]:
    """Identifier queries do better with keyword search, the rest with hybrid; a small yes/no group
    prefers dense (too few queries to trust)."""
    feats: dict[str, QueryFeatures] = {}
    scores: dict[str, dict[str, float]] = {name: {} for name in ("hybrid", "keyword", "dense")}
    for i in range(60):
        ident = i % 2 == 0
        q = f"q{i}"
        feats[q] = QueryFeatures(4, 0.6, False, ident, "statement")
        scores["hybrid"][q] = 0.6 if ident else 0.8
        scores["keyword"][q] = 0.9 if ident else 0.5
        scores["dense"][q] = 0.55 + 0.001 * i
    for i in range(5):
        q = f"y{i}"
        feats[q] = QueryFeatures(8, 0.1, False, False, "yesno")
        scores["hybrid"][q], scores["keyword"][q], scores["dense"][q] = 0.5, 0.4, 0.9
    return feats, scores


def test_fit_picks_the_better_route_per_bucket_and_backs_off_on_small_ones() -> None:
    feats, scores = _synthetic()
    table = fit(feats, scores, min_queries=10, min_gain=0.01)
    assert table.entries == {"statement|short|rare|ident": "keyword"}
    ident = table.choose(QueryFeatures(3, 0.9, False, True, "statement"))
    assert ident == Choice("statement|short|rare|ident", "keyword") and ident.label.startswith("auto:keyword@")
    assert table.choose(QueryFeatures(3, 0.9, False, False, "statement")) == Choice("", "hybrid")
    assert table.choose(QueryFeatures(8, 0.1, False, False, "yesno")).route == "hybrid"  # 5 queries: not trusted
    # with a lower bar the yes/no group gets dense, and the whole-set key stays hybrid (it wins overall)
    loose = fit(feats, scores, min_queries=5)
    assert loose.entries.get("yesno") == "dense" and "*" not in loose.entries
    # a specific key must beat what its parent chose: with '*' won by keyword, nothing below repeats it
    only_ident = {q: f for q, f in feats.items() if f.identifier}
    assert fit(only_ident, scores, min_queries=10).entries == {"*": "keyword"}


def test_table_round_trips_through_its_json_file(tmp_path: Path) -> None:
    table = RouteTable({"wh": "dense", "*": "hybrid-a0.7"}, votes={"wh\tdense": -2.0}, meta={"trained_on": "x"})
    table.save(tmp_path / "router.json")
    again = RouteTable.load(tmp_path / "router.json")
    assert again == table
    (tmp_path / "bad.json").write_text(json.dumps({"entries": {"wh": "warp-drive"}}))
    with pytest.raises(ConfigError, match="unknown routes"):
        RouteTable.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError):
        RouteTable.load(tmp_path / "broken.json")


def test_down_votes_demote_a_learned_route_only_once_they_accumulate() -> None:
    table = RouteTable({"wh": "dense", "*": "keyword"}, demote_votes=3)
    wh = QueryFeatures(4, 0.0, False, False, "wh")
    chosen = table.choose(wh)
    assert chosen == Choice("wh", "dense")
    table.vote(chosen, up=False)
    table.vote(chosen, up=False)
    assert table.choose(wh).route == "dense"  # two down-votes: not yet
    table.vote(chosen, up=True)
    table.vote(chosen, up=False)
    assert table.choose(wh).route == "dense"  # the up-vote cancelled one: net -2
    table.vote(chosen, up=False)
    assert table.choose(wh) == Choice("*", "keyword")  # net -3: backs off to the parent's choice
    table.vote(Choice("", "hybrid"), up=False)  # the fixed default collects no votes
    assert "\thybrid" not in "".join(table.votes)


def test_apply_route_keeps_what_the_request_names() -> None:
    request = SearchRequest("q", 10, "hybrid", alpha=0.9)
    routed = apply_route(request, ROUTES["hybrid-a0.3"])
    assert routed.alpha == 0.9 and routed.mode == "hybrid"
    assert apply_route(SearchRequest("q"), ROUTES["hybrid+rerank"]) == SearchRequest("q", candidates=20, rerank=True)
    assert apply_route(SearchRequest("q"), ROUTES["keyword"]).mode == "keyword"


DOCS = [
    Document("d1", "The mitochondria produce ATP through oxidative phosphorylation in eukaryotic cells."),
    Document("d2", "Error code E1234 appears when the parse_config function reads a malformed file."),
    Document("d3", "Photosynthesis in chloroplasts turns light energy into chemical energy."),
]


def test_strategy_auto_routes_a_search_and_says_which_route_ran(tmp_path: Path, real_embedder: Any) -> None:
    settings = Settings().with_overrides({"server": {"result_cache_size": 0}})
    RouteTable({"*": "keyword"}, demote_votes=2).save(tmp_path / "d" / "router.json")
    with LocalRAG(tmp_path / "d", settings=settings, embedder=real_embedder) as rag:
        rag.add(DOCS)
        auto = rag.retrieve([SearchRequest("which function reports error E1234", 3, strategy="auto")])[0]
        assert auto.route == "auto:keyword@*"
        assert auto.hits[0].doc_id == "d2" and all("dense" not in h.scores for h in auto.hits)
        plain = rag.retrieve([SearchRequest("which function reports error E1234", 3)])[0]
        assert plain.route == "" and "dense" in plain.hits[0].scores
        # two down-votes on the routed query's hits demote its route (saved to router.json)
        for _ in range(2):
            rag.feedback("which function reports error E1234", auto.hits[0].chunk_id, False)
        again = rag.retrieve([SearchRequest("which function reports error E1234", 3, strategy="auto")])[0]
        assert again.route == "auto:default" and "dense" in again.hits[0].scores
    saved = json.loads((tmp_path / "d" / "router.json").read_text())
    assert saved["votes"] == {"*\tkeyword": -2.0}


def test_learn_router_setting_routes_every_search(tmp_path: Path, real_embedder: Any) -> None:
    settings = Settings().with_overrides({"learn": {"router": True}})
    RouteTable({"wh": "dense"}).save(tmp_path / "d" / "router.json")
    with LocalRAG(tmp_path / "d", settings=settings, embedder=real_embedder) as rag:
        rag.add(DOCS)
        wh, other = rag.retrieve([SearchRequest("what makes ATP in cells", 3),
                                  SearchRequest("chloroplast light energy", 3)])
    assert wh.route == "auto:dense@wh" and all("keyword" not in h.scores for h in wh.hits)
    assert wh.hits[0].doc_id == "d1"
    assert other.route == "auto:default" and other.hits[0].doc_id == "d3"


def test_learn_router_fits_on_stored_judgments_and_saves_only_when_adopted(tmp_path: Path, real_embedder: Any) -> None:
    from localrag.errors import InvalidInputError
    from localrag.learn.router_train import train_from_feedback

    topics = ["volcanoes erupt lava", "glaciers carve valleys", "coral reefs bleach", "comets orbit the sun",
              "bees pollinate flowers", "tides follow the moon", "rust forms on iron", "owls hunt at night",
              "deserts get little rain", "salmon swim upstream", "lightning heats the air", "moss grows in shade"]
    docs = [Document(f"t{i}", f"Unit KX-{4000 + i} notes: {text}.") for i, text in enumerate(topics)]
    with LocalRAG(tmp_path / "d", embedder=real_embedder) as rag:
        rag.add(docs)
        with pytest.raises(InvalidInputError, match="at least 8 queries"):
            train_from_feedback(rag)
        for i, text in enumerate(topics):
            hit = rag.search(f"why {text.split()[0]} {text.split()[1]}", 5)
            target = next(h for h in hit if h.doc_id == f"t{i}")
            rag.feedback(f"why {text.split()[0]} {text.split()[1]}", target.chunk_id, True)
        report = train_from_feedback(rag, holdout_share=0.25, min_queries=1, min_gain=-1.0)
    assert report["training_queries"] == 9 and report["held_out_queries"] == 3
    assert report["table"]  # min_gain -1: some route is always taken
    figures = report["held_out_ndcg@10"]
    assert 0.0 < figures["default"] <= 1.0 and sum(figures["routes"].values()) == 3
    assert report["adopted"] == (figures["router"] >= figures["default"])
    assert (tmp_path / "d" / "router.json").is_file() == report["adopted"]


def test_learn_router_cli_refuses_too_few_judged_queries(tmp_path: Path, real_embedder: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from localrag.cli import main

    with LocalRAG(tmp_path / "d", embedder=real_embedder) as rag:
        rag.add(DOCS)
        hit = rag.search("ATP in cells", 1)[0]
        rag.feedback("ATP in cells", hit.chunk_id, True)
    assert main(["--data", str(tmp_path / "d"), "learn", "--router"]) == 2
    assert "at least 8 queries" in capsys.readouterr().err
    assert not (tmp_path / "d" / "router.json").exists()
