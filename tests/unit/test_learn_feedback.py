"""Online feedback (learn/feedback.py) through the engine: real SQLite and FAISS, the hashing embedder.

The hashing embedder gives the same query the same vector, so these tests use repeated queries;
paraphrases and unrelated queries need the real embedder (tests/integration/test_feedback_real.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import HashingEmbedder

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.errors import InvalidInputError
from localrag.learn.feedback import check_grade
from localrag.types import Document, Hit, SearchRequest

QUERY = "heron fishing in shallow water"
DOCS = [
    Document("a", "Herons wade in shallow water and spear fish with the beak. Heron fishing is patient work."),
    Document("b", "A heron stands still in shallow water for a long time before it strikes at fish."),
    Document("c", "Fishing in shallow water is how grey herons feed at dawn."),
    Document("d", "Water birds: ducks dabble, cormorants dive and herons wade in shallow water."),
    Document("e", "Shallow water warms fast in spring; fishing there is good."),
    Document("f", "Kingfishers dive for fish from a perch above the water."),
    Document("g", "Tides move the shallow water of estuaries twice a day."),
]


def open_rag(path: Path, **learn: object) -> LocalRAG:
    settings = Settings().with_overrides({"learn": learn}) if learn else Settings()
    return LocalRAG(path, settings=settings, embedder=HashingEmbedder())


@pytest.fixture
def rag(tmp_path: Path) -> Iterator[LocalRAG]:
    with open_rag(tmp_path / "d") as r:
        r.add(DOCS)
        yield r


def ids(hits: list[Hit]) -> list[str]:
    return [h.doc_id for h in hits]


def vote(rag: LocalRAG, doc_id: str, relevant: bool, voters: int, query: str = QUERY) -> None:
    chunk = next(h.chunk_id for h in rag.search(query, k=len(DOCS)) if h.doc_id == doc_id)
    for i in range(voters):
        rag.feedback(query, chunk, relevant, source=f"voter{i}")


def test_votes_move_a_hit_a_bounded_step_each_and_accumulate(rag: LocalRAG) -> None:
    before = rag.search(QUERY, k=len(DOCS))
    last = before[-1].doc_id
    spread = before[0].score - before[-1].score
    s = rag.settings.learn
    vote(rag, last, True, 1)
    once = rag.search(QUERY, k=len(DOCS))
    moved = next(h for h in once if h.doc_id == last)
    # one vote: evidence 1 / (1 + prior), so the hit gains weight / (1 + prior) of the list's spread
    assert moved.scores["feedback"] == pytest.approx(s.weight / (1 + s.prior) * spread, rel=1e-4)
    assert ids(once)[0] == ids(before)[0]  # one vote does not flip the ranking's top
    vote(rag, last, True, 3)  # three more voters
    more = rag.search(QUERY, k=len(DOCS))
    gained = next(h for h in more if h.doc_id == last).scores["feedback"]
    assert s.weight / (1 + s.prior) * spread < gained < s.weight * spread  # accumulates, stays bounded
    assert ids(more).index(last) <= ids(once).index(last)
    untouched = [h for h in more if h.doc_id != last]
    assert all(h.scores["feedback"] == 0.0 for h in untouched)


def test_many_agreeing_votes_lift_a_hit_into_the_first_k(tmp_path: Path) -> None:
    with open_rag(tmp_path / "d", weight=1.0) as rag:
        rag.add(DOCS)
        before = ids(rag.search(QUERY, k=len(DOCS)))
        target = before[4]
        vote(rag, target, True, 3)
        vote(rag, before[0], False, 3)
        after = rag.search(QUERY, k=3)
        assert len(after) == 3 and target in ids(after)  # widened to learn.depth, then cut to k
        assert before[0] not in ids(after)[:1]


def test_conflicting_votes_cancel(rag: LocalRAG) -> None:
    before = rag.search(QUERY, k=len(DOCS))
    target = before[2].doc_id
    vote(rag, target, True, 2)
    chunk = before[2].chunk_id
    rag.feedback(QUERY, chunk, False, source="voter5")
    rag.feedback(QUERY, chunk, False, source="voter6")
    after = rag.search(QUERY, k=len(DOCS))
    assert ids(after) == ids(before)
    assert [h.score for h in after] == pytest.approx([h.score for h in before])
    assert all(h.scores.get("feedback", 0.0) == 0.0 for h in after)


def test_split_votes_count_by_their_net_discounted_by_the_voters_disagreement(rag: LocalRAG) -> None:
    before = rag.search(QUERY, k=len(DOCS))
    spread = before[0].score - before[-1].score
    chunk = before[-1].chunk_id
    for voter, relevant in (("v1", True), ("v2", True), ("v3", False)):
        rag.feedback(QUERY, chunk, relevant, source=voter)
    split = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.chunk_id == chunk).scores["feedback"]
    s = rag.settings.learn
    # three voter pairs, two disagreeing: rho = (1 - 2 + prior pairs) / (3 + prior pairs); net 1 of 3 votes
    r = math.sqrt((1 - 2 + s.agreement_prior) / (3 + s.agreement_prior))
    assert rag.learner.votes("").reliability == pytest.approx(r)
    assert split == pytest.approx(s.weight * r / (1 + s.prior) * spread, rel=1e-4)  # tanh(atanh(r) * 1) = r
    assert 0 < split < s.weight / (1 + s.prior) * spread  # less than one lone vote


def test_votes_from_voters_who_agree_only_by_chance_move_nothing(tmp_path: Path) -> None:
    with open_rag(tmp_path / "d", agreement_prior=0.0) as rag:
        rag.add(DOCS)
        before = rag.search(QUERY, k=len(DOCS))
        target = before[-1].doc_id
        vote(rag, target, True, 4)  # four voters agree on the target...
        for doc, pattern in zip(ids(before)[:3], ("++--", "+-+-", "+--+"), strict=True):
            chunk = next(h.chunk_id for h in before if h.doc_id == doc)
            for i, sign in enumerate(pattern):  # ...but split evenly on three others: as often as coins
                rag.feedback(QUERY, chunk, sign == "+", source=f"voter{i}")
        assert rag.learner.votes("").reliability == 0.0  # products: +6 on the target, -2 on each split
        after = rag.search(QUERY, k=len(DOCS))
        assert ids(after) == ids(before) and all("feedback" not in h.scores for h in after)
    with open_rag(tmp_path / "d", agreement_prior=10.0) as rag:  # the same votes with the default trust
        r = math.sqrt(10 / (24 + 10))
        assert rag.learner.votes("").reliability == pytest.approx(r)
        moved = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == target).scores["feedback"]
        s = rag.settings.learn
        assert moved == pytest.approx(s.weight * math.tanh(math.atanh(r) * 4) * 4 / (4 + s.prior) * (
            before[0].score - before[-1].score), rel=1e-4)


def test_one_voter_counts_for_at_most_max_per_source(rag: LocalRAG) -> None:
    target = rag.search(QUERY, k=len(DOCS))[-1].doc_id
    chunk = next(h.chunk_id for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == target)
    for _ in range(12):
        rag.feedback(QUERY, chunk, True, source="loud")
    loud = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == target).scores["feedback"]
    s = rag.settings.learn
    spread_share = loud / (s.weight * s.max_per_source / (s.max_per_source + s.prior))
    vote(rag, target, True, 3)  # three other voters weigh as much again
    many = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == target).scores["feedback"]
    assert spread_share == pytest.approx(many / (s.weight * 6 / (6 + s.prior)), rel=1e-3)  # 12 votes counted as 3
    assert many > loud


def test_old_votes_decay_by_the_half_life(rag: LocalRAG) -> None:
    target = rag.search(QUERY, k=len(DOCS))[-1].doc_id
    vote(rag, target, True, 3)
    fresh = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == target).scores["feedback"]
    half_life_s = rag.settings.learn.half_life_days * 86_400
    rag.learner.clock = lambda: time.time() + half_life_s
    aged = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == target).scores["feedback"]
    p = rag.settings.learn.prior
    assert aged == pytest.approx(fresh * (1.5 / (1.5 + p)) / (3 / (3 + p)), rel=1e-3)  # weights halved
    rag.learner.clock = lambda: time.time() + 40 * half_life_s
    gone = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == target).scores["feedback"]
    assert 0 < gone < fresh * 1e-6


def test_feedback_survives_a_restart_and_can_be_switched_off(tmp_path: Path) -> None:
    with open_rag(tmp_path / "d") as rag:
        rag.add(DOCS)
        before = rag.search(QUERY, k=len(DOCS))
        vote(rag, before[-1].doc_id, True, 3)
        changed = rag.search(QUERY, k=len(DOCS))
    with open_rag(tmp_path / "d") as rag:
        reopened = rag.search(QUERY, k=len(DOCS))
        assert ids(reopened) == ids(changed) and reopened[-1].scores["feedback"] == pytest.approx(
            changed[-1].scores["feedback"])
    with open_rag(tmp_path / "d", feedback=False) as rag:
        off = rag.search(QUERY, k=len(DOCS))
        assert ids(off) == ids(before) and all("feedback" not in h.scores for h in off)


def test_a_cached_result_is_not_served_after_a_vote(rag: LocalRAG) -> None:
    assert rag.retriever.result_cache.enabled
    first = rag.search(QUERY, k=3)
    assert rag.retrieve([SearchRequest(QUERY, 3)])[0].timings.get("cached") == 1.0
    vote(rag, first[0].doc_id, False, 3)
    after = rag.search(QUERY, k=3)
    assert after[0].doc_id != first[0].doc_id or after[0].scores["feedback"] < 0


def test_per_user_scope_keeps_a_voters_votes_to_their_own_searches(tmp_path: Path) -> None:
    with open_rag(tmp_path / "d", scope="source") as rag:
        rag.add(DOCS)
        target = rag.search(QUERY, k=len(DOCS))[-1]
        for _ in range(3):
            rag.feedback(QUERY, target.chunk_id, True, source="alice")
        alice = next(h for h in rag.search(QUERY, k=len(DOCS), user="alice") if h.doc_id == target.doc_id)
        bob = next(h for h in rag.search(QUERY, k=len(DOCS), user="bob") if h.doc_id == target.doc_id)
        assert alice.scores["feedback"] > 0 and "feedback" not in bob.scores


def test_votes_are_scoped_by_namespace(rag: LocalRAG) -> None:
    rag.add(DOCS, namespace="other")
    other_before = rag.search(QUERY, k=len(DOCS), namespace="other")
    vote(rag, rag.search(QUERY, k=len(DOCS))[-1].doc_id, True, 3)
    other_after = rag.search(QUERY, k=len(DOCS), namespace="other")
    assert ids(other_after) == ids(other_before) and all("feedback" not in h.scores for h in other_after)


def test_graded_judgments_and_bad_input(rag: LocalRAG) -> None:
    hits = rag.search(QUERY, k=len(DOCS))
    rag.feedback(QUERY, hits[-1].chunk_id, grade=0.5, source="grader")
    graded = next(h for h in rag.search(QUERY, k=len(DOCS)) if h.doc_id == hits[-1].doc_id)
    s = rag.settings.learn
    spread = hits[0].score - hits[-1].score
    assert graded.scores["feedback"] == pytest.approx(s.weight * 0.5 / (0.5 + s.prior) * spread, rel=1e-4)
    assert rag.feedback_items()[-1]["relevant"] is True
    with pytest.raises(InvalidInputError, match="grade must be a number in"):
        rag.feedback(QUERY, hits[0].chunk_id, grade=2.0)
    with pytest.raises(InvalidInputError, match="contradicts"):
        rag.feedback(QUERY, hits[0].chunk_id, True, grade=-1.0)
    with pytest.raises(InvalidInputError, match="relevant"):
        rag.feedback(QUERY, hits[0].chunk_id)
    assert check_grade(None, -1) == (False, -1.0) and check_grade(False, None) == (False, None)
