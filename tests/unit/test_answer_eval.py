"""Answer evaluation metrics (localrag/eval/answer_metrics.py) on hand-built answers, the answers.jsonl
reader and the configuration options of `localrag eval --answers` (localrag/eval/answers.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from localrag.config import Settings
from localrag.errors import ConfigError, InvalidInputError
from localrag.eval.answer_metrics import (
    AnswerScore,
    GoldAnswer,
    abstention_scores,
    exact_match,
    f1_score,
    normalize_answer,
    score_answer,
    summarise,
    with_similarity,
)
from localrag.eval.answers import format_answer_table, load_answers, parse_configs
from localrag.types import Answer, Citation, Claim

PHRASE = "I don't know based on the provided sources."


def citation(number: int, doc_id: str) -> Citation:
    return Citation(number, doc_id, f"{doc_id}.txt", number, 0, 10, None, "quote", 0, 5)


def answer(text: str, docs: tuple[str, ...] = (), statuses: tuple[str, ...] = (), *, abstained: bool = False,
           timings: dict[str, float] | None = None) -> Answer:
    claims = tuple(Claim(f"claim {i}", 0, 1, status, (1,)) for i, status in enumerate(statuses))  # type: ignore[arg-type]
    return Answer("q?", PHRASE if abstained else text, tuple(citation(i + 1, d) for i, d in enumerate(docs)),
                  abstained=abstained, claims=claims, timings=timings or {"total": 100.0})


def test_squad_normalisation_and_scores() -> None:
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a day") == "apple day"
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Denver", "Denver Broncos") == 0.0
    # 1 shared token of 1 predicted and 2 gold: precision 1, recall 0.5
    assert f1_score("Denver", "Denver Broncos") == pytest.approx(2 / 3, abs=1e-4)
    assert f1_score("Carolina Panthers", "Denver Broncos") == 0.0
    assert f1_score("", "Denver") == 0.0


def test_score_takes_the_best_gold_and_strips_citation_markers() -> None:
    gold = GoldAnswer("q1", "who won?", ("Denver Broncos", "the Broncos"), ("d1",))
    s = score_answer(answer("The Broncos [1].", ("d1",)), gold)
    assert s.em == 1.0 and s.f1 == 1.0 and s.prediction == "The Broncos."
    withheld = score_answer(answer("", ("d1",), abstained=True), gold)
    assert withheld.em == 0.0 and withheld.f1 == 0.0 and withheld.abstained


def test_an_adaptive_answer_is_scored_by_its_lead() -> None:
    gold = GoldAnswer("q1", "who designed it?", ("Joseph Strauss",), ("d1",))
    text = "Joseph Strauss [1]. The bridge was designed by the engineer Joseph Strauss in 1921 [1]."
    lead = score_answer(Answer("who designed it?", text, short="Joseph Strauss"), gold)
    whole = score_answer(Answer("who designed it?", text), gold)
    assert lead.em == 1.0 and lead.f1 == 1.0 and lead.prediction == "Joseph Strauss"
    assert whole.em == 0.0 and whole.f1 is not None and whole.f1 < 0.5


def test_citation_precision_and_recall_against_the_evidence_documents() -> None:
    gold = GoldAnswer("q1", "q?", ("x",), ("d1", "d2"))
    s = score_answer(answer("x [1][2][3]", ("d1", "d3", "d1")), gold)  # documents d1, d3: d1 counted once
    assert s.citation_precision == pytest.approx(0.5) and s.citation_recall == pytest.approx(0.5)
    both = score_answer(answer("x [1][2]", ("d2", "d1")), gold)
    assert both.citation_precision == 1.0 and both.citation_recall == 1.0
    uncited = score_answer(answer("x"), gold)
    assert uncited.citation_precision is None and uncited.citation_recall == 0.0
    unanswerable = score_answer(answer("x [1]", ("d1",)), GoldAnswer("q2", "q?"))
    assert unanswerable.citation_precision is None and unanswerable.citation_recall is None
    assert unanswerable.em is None and unanswerable.f1 is None


def test_grounded_claim_rate_counts_the_claims_of_given_answers() -> None:
    gold = GoldAnswer("q1", "q?", ("x",), ("d1",))
    scores = [
        score_answer(answer("a [1]. b [1].", ("d1",), ("supported", "contradicted")), gold),
        score_answer(answer("c [1].", ("d1",), ("supported", "supported", "unsupported")), gold),
        # withheld: its claims were never shown, so they do not count
        score_answer(answer("", (), ("unsupported",), abstained=True), gold),
    ]
    assert [s.claims for s in scores] == [2, 3, 0]
    summary = summarise(scores)
    assert summary["claims"] == 5 and summary["grounded_claim_rate"] == pytest.approx(3 / 5)
    assert summarise([score_answer(answer("x"), gold)])["grounded_claim_rate"] is None  # no claim checked


def test_abstention_precision_and_recall_take_unanswerable_questions_as_positives() -> None:
    answerable, unanswerable = GoldAnswer("a", "q?", ("x",)), GoldAnswer("u", "q?")
    scores = [
        score_answer(answer("", abstained=True), unanswerable),  # true positive
        score_answer(answer("", abstained=True), unanswerable),  # true positive
        score_answer(answer("made up [1]", ("d9",)), unanswerable),  # missed
        score_answer(answer("", abstained=True), answerable),  # false positive
        score_answer(answer("x"), answerable),
    ]
    result = abstention_scores(scores)
    assert result["abstention_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["abstention_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["abstention_rate"] == pytest.approx(3 / 5)
    # never abstaining: precision undefined; no unanswerable question: recall undefined
    assert abstention_scores([scores[4]]) == {"abstention_precision": None, "abstention_recall": None,
                                              "abstention_rate": 0.0}


def test_latency_uses_the_measured_time_and_first_token_from_the_question() -> None:
    gold = GoldAnswer("q1", "q?", ("x",))
    timings = {"retrieve": 20.0, "rerank": 0.0, "build": 5.0, "first_token": 75.0, "total": 300.0}
    s = score_answer(answer("x", timings=timings), gold, total_ms=310.0)
    assert s.total_ms == 310.0 and s.first_token_ms == 100.0
    no_model = score_answer(answer("", abstained=True, timings={"first_token": 0.0, "total": 3.0}), gold)
    assert no_model.first_token_ms is None and no_model.total_ms == 3.0
    summary = summarise([s, no_model])
    assert summary["latency_ms"]["p50"] == pytest.approx(156.5) and summary["first_token_ms"]["p50"] == 100.0


class _Embedder:
    """Fixed unit vectors per text, so the cosine is known."""

    name, dim = "fixed", 2
    vectors: ClassVar[dict[str, tuple[float, float]]] = {
        "Paris": (1.0, 0.0), "the capital Paris": (0.6, 0.8), "London": (0.0, 1.0)}

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def test_similarity_is_the_cosine_to_the_closest_gold_answer() -> None:
    golds = [GoldAnswer("a", "q?", ("London", "the capital Paris")), GoldAnswer("b", "q?", ("Paris",)),
             GoldAnswer("c", "q?")]
    scores = [score_answer(answer("Paris"), golds[0]), score_answer(answer("", abstained=True), golds[1]),
              score_answer(answer("Paris"), golds[2])]
    scored = with_similarity(scores, golds, _Embedder())  # type: ignore[arg-type]
    assert [s.similarity for s in scored] == [pytest.approx(0.6), 0.0, None]
    assert summarise(scored)["similarity"] == pytest.approx(0.3)


def _folder(root: Path, rows: list[dict[str, object]]) -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "t"}) + "\n")
    queries = [{"_id": q, "text": f"question {q}?"} for q in ("q1", "q2", "q3")]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    (root / "answers.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def test_answers_jsonl_evidence_from_rows_or_qrels(tmp_path: Path) -> None:
    dataset = load_answers(_folder(tmp_path / "set", [
        {"query_id": "q1", "answers": ["Paris", " "]},  # evidence from qrels (positive grades only)
        {"_id": "q2", "answers": ["x"], "corpus_id": "d7"},  # the SQuAD layout of ../shared/data
        {"query_id": "q3", "answers": [], "evidence": ["d1"]},  # unanswerable: no evidence kept
    ]))
    assert [(g.query_id, g.question, g.answers, g.evidence) for g in dataset.items] == [
        ("q1", "question q1?", ("Paris",), ("d1",)), ("q2", "question q2?", ("x",), ("d7",)),
        ("q3", "question q3?", (), ())]
    assert dataset.unanswerable == 1
    with pytest.raises(InvalidInputError, match=r"not in queries\.jsonl"):
        load_answers(_folder(tmp_path / "bad", [{"query_id": "q9", "answers": []}]))
    with pytest.raises(InvalidInputError, match="'answers' is missing"):
        load_answers(_folder(tmp_path / "bad2", [{"query_id": "q1"}]))


def test_configurations_from_files_and_sets(tmp_path: Path) -> None:
    toml = tmp_path / "short.toml"
    toml.write_text("[answer]\nk = 1\nmax_words = 8\n")
    configs = parse_configs([f"short={toml}", "base"], ["generate.threads=1", "base:answer.k=2",
                                                         "phrase:answer.abstain_phrase=No: none"])
    assert [c.name for c in configs] == ["short", "base", "phrase"]
    overrides = {c.name: c.overrides for c in configs}
    assert overrides["short"] == {"answer": {"k": 1, "max_words": 8}, "generate": {"threads": "1"}}
    assert overrides["phrase"]["answer"] == {"abstain_phrase": "No: none"}
    settings = configs[1].settings(Settings())
    assert settings.answer.k == 2 and settings.generate.threads == 1
    assert [c.name for c in parse_configs([], [])] == ["default"]
    with pytest.raises(ConfigError, match="shapes the index"):
        parse_configs([], ["chunk.chunk_tokens=100"])
    with pytest.raises(InvalidInputError, match="expected"):
        parse_configs([], ["answer.k"])
    with pytest.raises(InvalidInputError, match="distinct name"):
        parse_configs(["a", "a"], [])


def test_table_shows_every_configuration_and_dashes_for_missing_metrics() -> None:
    gold = GoldAnswer("q1", "q?", ("x",), ("d1",))
    summary = summarise([score_answer(answer("x [1]", ("d1",)), gold)])
    table = format_answer_table({"dataset": "set", "questions": 1, "unanswerable": 0,
                                 "configs": {"default": summary, "short-answers": summary}})
    lines = table.splitlines()
    assert lines[0] == "set (1 questions, 0 unanswerable)" and "grounded" in lines[1]
    assert lines[2].startswith("default ") and lines[3].startswith("short-answers")
    assert "1.000" in lines[2] and " -" in lines[2]  # EM 1; abstention precision undefined


def test_scores_are_frozen_records() -> None:
    s = score_answer(answer("x"), GoldAnswer("q1", "q?", ("x",)))
    assert isinstance(s, AnswerScore)
    with pytest.raises(AttributeError):
        s.em = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(("args", "message"), [
    (("--answers", "/nonexistent"), "is not an answers dataset"),
    (("--answers", "/nonexistent", "--mode", "dense"), "with --answers use --set"),
    (("--dataset", "/nonexistent", "--config", "a"), "use them with --answers"),
    (("--answers", "/nonexistent", "--set", "embed.model=x"), "shapes the index"),
])
def test_cli_refuses_bad_answer_eval_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           args: tuple[str, ...], message: str) -> None:
    from localrag.cli import main

    assert main(["--data", str(tmp_path / "data"), "eval", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before a data directory was made
