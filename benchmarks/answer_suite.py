"""The answer-quality suite of bench_answers.py: five question sets (answer_sets.py), three systems.

Systems, all on the same model, corpus and questions:

- ``default``: ``LocalRAG.ask`` with the default settings (adaptive context and answer shape);
- ``today``: the same with ``answer.adaptive = false`` (the general path every question took before);
- ``naive``: the top 3 dense passages stuffed into a plain prompt, one generation.

Scores (SQuAD normalisation, answer/eval helpers):

- ``f1``/``em``: of the answer's lead: ``Answer.short`` (the few words the adaptive path puts first)
  where there is one, else the whole text; ``f1_text``: of the whole text (citation markers removed),
  for every system alike;
- multihop: gold is both hops' answers joined (best over their gold variants); ``hops_found``: share
  of hops whose gold answer appears in the text; ``citation_recall_both``: share of questions citing
  both hops' paragraphs;
- yesno: ``accuracy``: the first word is the gold "yes"/"no"; ``starts_yes_no``: it is "yes" or "no";
- comparison: gold is the winner's name ("Which was founded first, X or Y?"), scored like factoid;
  ``hops_found`` and ``citation_recall_both`` as for multihop;
- unanswerable: abstention recall on that set; precision over the abstentions on it and on every
  answerable set (squad, multihop, yesno, comparison), false abstentions counted per set;
- latency per question (ms), and for ``default`` the stage timings (relevance, grounding check,
  decomposition).

``naive`` and ``today`` rows are cached on disk (``--cache``), keyed by system, model and question,
so a rerun after changing the default path only runs that path again.
"""

from __future__ import annotations

import itertools
import json
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from localrag.answer.citations import strip_markers
from localrag.engine import LocalRAG
from localrag.eval.answer_metrics import exact_match, f1_score, normalize_answer
from localrag.eval.metrics import percentile
from localrag.types import Answer, ChatMessage, Prompt

log = logging.getLogger(__name__)

NAIVE_SYSTEM = "Answer the question using the passages."
NAIVE_TOKENS = 64


def naive(rag: LocalRAG, question: str) -> dict[str, Any]:
    """Top-3 dense passages in a plain prompt, one generation: the baseline of issue 17."""
    t0 = time.perf_counter()
    hits = rag.search(question, k=3, mode="dense")
    passages = "\n\n".join(f"[{i}] {h.text}" for i, h in enumerate(hits, 1))
    prompt = Prompt((ChatMessage("system", NAIVE_SYSTEM),
                     ChatMessage("user", f"Passages:\n{passages}\n\nQuestion: {question}\nAnswer:")), question=question)
    out = rag.answers.generator.generate(prompt, max_tokens=NAIVE_TOKENS, temperature=0.0)
    return {"text": out.text.strip(), "short": "", "abstained": False, "cited": [h.doc_id for h in hits],
            "context": [h.doc_id for h in hits], "kind": "", "timings": {"total": (time.perf_counter() - t0) * 1000}}


def from_answer(answer: Answer) -> dict[str, Any]:
    return {"text": answer.text, "short": answer.short, "abstained": answer.abstained,
            "cited": sorted({c.doc_id for c in answer.citations}), "context": [h.doc_id for h in answer.hits],
            "kind": answer.kind, "parts": list(answer.parts), "timings": dict(answer.timings)}


def run_system(rag: LocalRAG, system: str, question: str) -> dict[str, Any]:
    if system == "naive":
        return naive(rag, question)
    pipeline = rag.answers
    settings = pipeline.settings
    if system == "today":
        pipeline.settings = replace(settings, adaptive=False)
    try:
        return from_answer(rag.ask(question))
    finally:
        pipeline.settings = settings


def _best(prediction: str, golds: list[str]) -> tuple[float, float]:
    if not golds:
        return 0.0, 0.0
    return max(exact_match(prediction, g) for g in golds), max(f1_score(prediction, g) for g in golds)


