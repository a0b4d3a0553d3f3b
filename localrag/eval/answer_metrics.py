"""Answer quality metrics: SQuAD-normalised EM and token F1, citation precision/recall against the
gold evidence documents, the grounded-claim rate, abstention precision/recall, embedding similarity
and latency. Pure functions over ``Answer`` objects and gold rows, so they test without a model."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from localrag.answer.citations import strip_markers
from localrag.eval.metrics import percentile
from localrag.protocols import Embedder
from localrag.types import Answer

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# -- the official SQuAD v1.1 normalisation and scores ----------------------------------------------
def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace (SQuAD's evaluate-v1.1)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def f1_score(prediction: str, gold: str) -> float:
    pred, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((collections.Counter(pred) & collections.Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


# -- one question ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GoldAnswer:
    """A question of an answers dataset: its gold answers (none: the corpus lacks the answer) and
    the documents that hold the evidence."""

    query_id: str
    question: str
    answers: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True, slots=True)
class AnswerScore:
    """The scores of one answer. ``None``: the metric does not apply (see ``score_answer``)."""

    query_id: str
    answerable: bool
    abstained: bool
    em: float | None
    f1: float | None
    citation_precision: float | None
    citation_recall: float | None
    claims: int
    supported_claims: int
    total_ms: float
    first_token_ms: float | None
    prediction: str = ""
    similarity: float | None = None


def cited_documents(answer: Answer) -> list[str]:
    """The distinct documents the answer cites, in citation order."""
    return list(dict.fromkeys(c.doc_id for c in answer.citations))


def score_answer(answer: Answer, gold: GoldAnswer, total_ms: float | None = None) -> AnswerScore:
    """Scores of ``answer`` against ``gold``.

    EM/F1 (best over the gold answers) apply to answerable questions only; an abstention scores 0.
    Citation precision (cited documents that are evidence) needs a citation and known evidence;
    citation recall (evidence documents cited) needs an answerable question with known evidence.
    Claims count only when the answer was given, not withheld: they are what the user reads.
    The prediction is the answer's lead (``Answer.short``, the few words an adaptive answer opens with,
    before its quoted source sentence) where there is one, else the whole text."""
    prediction = "" if answer.abstained else (answer.short or strip_markers(answer.text)).strip()
    em = f1 = precision = recall = None
    if gold.answerable:
        em = max(exact_match(prediction, g) for g in gold.answers) if prediction else 0.0
        f1 = max(f1_score(prediction, g) for g in gold.answers) if prediction else 0.0
    cited = cited_documents(answer)
    evidence = set(gold.evidence)
    if cited and evidence:
        precision = sum(doc in evidence for doc in cited) / len(cited)
    if gold.answerable and evidence:
        recall = len(evidence.intersection(cited)) / len(evidence)
    claims = () if answer.abstained else answer.claims
    first_token = answer.timings.get("first_token")
    if first_token is not None and first_token > 0:
        # from the question: retrieval, reranking and prompt building come before the first token
        first_token += sum(answer.timings.get(stage, 0.0) for stage in ("retrieve", "rerank", "build"))
    return AnswerScore(
        query_id=gold.query_id, answerable=gold.answerable, abstained=answer.abstained, em=em, f1=f1,
        citation_precision=precision, citation_recall=recall, claims=len(claims),
        supported_claims=sum(c.status == "supported" for c in claims),
        total_ms=answer.timings.get("total", 0.0) if total_ms is None else total_ms,
        first_token_ms=first_token if first_token else None, prediction=prediction,
    )


def with_similarity(scores: Sequence[AnswerScore], golds: Sequence[GoldAnswer],
                    embedder: Embedder) -> list[AnswerScore]:
    """Each answerable question's cosine between the answer and its closest gold answer, with the
    engine's embedder (in one batch); an abstention scores 0, an unanswerable question None."""
    from dataclasses import replace

    texts: list[str] = []
    spans: list[tuple[int, int] | None] = []
    for s, g in zip(scores, golds, strict=True):
        if not g.answerable or not s.prediction:
            spans.append(None)
            continue
        spans.append((len(texts), len(texts) + 1 + len(g.answers)))
        texts += [s.prediction, *g.answers]
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32) if texts else None
    out = []
    for s, g, span in zip(scores, golds, spans, strict=True):
        value = None if not g.answerable else 0.0
        if span is not None and vectors is not None:
            answer, gold = vectors[span[0]], vectors[span[0] + 1 : span[1]]
            value = float(np.max(gold @ answer))  # rows are L2-normalised: the dot is the cosine
        out.append(replace(s, similarity=value))
    return out


# -- a run ----------------------------------------------------------------------------------------
def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def abstention_scores(scores: Sequence[AnswerScore]) -> dict[str, float | None]:
    """Unanswerable questions are the positives, an abstention the positive prediction.

    Precision: the share of abstentions on questions the corpus cannot answer; recall: the share of
    those questions abstained on. None when undefined (no abstention; no unanswerable question)."""
    true_pos = sum(s.abstained and not s.answerable for s in scores)
    return {
        "abstention_precision": _ratio(true_pos, sum(s.abstained for s in scores)),
        "abstention_recall": _ratio(true_pos, sum(not s.answerable for s in scores)),
        "abstention_rate": _ratio(sum(s.abstained for s in scores), len(scores)),
    }


def summarise(scores: Sequence[AnswerScore]) -> dict[str, Any]:
    """The run's figures: means over the questions each metric applies to (``None`` where none does);
    the grounded-claim rate over all claims of the given answers; latency p50/p95 in ms."""
    claims = sum(s.claims for s in scores)
    first = [s.first_token_ms for s in scores if s.first_token_ms is not None]
    return {
        "questions": len(scores),
        "answerable": sum(s.answerable for s in scores),
        "exact_match": _mean([s.em for s in scores]),
        "f1": _mean([s.f1 for s in scores]),
        "citation_precision": _mean([s.citation_precision for s in scores]),
        "citation_recall": _mean([s.citation_recall for s in scores]),
        "grounded_claim_rate": _ratio(sum(s.supported_claims for s in scores), claims),
        "claims": claims,
        **abstention_scores(scores),
        "similarity": _mean([s.similarity for s in scores]),
        "latency_ms": {"p50": round(percentile([s.total_ms for s in scores], 50), 1),
                       "p95": round(percentile([s.total_ms for s in scores], 95), 1)},
        "first_token_ms": ({"p50": round(percentile(first, 50), 1), "p95": round(percentile(first, 95), 1)}
                           if first else None),
    }
