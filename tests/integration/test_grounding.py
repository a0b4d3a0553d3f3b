"""Claim grounding and conflicting sources with the default answer model (Qwen2.5-Coder-0.5B, one thread).

The cases are the failures issue 17 cites: a negated claim passed as fully supported, an invented
second sentence passed, a wrong name from the cited passage passed, and two contradicting documents
both cited with nothing flagged. Each test makes a few model calls (about 0.3-0.5 s each).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from localrag.answer.context import Context, ContextSource
from localrag.answer.grounding import LlmClaimJudge, apply_policy, assess, ground
from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.generate.gguf import resolve_gguf
from localrag.generate.llamacpp import LlamaCppGenerator
from localrag.types import ChatMessage, Document, Prompt

pytestmark = pytest.mark.model

DATA = Path(__file__).resolve().parents[1] / "data" / "grounding_cases.jsonl"
BRIDGE = ("The Golden Gate Bridge opened to traffic on May 28, 1937, after four years of construction. "
          "Its chief engineer was Joseph Strauss.")
MATCH = ("At WrestleMania 34, Asuka defended the SmackDown Women's Championship against Charlotte Flair, and "
         "Shinsuke Nakamura challenged AJ Styles for the WWE Championship. Charlotte Flair won the women's "
         "match, ending Asuka's undefeated streak.")


def source(number: int, text: str, doc_id: str = "") -> ContextSource:
    return ContextSource(number, doc_id or f"doc{number}", "", "", "", text, 0, len(text), None, (number,),
                         ((number, 0, len(text), None),))


@pytest.fixture(scope="module")
def generator() -> Iterator[LlamaCppGenerator]:
    path, name = resolve_gguf("qwen2.5-coder-0.5b")
    generator = LlamaCppGenerator(path, model_name=name, threads=1)
    yield generator
    generator.close()


@pytest.fixture(scope="module")
def judge(generator: LlamaCppGenerator) -> LlmClaimJudge:
    return LlmClaimJudge(generator)


def test_judging_leaves_the_answer_prompts_cached_prefix_in_place(
    generator: LlamaCppGenerator, judge: LlmClaimJudge
) -> None:
    prompt = Prompt((ChatMessage("system", "You answer questions about bridges in one word."),
                     ChatMessage("user", "Which city is the Golden Gate Bridge in?")))
    generator.generate(prompt, max_tokens=1)
    first = judge.margins([(BRIDGE, "The bridge opened in 1937.")])
    again = generator.generate(prompt, max_tokens=1)
    assert again.cached_prompt_tokens > 0  # the system message was not evaluated again
    assert judge.margins([(BRIDGE, "The bridge opened in 1937.")]) == first  # nor did the judge's score move


def test_a_negated_claim_is_contradicted_and_a_true_one_supported(judge: LlmClaimJudge) -> None:
    context = Context((source(1, BRIDGE),))
    claims = ground("The Golden Gate Bridge opened in 1937 [1]. The Golden Gate Bridge did not open in 1937 [1].",
                    context, judge, min_score=0.25)
    assert [c.status for c in claims] == ["supported", "contradicted"], claims
    assert claims[0].score > claims[1].score


def test_an_invented_second_sentence_is_flagged_and_dropped(judge: LlmClaimJudge) -> None:
    context = Context((source(1, BRIDGE),))
    text = ("The Golden Gate Bridge opened to traffic in 1937 [1]. "
            "It was painted gold by Frank Lloyd Wright every summer [1].")
    claims = ground(text, context, judge, min_score=0.25)
    assert [c.status for c in claims] == ["supported", "unsupported"], claims
    dropped, kept, numbering, abstain = apply_policy(text, claims, "drop")
    assert dropped == "The Golden Gate Bridge opened to traffic in 1937 [1]." and not abstain
    assert [c.text for c in kept] == ["The Golden Gate Bridge opened to traffic in 1937."] and numbering == {1: 1}
    assert apply_policy(text, claims, "abstain")[3] is False  # the core (first) claim holds


def test_a_wrong_name_present_in_the_passage_is_contradicted(judge: LlmClaimJudge) -> None:
    context = Context((source(1, MATCH),))
    wrong, right = ground("The winner of the women's match was Shinsuke Nakamura [1]. "
                          "Charlotte Flair won the women's match [1].", context, judge, min_score=0.25)
    assert wrong.status == "contradicted" and right.status == "supported", (wrong, right)
    text = "The winner of the women's match was Shinsuke Nakamura [1]. Charlotte Flair won [1]."
    assert apply_policy(text, ground(text, context, judge, min_score=0.25), "abstain")[3] is True


def test_the_shipped_sample_is_judged_like_the_benchmark(judge: LlmClaimJudge) -> None:
    """The tests' slice of the constructed set (tests/data/grounding_cases.jsonl): most cases of each kind
    right. The full set's figures are benchmarks/results/grounding.json."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()][::3]
    margins = judge.margins([(r["passage"], r["claim"]) for r in rows])
    statuses = [assess(r["claim"], r["passage"], m, min_score=0.25, question=r["question"])[0]
                for r, m in zip(rows, margins, strict=True)]
    right = sum((s == "supported") == (r["label"] == "supported") for r, s in zip(rows, statuses, strict=True))
    assert right >= 0.8 * len(rows), (right, len(rows))


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRAG]:
    settings = Settings().with_overrides({
        "generate": {"model": "qwen2.5-coder-0.5b", "threads": 1, "providers": "llamacpp", "max_tokens": 48},
        "answer": {"k": 3, "conflict_precedence": "date"},
    })
    engine = LocalRAG(tmp_path_factory.mktemp("grounding") / "data", settings=settings)
    engine.add([
        Document("old", "The Harbor Museum opened to the public in 1931, on the site of the old customs house.",
                 title="Museum guide (1990)", metadata={"date": "1990-04-01", "topic": "museum"}),
        Document("new", "Records show that the Harbor Museum opened to the public in 1934, not earlier.",
                 title="City archive (2021)", metadata={"date": "2021-09-15", "topic": "museum"}),
        Document("same", "The Harbor Museum on the old customs house site opened to the public in 1934.",
                 title="Visitor leaflet", metadata={"topic": "agree"}),
        Document("bees", "Honeybees tell each other where flowers are with the waggle dance.",
                 metadata={"topic": "bees"}),
    ])
    yield engine
    engine.close()


def test_contradicting_documents_are_both_cited_and_flagged(rag: LocalRAG) -> None:
    answer = rag.ask("When did the Harbor Museum open to the public?", filter={"topic": "museum"})
    assert not answer.abstained, answer.text
    (conflict,) = answer.conflicts
    assert conflict.kind == "date"
    assert {(s.doc_id, s.value) for s in conflict.sides} == {("old", "1931"), ("new", "1934")}
    preferred = [s for s in conflict.sides if s.preferred]
    assert [s.doc_id for s in preferred] == ["new"]  # answer.conflict_precedence = "date": the newer one
    cited = {c.doc_id for c in answer.citations}
    assert {"old", "new"} <= cited, answer.text
    for side in conflict.sides:
        assert f"{side.value} [{side.citation}]" in answer.text
    assert answer.claims and all(c.status in ("supported", "contradicted", "unsupported") for c in answer.claims)


def test_agreeing_documents_are_not_flagged(rag: LocalRAG) -> None:
    answer = rag.ask("When did the Harbor Museum open to the public?", filter={"doc_id": {"$in": ["new", "same"]}})
    assert answer.conflicts == () and "disagree" not in answer.text, answer.text
