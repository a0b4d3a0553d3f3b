"""Context compression against plain truncation at equal budget, on SQuAD v1.1 dev.

Method: every paragraph of ../shared/data/squad-v1.1-dev is ingested (default embedder, hybrid
search); a fixed random sample of questions (``--seed``) is answered twice through ``LocalRAG.ask``
with the same retrieval and a tight ``answer.context_tokens`` (so that truncation cuts passages):
once with ``answer.compression = "off"`` (truncation) and once with ``"sentences"``. The two runs
alternate per question, so machine load falls on both alike. Reported per configuration (JSON,
default benchmarks/results/compression.json; never asserted in tests):

- exact match and token F1 (SQuAD normalisation, best over the gold answers; abstentions score 0);
- the share of questions whose context (as given to the model) holds a gold answer;
- citation resolution: the share of citations whose quote is the document's text at the
  citation's offsets (``document.text[quote_start:quote_end] == quote``);
- time to first token: from the generation's start, and from the retrieved hits (context
  building included: compression's sentence embedding is in ``build``);
- prompt tokens, context building time.

Usage: python benchmarks/bench_compression.py [--questions 36] [--context-tokens 160] [--k 3]
"""

from __future__ import annotations

import argparse
import dataclasses
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
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_answers import SHORT_SYSTEM_TEMPLATE, SHORT_USER_TEMPLATE, load_squad, quantiles  # noqa: E402

from localrag.answer.citations import strip_markers  # noqa: E402
from localrag.config import load_settings  # noqa: E402
from localrag.engine import LocalRAG  # noqa: E402
from localrag.eval.answer_metrics import exact_match, f1_score, normalize_answer  # noqa: E402
from localrag.types import Answer  # noqa: E402

MODES = ("off", "sentences")


def score(rag: LocalRAG, answer: Answer, item: dict[str, Any], context_text: str) -> dict[str, Any]:
    prediction = "" if answer.abstained else strip_markers(answer.text)
    golds = item["answers"]
    resolved = 0
    for c in answer.citations:
        document = rag.get_document(c.doc_id, c.namespace).text
        resolved += document[c.quote_start : c.quote_end] == c.quote
    timings = answer.timings
    return {
        "id": item["id"], "answer": answer.text, "golds": golds,
        "em": max(exact_match(prediction, g) for g in golds), "f1": max(f1_score(prediction, g) for g in golds),
        "abstained": answer.abstained,
        "gold_in_context": any(normalize_answer(g) in normalize_answer(context_text) for g in golds),
        "citations": len(answer.citations), "resolved_citations": resolved,
        "build_ms": timings.get("build", 0.0),
        "first_token_ms": timings.get("first_token", 0.0),
        # from the retrieved hits to the first token: what the two configurations do differently
        "build_to_first_token_ms": timings.get("build", 0.0) + timings.get("first_token", 0.0),
        "prompt_tokens": int(answer.usage.get("prompt_tokens", 0)),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    citations = sum(r["citations"] for r in rows)
    return {
        "exact_match": round(statistics.fmean(r["em"] for r in rows), 4),
        "f1": round(statistics.fmean(r["f1"] for r in rows), 4),
        "abstention_rate": round(sum(r["abstained"] for r in rows) / len(rows), 4),
        "gold_answer_in_context": round(sum(r["gold_in_context"] for r in rows) / len(rows), 4),
        "citations": citations,
        "citation_resolution": round(sum(r["resolved_citations"] for r in rows) / citations, 4) if citations else None,
        "build_ms": quantiles([r["build_ms"] for r in rows]),
        "first_token_ms": quantiles([r["first_token_ms"] for r in rows]),
        "build_to_first_token_ms": quantiles([r["build_to_first_token_ms"] for r in rows]),
        "prompt_tokens_mean": round(statistics.fmean(r["prompt_tokens"] for r in rows), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=36)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--context-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--max-words", type=int, default=6, help="answer.max_words (the README's short settings)")
    parser.add_argument("--data", type=Path, default=None, help="reuse this data directory (ingested once)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "compression.json")
    args = parser.parse_args()

    settings = load_settings(env={}).with_overrides({
        "generate": {"threads": args.threads, "max_tokens": args.max_tokens, "providers": "llamacpp"},
        "answer": {"k": args.k, "context_tokens": args.context_tokens, "max_words": args.max_words,
                   "system_template": SHORT_SYSTEM_TEMPLATE, "user_template": SHORT_USER_TEMPLATE},
        "rerank": {"enabled": False},
    })
    corpus, items = load_squad()
    sample = random.Random(args.seed).sample(items, args.questions)
    workdir = tempfile.TemporaryDirectory(prefix="bench-compression-")
    data_dir = args.data or Path(workdir.name) / "data"
    rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with LocalRAG(data_dir, settings=settings) as rag:
        t0 = time.perf_counter()
        rag.add(corpus)
        ingest_s = time.perf_counter() - t0
        print(f"ingested {len(corpus)} paragraphs in {ingest_s:.1f}s", file=sys.stderr)
        pipeline = rag.answers
        base = pipeline.settings
        pipeline.generator.count_tokens("warm up")
        rag.embedder.embed_query("warm up")
        t_run = time.perf_counter()
        for i, item in enumerate(sample, 1):
            # alternate which goes first: both see the same load and the same warm caches
            for mode in (MODES if i % 2 else MODES[::-1]):
                pipeline.settings = dataclasses.replace(base, compression=mode)
                answer = rag.ask(item["question"], k=args.k)
                # the context the model saw, rebuilt the same way (deterministic) for the gold check
                hits = rag.search(item["question"], k=args.k)
                context = pipeline.build_context(item["question"], hits, args.max_tokens)
                text = " ".join(s.text for s in context.sources)
                rows[mode].append(score(rag, answer, item, text))
            if i % 6 == 0:
                print(f"{i}/{len(sample)} " + " ".join(
                    f"{m} F1 {statistics.fmean(r['f1'] for r in rows[m]):.3f}" for m in MODES)
                    + f" ({time.perf_counter() - t_run:.0f}s)", file=sys.stderr)
        model = pipeline.generator.model
        pipeline.settings = base

    results = {
        "dataset": "SQuAD v1.1 dev (2,067 paragraphs)", "questions": len(sample), "seed": args.seed,
        "k": args.k, "context_tokens": args.context_tokens, "template": "short", "max_words": args.max_words,
        "model": model, "threads": args.threads, "max_tokens": args.max_tokens, "ingest_s": round(ingest_s, 1),
        "configurations": {mode: summary(rows[mode]) for mode in MODES},
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
