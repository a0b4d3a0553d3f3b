"""End-to-end answer quality and speed on SQuAD v1.1 dev (../shared/data/squad-v1.1-dev).

Method: every one of the 2,067 paragraphs is ingested (default embedder, hybrid search); a fixed
random sample of questions (``--seed``) is answered by the local model through ``LocalRAG.ask``.
Reported (JSON, default benchmarks/results/answers.json; never asserted in tests):

- exact match and token F1 of the answer text (citation markers removed) against every gold
  answer, with the official SQuAD normalisation (lowercase, no punctuation, no articles a/an/the,
  single spaces), best over the gold answers, averaged over all questions (abstentions score 0);
- citation precision: the share of citations whose chunk contains a gold answer or belongs to
  the gold paragraph;
- abstention rate; recall of the gold paragraph among the context hits;
- time to first token (from the generation's start, and from the question) and tokens/s;
- overhead against calling llama.cpp directly with the same prompt tokens, on a subset: each
  measured call starts from an empty KV cache, the direct call and the pipeline alternate, and
  the texts must match. Two figures: the generator wrapper alone (``generate``), and the whole
  ``ask`` (retrieval, context building, citation checks) against the bare llama.cpp call.

Usage: python benchmarks/bench_answers.py --suite squad200 [--questions 200] [--threads 1] [--model NAME|PATH]

``--template default-path`` asks with the packaged settings and no flags (the adaptive path), scoring the
answer's lead (``Answer.short``); ``--dev N`` asks N other SQuAD questions instead of the sample (for
looking at failures without tuning on the reported 200).

``--suite sets`` (the default) runs the answer-quality suite instead (answer_sets.py, answer_suite.py):
factoid (SQuAD), two-hop, yes/no, comparison and unanswerable (``--unanswerable``, 40) sets, the default
path against today's general path and a naive same-model baseline, with the latency the adaptive path's
stages add; the SQuAD questions are the first of the seed-13 sample above, compared with the
short-settings run on the same questions (results/answers_squad200_short.json: 200 questions, F1 0.525).

    python benchmarks/bench_answers.py --threads 2 --data /tmp/bench-answers-sets
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localrag.answer.citations import strip_markers  # noqa: E402
from localrag.config import load_settings  # noqa: E402
from localrag.engine import LocalRAG  # noqa: E402
from localrag.eval.answer_metrics import exact_match, f1_score, normalize_answer  # noqa: E402
from localrag.eval.metrics import percentile  # noqa: E402
from localrag.generate.chain import FallbackGenerator  # noqa: E402
from localrag.generate.factory import LazyLlamaCpp  # noqa: E402
from localrag.generate.llamacpp import LlamaCppGenerator  # noqa: E402
from localrag.generate.prompts import FACTOID_SYSTEM, FACTOID_USER  # noqa: E402
from localrag.types import Answer, Document  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "squad-v1.1-dev"

# The README's short-answer settings for SQuAD-style extractive questions: the adaptive path's own
# factoid prompts (the answer as a short span of a source).
SHORT_SYSTEM_TEMPLATE = FACTOID_SYSTEM
SHORT_USER_TEMPLATE = FACTOID_USER


# -- data ------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_squad() -> tuple[list[Document], list[dict[str, Any]]]:
    rows = read_jsonl(DATA / "corpus.jsonl")
    corpus = [Document(row["_id"], row["text"], title=row.get("title", "")) for row in rows]
    queries = {row["_id"]: row["text"] for row in read_jsonl(DATA / "queries.jsonl")}
    items = [{"id": row["_id"], "question": queries[row["_id"]], "paragraph": row["corpus_id"],
              "answers": row["answers"]} for row in read_jsonl(DATA / "answers.jsonl")]
    return corpus, items


# -- measurement -------------------------------------------------------------------------------
def score(answer: Answer, item: dict[str, Any], chunk_text: dict[int, str]) -> dict[str, Any]:
    text = "" if answer.abstained else strip_markers(answer.text)
    prediction = answer.short or text if not answer.abstained else ""  # the adaptive path's lead, where it has one
    golds = item["answers"]
    normalized_golds = [normalize_answer(g) for g in golds]
    good = 0
    for c in answer.citations:
        text = normalize_answer(chunk_text.get(c.chunk_id, c.quote))
        if c.doc_id == item["paragraph"] or any(g and g in text for g in normalized_golds):
            good += 1
    usage = answer.usage
    gen_s = (answer.timings.get("generate", 0.0) - answer.timings.get("first_token", 0.0)) / 1000
    completion = int(usage.get("completion_tokens", 0))
    return {
        "id": item["id"], "question": item["question"], "answer": answer.text, "golds": golds,
        "generated": answer.generated_text,
        "em": max(exact_match(prediction, g) for g in golds), "f1": max(f1_score(prediction, g) for g in golds),
        "f1_text": max(f1_score(text, g) for g in golds), "short": answer.short, "kind": answer.kind,
        "corrected": [list(c) for c in answer.corrected],
        "abstained": answer.abstained, "confidence": answer.confidence,
        "citations": len(answer.citations), "good_citations": good,
        "invalid_citations": len(answer.invalid_citations),
        "gold_in_context": any(h.doc_id == item["paragraph"] for h in answer.hits),
        "first_token_ms": answer.timings.get("first_token", 0.0),
        "question_to_first_token_ms": sum(answer.timings.get(k, 0.0) for k in ("retrieve", "rerank", "build"))
        + answer.timings.get("first_token", 0.0),
        "total_ms": answer.timings.get("total", 0.0),
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "cached_prompt_tokens": int(usage.get("cached_prompt_tokens", 0)),
        "completion_tokens": completion,
        # decode speed: tokens after the first over the time after the first
        "tokens_per_s": (completion - 1) / gen_s if gen_s > 0 and completion > 1 else None,
    }


def quantiles(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}


def measure_overhead(rag: LocalRAG, items: list[dict[str, Any]], k: int, max_tokens: int) -> dict[str, Any]:
    """Pipeline against bare llama.cpp on the same prompt tokens, each call from an empty KV cache."""
    pipeline = rag.answers
    chain = pipeline.generator
    provider = chain.primary if isinstance(chain, FallbackGenerator) else chain
    inner = provider._get() if isinstance(provider, LazyLlamaCpp) else provider
    if not isinstance(inner, LlamaCppGenerator):
        return {"skipped": f"the answering provider {provider.name!r} is not llama.cpp"}
    if not items:
        return {"skipped": "--overhead-questions 0"}
    rows = []
    for item in items:
        hits = rag.search(item["question"], k=k)
        context = pipeline.build_context(item["question"], hits, max_tokens)
        prompt = pipeline.templates.build(item["question"], context.passages())
        tokens = inner.render(prompt)
        timings: dict[str, list[float]] = {"direct": [], "generate": [], "ask": []}
        texts: dict[str, str] = {}
        for _ in range(2):  # alternate, so drift in machine load hits both sides alike
            inner._llm.reset()
            t0 = time.perf_counter()
            out = inner._llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0, top_k=40, top_p=0.95,
                                               min_p=0.05, repeat_penalty=1.0, seed=inner.seed)
            timings["direct"].append(time.perf_counter() - t0)
            texts["direct"] = out["choices"][0]["text"]
            inner._llm.reset()
            t0 = time.perf_counter()
            texts["generate"] = inner.generate(prompt, max_tokens=max_tokens, temperature=0.0).text
            timings["generate"].append(time.perf_counter() - t0)
            inner._llm.reset()
            t0 = time.perf_counter()
            answer = rag.ask(item["question"], k=k, max_tokens=max_tokens)
            timings["ask"].append(time.perf_counter() - t0)
            texts["ask"] = answer.text
        best = {name: min(values) for name, values in timings.items()}
        rows.append({**best, "same_text": texts["direct"] == texts["generate"],
                     "prompt_tokens": len(tokens)})
    direct = sum(r["direct"] for r in rows)
    return {
        "questions": len(rows),
        "method": "min of 2 alternating runs per question, KV cache emptied before each call",
        "direct_s": round(direct, 3),
        "generate_s": round(sum(r["generate"] for r in rows), 3),
        "ask_s": round(sum(r["ask"] for r in rows), 3),
        "generate_overhead": round(sum(r["generate"] for r in rows) / direct - 1, 4),
        "ask_overhead": round(sum(r["ask"] for r in rows) / direct - 1, 4),
        "same_text_rate": sum(r["same_text"] for r in rows) / len(rows),
    }


def run_sets(args: argparse.Namespace) -> None:
    from answer_sets import build_sets
    from answer_suite import run_suite

    generate: dict[str, Any] = {"threads": args.threads, "providers": "llamacpp"}
    if args.model:
        generate["model"] = args.model
    settings = load_settings(env={}).with_overrides({"generate": generate})
    corpus, sets = build_sets(DATA, squad=args.questions if args.questions != 200 else 30,
                              unanswerable=args.unanswerable, multihop=args.set_size, yesno=args.set_size,
                              comparison=args.comparison)
    sets = {name: items[: args.limit or None] for name, items in sets.items()
            if not args.only or name in args.only.split(",")}
    systems = {"squad": ["default", "naive"], "multihop": ["default", "today", "naive"],
               "yesno": ["default", "naive"], "unanswerable": ["default"], "comparison": ["default", "naive"]}
    if args.systems:
        systems = {name: [s for s in wanted if s in args.systems.split(",")] for name, wanted in systems.items()}
    workdir = tempfile.TemporaryDirectory(prefix="bench-answers-")
    data_dir = args.data or Path(workdir.name) / "data"
    with LocalRAG(data_dir, settings=settings) as rag:
        t0 = time.perf_counter()
        rag.add(corpus)
        print(f"ingested {len(corpus)} paragraphs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        rag.answers.generator.count_tokens("warm up")
        t_run = time.perf_counter()
        result = run_suite(rag, sets, systems, args.cache)
        model = rag.answers.generator.model
    summary = result["summary"]
    if "squad" in sets:
        earlier = json.loads((REPO / "benchmarks" / "results" / "answers_squad200_short.json").read_text())
        by_id = {r["id"]: r for r in earlier["rows"]}
        same = [by_id[item["id"]]["f1"] for item in sets["squad"] if item["id"] in by_id]
        summary["squad"]["short_settings_same_questions"] = {
            "source": "results/answers_squad200_short.json (k=1, short prompt, max_words 6, threads 1)",
            "questions": len(same), "f1": round(statistics.fmean(same), 4) if same else None}
    results = {"suite": "sets", "dataset": "SQuAD v1.1 dev: constructed sets (benchmarks/answer_sets.py)",
               "model": model, "threads": args.threads, "corpus_paragraphs": len(corpus),
               "sets": {name: len(items) for name, items in sets.items()},
               "run_s": round(time.perf_counter() - t_run, 1), "summary": summary,
               "machine": {"python": platform.python_version(), "platform": platform.platform(),
                           "processor": platform.processor() or platform.machine()},
               "rows": result["rows"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(json.dumps(summary, indent=2))
    workdir.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["sets", "squad200"], default="sets")
    parser.add_argument("--set-size", type=int, default=16, help="questions per constructed set (--suite sets)")
    parser.add_argument("--unanswerable", type=int, default=40, help="unanswerable questions (--suite sets)")
    parser.add_argument("--comparison", type=int, default=8, help="comparison questions (--suite sets)")
    parser.add_argument("--only", default="", help="comma-separated sets to run (--suite sets)")
    parser.add_argument("--systems", default="", help="comma-separated: default, today, naive (--suite sets)")
    parser.add_argument("--limit", type=int, default=0, help="first questions of each set only (--suite sets)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench-answers-cache.json",
                        help="naive and today rows, reused by a rerun (--suite sets)")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--model", default=None, help="registry name or .gguf path (default: generate.model)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--context-tokens", type=int, default=1024)
    parser.add_argument("--template", choices=["short", "default", "default-path"], default="short",
                        help="default-path: the packaged settings, no answer flags (k, max_words ... ignored); "
                        "F1 of the answer's lead (Answer.short), f1_text of the whole text")
    parser.add_argument("--dev", type=int, default=0, help="this many other questions instead of the sample")
    parser.add_argument("--kinds", nargs="*", default=[],
                        help="ask only the questions of these types (answer/questions.py plan kinds, e.g. reason)")
    parser.add_argument("--ids-from", type=Path,
                        help="ask only the questions of this earlier result file's rows (same questions, other code)")
    parser.add_argument("--short-reasons", choices=["on", "off"],
                        help="answer.short_reasons for the default path (default: the packaged setting)")
    parser.add_argument("--max-words", type=int, default=0, help="answer.max_words: condense longer answers")
    parser.add_argument("--min-confidence", type=float, default=0.0, help="answer.min_confidence")
    parser.add_argument("--rerank", default=None, help="rerank the candidates with this rerank.model "
                        "(e.g. trained) before taking the top k")
    parser.add_argument("--fusion", choices=["rrf", "weighted"], default=None, help="default: search.fusion")
    parser.add_argument("--alpha", type=float, default=None, help="dense weight of weighted fusion")
    parser.add_argument("--overhead-questions", type=int, default=10)
    parser.add_argument("--data", type=Path, default=None, help="reuse this data directory (ingested once)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "answers.json")
    args = parser.parse_args()
    if args.suite == "sets":
        sys.path.insert(0, str(REPO / "benchmarks"))
        run_sets(args)
        return

    default_path = args.template == "default-path"
    generate: dict[str, Any] = {"threads": args.threads, "providers": "llamacpp"}
    if not default_path:
        generate["max_tokens"] = args.max_tokens
    if args.model:
        generate["model"] = args.model
    answer_settings: dict[str, Any] = {"k": args.k, "context_tokens": args.context_tokens,
                                       "max_words": args.max_words, "min_confidence": args.min_confidence}
    if args.template == "short":
        answer_settings["system_template"] = SHORT_SYSTEM_TEMPLATE
        answer_settings["user_template"] = SHORT_USER_TEMPLATE
    search: dict[str, Any] = {}
    if args.fusion:
        search["fusion"] = args.fusion
    if args.alpha is not None:
        search["alpha"] = args.alpha
    rerank: dict[str, Any] = {"enabled": True, "model": args.rerank} if args.rerank else {"enabled": False}
    overrides: dict[str, Any] = {"generate": generate, "answer": answer_settings, "search": search, "rerank": rerank}
    # the default path: the packaged settings as they are (no answer, search or rerank flags), asked with no k
    packaged: dict[str, Any] = {"generate": generate}
    if args.short_reasons:
        packaged["answer"] = {"short_reasons": args.short_reasons == "on"}
    settings = load_settings(env={}).with_overrides(packaged if default_path else overrides)
    corpus, items = load_squad()
    sample = random.Random(args.seed).sample(items, args.questions)
    if args.dev:  # other SQuAD questions than the seed's sample of 200, for looking at failures
        reported = {item["id"] for item in random.Random(args.seed).sample(items, 200)}
        sample = random.Random(args.seed + 1000).sample([i for i in items if i["id"] not in reported], args.dev)
    if args.ids_from:
        wanted = {row["id"] for row in json.loads(args.ids_from.read_text())["rows"]}
        sample = [item for item in items if item["id"] in wanted]
    if args.kinds:  # e.g. the why/how questions alone, to compare their answer shapes
        from localrag.answer.questions import plan

        sample = [item for item in sample if plan(item["question"]).kind in args.kinds]

    workdir = tempfile.TemporaryDirectory(prefix="bench-answers-")
    data_dir = args.data or Path(workdir.name) / "data"
    with LocalRAG(data_dir, settings=settings) as rag:
        t0 = time.perf_counter()
        report = rag.add(corpus)
        ingest_s = time.perf_counter() - t0
        print(f"ingested {len(corpus)} paragraphs ({report.chunks_added} new chunks) in {ingest_s:.1f}s",
              file=sys.stderr)
        t_load = time.perf_counter()
        rag.answers.generator.count_tokens("warm up")  # loads the model (and assembles it once)
        load_s = time.perf_counter() - t_load
        rows = []
        t_run = time.perf_counter()
        for i, item in enumerate(sample, 1):
            answer = rag.ask(item["question"]) if default_path else rag.ask(item["question"], k=args.k)
            chunk_text = {h.chunk_id: h.text for h in answer.hits}
            rows.append(score(answer, item, chunk_text))
            if i % 10 == 0:
                f1 = statistics.fmean(r["f1"] for r in rows)
                print(f"{i}/{len(sample)} F1 {f1:.3f} ({time.perf_counter() - t_run:.0f}s)", file=sys.stderr)
        run_s = time.perf_counter() - t_run
        model = rag.answers.generator.model
        overhead = measure_overhead(rag, sample[: 0 if default_path else args.overhead_questions], args.k,
                                    args.max_tokens)

    citations = sum(r["citations"] for r in rows)
    tps = [r["tokens_per_s"] for r in rows if r["tokens_per_s"]]
    results = {
        "dataset": "SQuAD v1.1 dev (2,067 paragraphs, 10,570 questions)",
        "questions": len(rows), "seed": args.seed, "dev": args.dev, "kinds": args.kinds,
        "short_reasons": args.short_reasons, "k": args.k, "template": args.template,
        "model": model, "threads": args.threads, "max_tokens": args.max_tokens,
        "context_tokens": args.context_tokens, "search_mode": settings.search.mode, "max_words": args.max_words,
        "rerank": args.rerank, "rerank_candidates": settings.rerank.candidates if args.rerank else None,
        "min_confidence": args.min_confidence,
        "fusion": settings.search.fusion, "alpha": settings.search.alpha,
        "exact_match": round(statistics.fmean(r["em"] for r in rows), 4),
        "f1": round(statistics.fmean(r["f1"] for r in rows), 4),
        "f1_text": round(statistics.fmean(r["f1_text"] for r in rows), 4),
        "scored": "the answer's lead (Answer.short) where the adaptive path wrote one, else the whole text",
        "f1_answered": round(statistics.fmean([r["f1"] for r in rows if not r["abstained"]] or [0.0]), 4),
        "citation_precision": round(sum(r["good_citations"] for r in rows) / citations, 4) if citations else None,
        "citations": citations,
        "answers_with_citation": round(sum(r["citations"] > 0 for r in rows) / len(rows), 4),
        "invalid_citations": sum(r["invalid_citations"] for r in rows),
        "abstention_rate": round(sum(r["abstained"] for r in rows) / len(rows), 4),
        "gold_paragraph_in_context": round(sum(r["gold_in_context"] for r in rows) / len(rows), 4),
        "first_token_ms": quantiles([r["first_token_ms"] for r in rows]),
        "question_to_first_token_ms": quantiles([r["question_to_first_token_ms"] for r in rows]),
        "tokens_per_s": round(statistics.median(tps), 1) if tps else None,
        "prompt_tokens_mean": round(statistics.fmean(r["prompt_tokens"] for r in rows), 1),
        "cached_prompt_tokens_mean": round(statistics.fmean(r["cached_prompt_tokens"] for r in rows), 1),
        "seconds_per_question": round(run_s / len(rows), 2),
        "model_load_s": round(load_s, 2), "ingest_s": round(ingest_s, 1),
        "overhead": overhead,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in results.items() if k != "rows"}, indent=2))
    workdir.cleanup()


if __name__ == "__main__":
    main()
