"""Adaptive answers: context, shape and abstention chosen per question (answer.adaptive).

The question's type comes from cheap rules (answer/questions.py):

- factoid: ``answer.factoid_k`` passages (one by default: a small model given more passages picks
  the wrong span more often), the short-answer prompt, the answer first in a few words and the
  source sentence holding it after: "Joseph Strauss [1]. The bridge was designed by ... [1]";
- yes/no: no text generated; the model read as a yes/no classifier over the passage
  (generate/judge.py), the answer opens with "Yes" or "No", the passage's most relevant sentence after;
- multi (two asked facts, or a comparison split by the model): each part retrieved and answered as
  above, then composed with citations to every passage used: "a1 [1]; a2 [2]. <sentence> [1] ...".

Abstention, before and after generating: the best passage must reach ``answer.min_relevance``
(``relevance_of``: its dense cosine and its idf-weighted share of the question's words; out-of-corpus
questions stop here, without a generation; the shipped reranker, trained on SciFact, separated
SQuAD's answerable and out-of-corpus questions worse), and a factoid's short answer must be found
in its passage and be judged by the model to answer the question there (P(yes) >=
``answer.min_answer_check``). The general path applies the same relevance bar (answer/pipeline.py).

Other questions (why, how, explain) keep the general path (answer/pipeline.py). Without a llama.cpp
model (extractive provider only) this module is not used: the general path answers, as before.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from localrag.answer.citations import best_sentence, strip_markers
from localrag.answer.compare import winner
from localrag.answer.conflicts import find_conflicts
from localrag.answer.context import Context, ContextSource
from localrag.answer.grounding import verify
from localrag.answer.questions import QuestionPlan, kind_of
from localrag.answer.relevance import most_relevant
from localrag.answer.sentences import terms
from localrag.answer.spelling import SpellingCorrector, speller_for
from localrag.errors import LocalRagError
from localrag.generate.base import GenerationError, collect
from localrag.generate.judge import LabelJudge
from localrag.generate.prompts import (
    ANSWER_CHECK_SYSTEM,
    ANSWER_CHECK_TAIL,
    FACTOID_SYSTEM,
    FACTOID_USER,
    YESNO_SYSTEM,
    YESNO_TAIL,
    PromptTemplates,
    decompose_prompt,
    fill,
    passage_head,
)
from localrag.query.strategies import parse_variants
from localrag.types import Answer, Claim, Completion, Hit, SearchResult

if TYPE_CHECKING:
    from localrag.answer.pipeline import AnswerPipeline, AskOptions
    from localrag.generate.llamacpp import LlamaCppGenerator

log = logging.getLogger(__name__)

_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|he|him|his|she|her|this|that|these|those)\b", re.IGNORECASE)
_FACTOID_TOKENS = 32
_POOL = 3  # passages retrieved per part: the conflict check's, and the candidates for the one answered from


def llama_of(generator: object) -> LlamaCppGenerator | None:
    """The generator's llama.cpp model (the chain's llama.cpp provider), or None without one."""
    from localrag.generate.factory import LazyLlamaCpp
    from localrag.generate.llamacpp import LlamaCppGenerator

    for provider in getattr(generator, "providers", [generator]):
        if isinstance(provider, LazyLlamaCpp):
            try:
                provider = provider.llama()
            except LocalRagError as e:  # the chain's next provider answers, on the general path
                log.info("no llama.cpp model for adaptive answers: %s", e)
                return None
        if isinstance(provider, LlamaCppGenerator):
            return provider
    return None


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


@dataclass(frozen=True, slots=True)
class PartAnswer:
    """One asked fact answered from its own passages."""

    question: str
    kind: str
    short: str  # the answer in a few words ("Yes"/"No" for yes/no); "" when abstained
    sentence: str  # the explanation: the source sentence holding the answer
    source: ContextSource | None
    hits: tuple[Hit, ...]
    relevance: float | None  # relevance_of the best passage
    check: float | None  # the model's P(yes) that the passage gives this answer (yes/no: P(yes))
    reason: str = ""  # why it abstained
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def abstained(self) -> bool:
        return not self.short


class AdaptiveAnswerer:
    def __init__(self, pipeline: AnswerPipeline, llama: LlamaCppGenerator) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.llama = llama
        phrase = pipeline.templates.abstain_phrase
        self.templates = PromptTemplates(FACTOID_SYSTEM, FACTOID_USER, phrase)
        self._check = LabelJudge(llama, ANSWER_CHECK_SYSTEM, max_tokens=384)
        self._yesno = LabelJudge(llama, YESNO_SYSTEM, max_tokens=384)
        self._speller: SpellingCorrector | bool | None = None  # False: no vocabulary to correct against

    # -- one question ------------------------------------------------------------------------
    def stream(self, question: str, plan: QuestionPlan, opts: AskOptions,
               started: float) -> Generator[str, None, Answer | None]:
        """Answer ``question``; returns the Answer, or None when the general path should answer instead: the
        passages disagree on the asked fact (the general path answers from all of them, citing both sides).
        Yields the lead's tokens as the model writes them when the question is one factoid: the lead opens
        the final text, so a chat shows it at once. The returned Answer carries the checked text, which
        replaces what was streamed, as on the general path."""
        timings: dict[str, float] = {}
        parts = plan.parts
        if plan.needs_model:
            t0 = time.perf_counter()
            parts = self._decompose(question)
            timings["decompose"] = (time.perf_counter() - t0) * 1000
        answered: list[PartAnswer] = []
        searched: list[SearchResult] = []  # each part's search, for the self-query filter it reports
        corrected: list[tuple[str, str]] = []
        previous = ""
        for part in parts:
            part = self._spell(part, opts, corrected)
            # a part leaning on an earlier one ("... and when did it open?") is searched with it
            search = f"{part} {previous}" if previous and _PRONOUN.search(part) else part
            kind = kind_of(part)
            answer = yield from self._part(part, search, "yesno" if kind == "yesno" else "factoid", opts,
                                           timings, searched, check_conflicts=len(parts) == 1,
                                           live=len(parts) == 1)
            if answer is None:
                return None
            answered.append(answer)
            previous = part
        composed = replace(self._compose(question, plan, answered, timings, started),
                           corrected=tuple(dict.fromkeys(corrected)))
        shown = next((r.self_query for r in searched if r.self_query is not None), None)
        return replace(composed, strategy=searched[0].strategy, self_query=shown) if searched else composed

    def _spell(self, question: str, opts: AskOptions, corrected: list[tuple[str, str]]) -> str:
        """``question`` with its words the corpus does not know corrected (answer.spelling); adds to ``corrected``."""
        if not self.settings.spelling:
            return question
        doc_freq = self.pipeline.rag.doc_freq(opts.namespace)
        speller = self._spelling()
        if doc_freq is None or speller is None:
            return question
        fixed, fixes = speller.correct(question, doc_freq)
        if fixes:
            log.info("spelling corrected: %s", ", ".join(f"{f.word} -> {f.corrected}" for f in fixes))
            corrected.extend((f.word, f.corrected) for f in fixes)
        return fixed

    def _spelling(self) -> SpellingCorrector | None:
        """The corrector, on the embedder's WordPiece vocabulary; None when the embedder has none."""
        if self._speller is None:
            self._speller = speller_for(self.pipeline.rag) or False
        return self._speller if isinstance(self._speller, SpellingCorrector) else None

    def _decompose(self, question: str) -> tuple[str, ...]:
        n = max(2, self.settings.max_parts)
        try:
            out = self.pipeline.generator.generate(decompose_prompt(question, n), max_tokens=96, temperature=0.0)
        except GenerationError as e:
            log.warning("could not split the question: %s", e)
            return (question,)
        parts = tuple(p if p.endswith("?") else p + "?" for p in parse_variants(out.text, question, n))
        return parts if len(parts) >= 2 else (question,)

    # -- one part ----------------------------------------------------------------------------
    def _part(self, question: str, search: str, kind: str, opts: AskOptions, timings: dict[str, float],
              searched: list[SearchResult], *,
              check_conflicts: bool = False, live: bool = False) -> Generator[str, None, PartAnswer | None]:
        s = self.settings
        pool = max(s.factoid_k, _POOL)
        hits, stage, result = self.pipeline._retrieve([search], replace(opts, k=pool, strategy=None))[0]
        searched.append(result)
        _add(timings, "retrieve", stage.get("retrieve", 0.0))
        _add(timings, "rerank", stage.get("rerank", 0.0))
        if not hits:
            return PartAnswer(question, kind, "", "", None, (), None, None, "nothing retrieved")
        t1 = time.perf_counter()
        hits, relevance = most_relevant(self.pipeline.rag, question, hits)
        _add(timings, "relevance", (time.perf_counter() - t1) * 1000)
        kept = tuple(hits[: s.factoid_k])
        if relevance is not None and relevance < s.min_relevance:
            return PartAnswer(question, kind, "", "", None, kept, relevance, None, "no passage is relevant")
        max_tokens = opts.max_tokens or _FACTOID_TOKENS
        if check_conflicts and s.conflicts and len(hits) > 1:
            t1 = time.perf_counter()
            whole = self.pipeline.build_context(question, hits, max_tokens)
            conflicts = find_conflicts(question, whole, {h.doc_id: h.metadata for h in hits},
                                       precedence=s.conflict_precedence, date_field=s.conflict_date_field)
            _add(timings, "conflicts", (time.perf_counter() - t1) * 1000)
            if conflicts:
                log.info("the passages disagree on %r; the general path answers from all of them", question)
                return None
        t1 = time.perf_counter()
        context = self.pipeline.build_context(question, kept, max_tokens)
        _add(timings, "build", (time.perf_counter() - t1) * 1000)
        if not context.sources:
            return PartAnswer(question, kind, "", "", None, kept, relevance, None, "no context")
        if kind == "yesno":
            return self._yes_no(question, context, kept, relevance, timings)
        return (yield from self._factoid(question, context, kept, relevance, max_tokens, timings, live=live))

    def _factoid(self, question: str, context: Context, hits: tuple[Hit, ...], relevance: float | None,
                 max_tokens: int, timings: dict[str, float], *,
                 live: bool = False) -> Generator[str, None, PartAnswer]:
        t0 = time.perf_counter()
        prompt = self.templates.build(question, context.passages())
        if live:
            completion = yield from _passing_on(
                self.pipeline.generator.stream(prompt, max_tokens=max_tokens, temperature=0.0), timings, t0)
        else:
            completion = self.pipeline.generator.generate(prompt, max_tokens=max_tokens, temperature=0.0)
        _add(timings, "generate", (time.perf_counter() - t0) * 1000)
        tokens = (completion.prompt_tokens, completion.completion_tokens)
        from localrag.answer.pipeline import is_abstention

        short = _clean(completion.text)
        if is_abstention(short, self.templates.abstain_phrase) or not short:
            return PartAnswer(question, "factoid", "", "", None, hits, relevance, None, "the model abstained",
                              *tokens)
        if 0 < self.settings.factoid_max_words < len(short.split()):
            t1 = time.perf_counter()
            usage = {"prompt_tokens": 0, "completion_tokens": 0}
            condensed = self.pipeline._condense(question, short, context, usage)
            _add(timings, "condense", (time.perf_counter() - t1) * 1000)
            if condensed is not None:
                short = _clean(condensed.text)
            tokens = (tokens[0] + usage["prompt_tokens"], tokens[1] + usage["completion_tokens"])
        found = _locate(short, context, question, self.settings.min_support)
        if found is None:
            return PartAnswer(question, "factoid", "", "", None, hits, relevance, None,
                              f"the answer {short!r} is not in the passages", *tokens)
        source, sentence = found
        check = None
        if self.settings.min_answer_check > 0:
            t1 = time.perf_counter()
            tail = fill(ANSWER_CHECK_TAIL, {"question": question, "answer": short})
            yes, no = self._check.logits([(passage_head(source.title, source.text), tail)])[0]
            check = _sigmoid(float(yes - no))
            _add(timings, "grounding", (time.perf_counter() - t1) * 1000)
            if check < self.settings.min_answer_check:
                return PartAnswer(question, "factoid", "", "", source, hits, relevance, check,
                                  f"the model does not find {short!r} answering the question", *tokens)
        return PartAnswer(question, "factoid", short, sentence, source, hits, relevance, check, "", *tokens)

    def _yes_no(self, question: str, context: Context, hits: tuple[Hit, ...], relevance: float | None,
                timings: dict[str, float]) -> PartAnswer:
        t0 = time.perf_counter()
        source = context.sources[0]
        tail = fill(YESNO_TAIL, {"question": question})
        yes, no = self._yesno.logits([(passage_head(source.title, source.text), tail)])[0]
        p_yes = _sigmoid(float(yes - no))
        _add(timings, "generate", (time.perf_counter() - t0) * 1000)
        start, end, _ = best_sentence(source.text, question)
        sentence = " ".join(source.text[start:end].split())
        return PartAnswer(question, "yesno", "Yes" if p_yes >= 0.5 else "No", sentence, source, hits, relevance,
                          p_yes)

    # -- the whole answer ---------------------------------------------------------------------
    def _compose(self, question: str, plan: QuestionPlan, parts: Sequence[PartAnswer],
                 timings: dict[str, float], started: float) -> Answer:
        phrase = self.templates.abstain_phrase
        sources: list[ContextSource] = []
        number: dict[tuple[str, int, int], int] = {}
        for part in parts:
            if part.source is not None and not part.abstained:
                key = (part.source.doc_id, part.source.char_start, part.source.char_end)
                if key not in number:
                    number[key] = len(sources) + 1
                    sources.append(replace(part.source, number=number[key]))
        context = Context(tuple(sources))
        hits: dict[int, Hit] = {}
        for part in parts:
            for hit in part.hits[: self.settings.factoid_k]:
                hits.setdefault(hit.chunk_id, hit)
        usage = {"prompt_tokens": sum(p.prompt_tokens for p in parts),
                 "completion_tokens": sum(p.completion_tokens for p in parts), "cached_prompt_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        timings.setdefault("first_token", timings.get("generate", 0.0))
        abstained = all(p.abstained for p in parts)
        kind = plan.kind if len(parts) > 1 or plan.kind == "multi" else parts[0].kind
        if abstained:
            for part in parts:
                log.info("abstaining on %r: %s", part.question, part.reason)
            timings["total"] = (time.perf_counter() - started) * 1000
            return Answer(question, phrase, (), tuple(hits.values()), timings, usage, self.llama.model,
                          "llamacpp", True, generated_text=phrase, kind=kind,
                          parts=tuple(p.question for p in parts) if len(parts) > 1 else ())
        leads: list[str] = []
        explanations: list[str] = []
        shorts: list[str] = []
        won = winner(plan.comparison, [p.question for p in parts], [p.short for p in parts]) \
            if plan.comparison is not None else None
        for i, part in enumerate(parts):
            if part.abstained or part.source is None:
                leads.append(f"the sources do not say ({part.question.rstrip('?')})")
                continue
            n = number[(part.source.doc_id, part.source.char_start, part.source.char_end)]
            shorts.append(part.short)
            # a decided comparison names each option beside its value: "X: 1263 [1]"
            named = f"{plan.comparison.options[won[1][i]]}: " if won is not None and plan.comparison else ""
            leads.append(f"{named}{part.short} [{n}]")
            if part.sentence and part.sentence not in explanations:
                explanations.append(f"{part.sentence.rstrip().rstrip('.')} [{n}].")
        lead = "; ".join(leads)
        if won is not None and plan.comparison is not None:  # the winner first, both values after it
            best = parts[won[0]]
            assert best.source is not None  # it was answered: winner() needs both answers
            option = plan.comparison.options[won[1][won[0]]]
            lead = f"{option} [{number[(best.source.doc_id, best.source.char_start, best.source.char_end)]}] ({lead})"
            shorts = [option]
        text = f"{lead[0].upper()}{lead[1:]}." + (" " + " ".join(explanations) if explanations else "")
        checked = verify(text, context, question, min_support=self.settings.min_support, attribute=False)
        claims = []
        position = 0
        for part in parts:
            if part.abstained:
                continue
            start = checked.text.lower().find(part.short.lower(), position)
            if start < 0:
                continue
            position = start + len(part.short)
            cited = number[(part.source.doc_id, part.source.char_start, part.source.char_end)] if part.source else 0
            claims.append(Claim(part.short, start, position, "supported", (cited,) if cited else (),
                                part.check if part.check is not None else 1.0))
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(question, checked.text, checked.citations, tuple(hits.values()), timings, usage,
                      self.llama.model, "llamacpp", False, generated_text=lead, support=checked.support,
                      claims=tuple(claims), short="; ".join(shorts), kind=kind,
                      parts=tuple(p.question for p in parts) if len(parts) > 1 else ())


def _passing_on(pieces: Iterator[str | Completion], timings: dict[str, float],
                t0: float) -> Generator[str, None, Completion]:
    """Yield a generator stream's text pieces; return its Completion (first_token timed from ``t0``)."""
    kept: list[Completion] = []
    for piece in pieces:
        if isinstance(piece, Completion):
            kept.append(piece)
            continue
        timings.setdefault("first_token", (time.perf_counter() - t0) * 1000)
        yield piece
    return collect(kept)


def _add(timings: dict[str, float], key: str, ms: float) -> None:
    timings[key] = timings.get(key, 0.0) + ms


def _clean(text: str) -> str:
    text = strip_markers(text).strip().splitlines()[0] if text.strip() else ""
    return text.strip().strip("\"'`*").rstrip(".").strip()


def _locate(short: str, context: Context, question: str, min_support: float) -> tuple[ContextSource, str] | None:
    """The source and sentence holding the short answer: its exact words, or else the source holding the most
    of its content words the question did not bring (at least ``min_support`` of them, as verify asks)."""
    wanted = " ".join(short.lower().split())
    words = terms(short)
    novel = (words - terms(question)) or words
    best: tuple[float, ContextSource] | None = None
    for source in context.sources:
        if wanted in " ".join(source.text.lower().split()):
            best = (2.0, source)
            break
        share = len(novel & terms(source.text)) / len(novel) if novel else 0.0
        if share >= min_support and (best is None or share > best[0]):
            best = (share, source)
    if best is None:
        return None
    start, end, _ = best_sentence(best[1].text, short)
    return best[1], " ".join(best[1].text[start:end].split())