def score(item: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    text = "" if out["abstained"] else strip_markers(out["text"])
    lead = "" if out["abstained"] else (out["short"] or text)
    row: dict[str, Any] = {"abstained": out["abstained"], "kind": out["kind"], "total_ms": out["timings"]["total"]}
    if item["set"] == "multihop":
        golds = [" ".join(combo) for combo in itertools.product(*[sorted(set(h["answers"]))[:3]
                                                                  for h in item["hops"]])]
        row["em"], row["f1"] = _best(lead, golds)
        row["f1_text"] = _best(text, golds)[1]
        norm = normalize_answer(text)
        row["hops_found"] = statistics.fmean(any(normalize_answer(g) in norm for g in h["answers"])
                                             for h in item["hops"])
        row["citation_recall_both"] = float(all(p in out["cited"] for p in item["paragraphs"]))
        row["citation_recall_hops"] = statistics.fmean(p in out["cited"] for p in item["paragraphs"])
    elif item["set"] == "comparison":
        row["em"], row["f1"] = _best(lead, item["answers"])
        row["f1_text"] = _best(text, item["answers"])[1]
        norm = normalize_answer(text)
        row["hops_found"] = statistics.fmean(any(normalize_answer(g) in norm for g in h["answers"])
                                             for h in item["hops"])
        row["citation_recall_both"] = float(all(p in out["cited"] for p in item["paragraphs"]))
        row["citation_recall_hops"] = statistics.fmean(p in out["cited"] for p in item["paragraphs"])
    elif item["set"] == "yesno":
        first = normalize_answer(text).split()[:1]
        row["starts_yes_no"] = float(bool(first) and first[0] in ("yes", "no"))
        row["accuracy"] = float(first == item["answers"])
        row["f1_text"] = f1_score(text, item["answers"][0]) if text else 0.0
        row["f1"] = f1_score(lead, item["answers"][0]) if lead else 0.0
    elif item["set"] == "squad":
        row["em"], row["f1"] = _best(lead, item["answers"])
        row["f1_text"] = _best(text, item["answers"])[1]
        row["cited_gold"] = item["paragraph"] in out["cited"]
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"questions": len(rows)}
    for key in ("em", "f1", "f1_text", "hops_found", "citation_recall_both", "citation_recall_hops", "accuracy",
                "starts_yes_no", "cited_gold"):
        values = [float(r[key]) for r in rows if key in r]
        if values:
            out[key] = round(statistics.fmean(values), 4)
    out["abstention_rate"] = round(statistics.fmean(r["abstained"] for r in rows), 4)
    totals = [r["total_ms"] for r in rows]
    out["latency_ms"] = {"mean": round(statistics.fmean(totals), 1), "p50": round(percentile(totals, 50), 1),
                         "p95": round(percentile(totals, 95), 1)}
    return out


def run_suite(rag: LocalRAG, sets: dict[str, list[dict[str, Any]]], systems: dict[str, list[str]],
              cache_path: Path) -> dict[str, Any]:
    """``systems[set]``: the systems to run on that set. Returns the summary and every row."""
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    model = rag.answers.generator.model
    rows: list[dict[str, Any]] = []
    t_run = time.perf_counter()
    for set_name, items in sets.items():
        for system in systems.get(set_name, []):
            for item in items:
                key = f"{system}|{model}|{item['question']}"
                if system != "default" and key in cache:
                    out = cache[key]
                else:
                    out = run_system(rag, system, item["question"])
                    if system != "default":
                        cache[key] = out
                        cache_path.write_text(json.dumps(cache))
                rows.append({"set": set_name, "system": system, "id": item["id"], "question": item["question"],
                             "answer": out["text"], "short": out["short"], "cited": out["cited"],
                             "parts": out.get("parts", []), "timings": out["timings"],
                             "golds": item.get("answers") or [h["answers"] for h in item.get("hops", [])],
                             **score(item, out)})
            done = [r for r in rows if r["set"] == set_name and r["system"] == system]
            print(f"{set_name}/{system}: {json.dumps(summarise(done))} ({time.perf_counter() - t_run:.0f}s)",
                  file=sys.stderr)
    summary: dict[str, Any] = {}
    for set_name in sets:
        summary[set_name] = {system: summarise([r for r in rows if r["set"] == set_name and r["system"] == system])
                             for system in systems.get(set_name, [])}
    summary["abstention"] = abstention(rows)
    summary["stages_ms"] = stages(rows)
    return {"summary": summary, "rows": rows}


ANSWERABLE = ("squad", "multihop", "yesno", "comparison")


def abstention(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Abstention recall on the unanswerable set; precision over the abstentions on it and on every answerable
    set (a false abstention is one on a question the corpus answers), with the false abstentions per set."""
    out: dict[str, Any] = {}
    for system in sorted({r["system"] for r in rows if r["set"] == "unanswerable"}):
        unanswerable = [r for r in rows if r["system"] == system and r["set"] == "unanswerable"]
        answerable = [r for r in rows if r["system"] == system and r["set"] in ANSWERABLE]
        abstained = sum(r["abstained"] for r in unanswerable)
        wrong = sum(r["abstained"] for r in answerable)
        per_set = {name: {"questions": sum(r["set"] == name for r in answerable),
                          "false_abstentions": sum(r["abstained"] for r in answerable if r["set"] == name)}
                   for name in ANSWERABLE if any(r["set"] == name for r in answerable)}
        out[system] = {"unanswerable": len(unanswerable), "answerable": len(answerable),
                       "recall": round(abstained / len(unanswerable), 4) if unanswerable else None,
                       "precision": round(abstained / (abstained + wrong), 4) if abstained + wrong else None,
                       "false_abstentions": wrong, "per_set": per_set}
    return out


def stages(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean stage timings of the default path per set: what the relevance check, the grounding check
    (the model's answer check) and decomposition add."""
    out: dict[str, Any] = {}
    for set_name in sorted({r["set"] for r in rows}):
        mine = [r for r in rows if r["set"] == set_name and r["system"] == "default"]
        if not mine:
            continue
        names = sorted({k for r in mine for k in r["timings"]})
        out[set_name] = {k: round(statistics.fmean(r["timings"].get(k, 0.0) for r in mine), 1) for k in names}
    return out
