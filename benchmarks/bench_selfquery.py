"""Self-query on a constructed, metadata-rich corpus: filters read from questions, and what they do to nDCG@10.

    python benchmarks/bench_selfquery.py                 # rules only
    python benchmarks/bench_selfquery.py --llm           # and with the local LLM confirming weak matches

The corpus and the questions are constructed by this project (``--build`` rewrites
benchmarks/selfquery_set.json from a fixed seed): office records (emails, memos, reports, invoices,
minutes) on 24 topics, each topic written up ten times with the same wording but other metadata (sender,
type, project, year, date as yyyymmdd, file type), so that text alone cannot tell them apart. Half the
questions imply a filter (a sender, a type, a file type, a project, a year or a date range, or several);
half imply none, some with metadata-like words used otherwise ("report" as a verb, "2000 units").

Measured, with "now" fixed at 2026-12-03: the exact filter match rate where one is implied (the proposed
filter equals the gold one), the share of filter-free questions left without a filter, and nDCG@10 of
hybrid search with self-query off, boost and filter (relevant: the topic's records that pass the gold
filter). Writes benchmarks/results/selfquery.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.eval.metrics import ndcg_at_k
from localrag.filters import matches
from localrag.types import Document, SearchRequest

SET_FILE = Path(__file__).with_name("selfquery_set.json")
HELD_OUT_FILE = Path(__file__).with_name("selfquery_heldout.json")  # hand-written, not used to tune the rules
RESULTS = Path(__file__).with_name("results") / "selfquery.json"
NOW = date(2026, 12, 3)

SENDERS = ["Maria Chen", "John Okafor", "Priya Nair", "Lukas Weber", "Sofia Rossi", "Daniel Kim", "Amara Diallo",
           "Tomas Herrera"]
TYPES = ["email", "memo", "report", "invoice", "minutes"]
PROJECTS = ["Apollo", "Borealis", "Cobalt", "Ember", "Falcon"]
FILE_TYPES = ["pdf", "docx", "eml", "markdown", "xlsx"]
TOPICS = [
    ("office relocation", "The office relocation to the riverside building was scheduled, with movers for {n} desks."),
    ("server migration", "The server migration moved {n} virtual machines to the new data centre over one weekend."),
    ("hiring plan", "The hiring plan adds {n} engineers and one product designer to the team."),
    ("vendor contract", "The vendor contract renewal was negotiated down by {n} percent after a competing bid."),
    ("security audit", "The security audit found {n} medium findings in the access control review."),
    ("marketing budget", "The marketing budget was cut by {n} thousand euros and trade fairs were dropped."),
    ("customer churn", "Customer churn rose to {n} percent among small accounts after the price change."),
    ("escrow agreement", "The escrow agreement holds {n} thousand euros until the source code is delivered."),
    ("parental leave policy", "The parental leave policy now grants {n} weeks of paid leave to every parent."),
    ("warehouse inventory", "The warehouse inventory count showed {n} missing pallets of spare parts."),
    ("solar panel installation", "The solar panel installation on the roof covers {n} square metres."),
    ("travel expenses", "Travel expenses above {n} euros now need a manager's approval in advance."),
    ("data retention", "The data retention rule deletes customer logs after {n} days."),
    ("quarterly sales", "Quarterly sales reached {n} thousand units, led by the northern region."),
    ("laptop refresh", "The laptop refresh replaces {n} machines older than four years."),
    ("insurance claim", "The insurance claim for the flooded basement was settled at {n} thousand euros."),
    ("onboarding checklist", "The onboarding checklist now has {n} steps, including a security briefing."),
    ("cloud costs", "Cloud costs grew by {n} percent because of idle test clusters."),
    ("supplier delay", "The supplier delay pushed the delivery of circuit boards back by {n} weeks."),
    ("employee survey", "The employee survey had a response rate of {n} percent and asked for more remote days."),
    ("pricing change", "The pricing change raises the basic plan by {n} euros a month."),
    ("fire drill", "The fire drill emptied the building in {n} minutes with one blocked exit."),
    ("API outage", "The API outage lasted {n} minutes and was caused by an expired certificate."),
    ("training budget", "The training budget allows {n} euros per employee for courses and books."),
]
RECORDS_PER_TOPIC = 10


def build(seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    docs = []
    for t, (_, template) in enumerate(TOPICS):
        for i in range(RECORDS_PER_TOPIC):
            year = rng.randint(2021, 2026)
            month = rng.randint(1, 12 if year < 2026 else 11)
            day = rng.randint(1, 28)
            meta = {"type": rng.choice(TYPES), "sender": rng.choice(SENDERS), "project": rng.choice(PROJECTS),
                    "year": year, "date": year * 10000 + month * 100 + day, "file_type": rng.choice(FILE_TYPES)}
            docs.append({"doc_id": f"t{t:02d}-{i}", "text": template.format(n=rng.randint(3, 90)), "metadata": meta})
    questions = _questions(rng, docs)
    return {"note": "Constructed by the localrag project (benchmarks/bench_selfquery.py --build, seed "
                    f"{seed}); synthetic records and questions, no third-party data. 'now' is {NOW.isoformat()}.",
            "now": NOW.isoformat(), "documents": docs, "questions": questions}


def _topic(doc_id: str) -> int:
    return int(doc_id[1:3])


def _first(name: str) -> str:
    return name.split()[0]


def _last(name: str) -> str:
    return name.split()[-1]


def _questions(rng: random.Random, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Questions with a filter are built from a record of the topic, so the filter always leaves one."""
    plural = {"email": "emails", "memo": "memos", "report": "reports", "invoice": "invoices", "minutes": "minutes"}
    file_words = {"pdf": "PDF", "docx": "Word document", "eml": "eml file", "markdown": "markdown file",
                  "xlsx": "spreadsheet"}
    filtered = [
        lambda m, t: (f"What did {m['sender']} say about the {t}?", {"sender": m["sender"]}),
        lambda m, t: (f"What did {_last(m['sender'])} write about the {t}?", {"sender": m["sender"]}),
        lambda m, t: (f"Show me {_first(m['sender'])}'s notes on the {t}", {"sender": m["sender"]}),
        lambda m, t: (f"What was decided about the {t} in {m['year']}?", {"year": m["year"]}),
        lambda m, t: (f"the {t} during {m['year']}", {"year": m["year"]}),
        lambda m, t: (f"Any news on the {t} since {m['year']}?", {"year": {"$gte": m["year"]}}),
        lambda m, t: (f"{t} records between {m['year'] - 1} and {m['year']}",
                      {"year": {"$gte": m["year"] - 1, "$lte": m["year"]}}),
        lambda m, t: (f"Find the {plural[m['type']]} about the {t}", {"type": m["type"]}),
        lambda m, t: (f"Is there a {file_words[m['file_type']]} on the {t}?", {"file_type": m["file_type"]}),
        lambda m, t: (f"What is the status of the {t} in project {m['project']}?", {"project": m["project"]}),
        lambda m, t: (f"How did the {m['project']} project handle the {t}?", {"project": m["project"]}),
        lambda m, t: (f"{m['sender']}'s {plural[m['type']]} about the {t}",
                      {"sender": m["sender"], "type": m["type"]}),
        lambda m, t: (f"{plural[m['type']].capitalize()} from {m['year']} on the {t}",
                      {"type": m["type"], "year": m["year"]}),
        lambda m, t: (_month_question(m, t), _month_filter(m)),
    ]
    unfiltered = [
        "What was decided about the {t}?", "How much did the {t} cost?", "Who approved the {t}?",
        "Summarise the {t}", "What are the risks of the {t}?", "How do I report a problem with the {t}?",
        "Note the main numbers of the {t}", "Why was the {t} needed?", "What changed with the {t}?",
        "Give me the details on the {t}", "Was the {t} a success?", "What may go wrong with the {t}?",
        "Explain the {t} in two sentences", "Is the {t} finished?", "Where can I read about the {t}?",
        "What problems did the {t} cause?", "Did the {t} exceed 2000 units or euros?", "Compare the {t} to plan",
    ]
    out: list[dict[str, Any]] = []
    topics = list(range(len(TOPICS)))
    for i in range(60):
        t = topics[i % len(topics)]
        record = rng.choice([d for d in docs if _topic(d["doc_id"]) == t])
        text, gold = filtered[i % len(filtered)](record["metadata"], TOPICS[t][0])
        out.append({"id": f"f{i:02d}", "question": text, "topic": t, "filter": gold})
    for i in range(60):
        t = topics[(i * 7 + 3) % len(topics)]
        out.append({"id": f"n{i:02d}", "question": unfiltered[i % len(unfiltered)].format(t=TOPICS[t][0]),
                    "topic": t, "filter": None})
    return out


def _month_question(m: dict[str, Any], topic: str) -> str:
    month = date(m["year"], m["date"] // 100 % 100, 1).strftime("%B")
    if m["year"] == 2026:
        return f"What happened with the {topic} last {month}?"
    return f"What was said about the {topic} in {month} {m['year']}?"


def _month_filter(m: dict[str, Any]) -> dict[str, Any]:
    start = m["date"] // 100 * 100 + 1
    last = {2: 29 if m["year"] % 4 == 0 else 28, 4: 30, 6: 30, 9: 30, 11: 30}.get(m["date"] // 100 % 100, 31)
    return {"date": {"$gte": start, "$lte": start - 1 + last}}


def _canonical(flt: Any) -> str:
    return json.dumps(flt, sort_keys=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = json.loads(SET_FILE.read_text())
    docs = [Document(d["doc_id"], d["text"], metadata=d["metadata"]) for d in data["documents"]]
    now = date.fromisoformat(data["now"])
    held_out = json.loads(HELD_OUT_FILE.read_text())
    settings = Settings().with_overrides({"learn": {"self_query_llm": args.llm, "feedback": False},
                                          "generate": {"model": args.model, "threads": 2},
                                          "server": {"result_cache_size": 0}})
    report: dict[str, Any] = {"documents": len(docs), "now": data["now"], "llm": args.model if args.llm else None}
    with tempfile.TemporaryDirectory() as tmp, LocalRAG(Path(tmp) / "data", settings=settings) as rag:
        rag.add(docs)
        rag.self_query.clock = lambda: now
        report["templated"] = _evaluate(rag, data["questions"], docs)
        report["held_out"] = _evaluate(rag, held_out["questions"], docs)
    return report


def _evaluate(rag: LocalRAG, questions: list[dict[str, Any]], docs: list[Document]) -> dict[str, Any]:
    report: dict[str, Any] = {"questions": len(questions), "k": 10}
    rows = []
    started = time.perf_counter()
    for q in questions:
        proposal = rag.self_query.propose(q["question"])
        rows.append({"id": q["id"], "question": q["question"], "gold": q["filter"], "proposed": proposal.filter,
                     "confidence": round(proposal.confidence, 3),
                     "conditions": proposal.describe("filter")["conditions"]})
    propose_ms = (time.perf_counter() - started) * 1000 / len(rows)
    with_filter = [r for r in rows if r["gold"] is not None]
    without = [r for r in rows if r["gold"] is None]
    exact = [r for r in with_filter
             if r["proposed"] is not None and _canonical(r["proposed"]) == _canonical(r["gold"])]
    metas = [d.metadata for d in docs]
    same_docs = [r for r in with_filter if r["proposed"] is not None and
                 [matches(r["proposed"], m) for m in metas] == [matches(r["gold"], m) for m in metas]]
    report.update(
        exact_match=len(exact) / len(with_filter), same_documents=len(same_docs) / len(with_filter),
        no_filter=sum(r["proposed"] is None for r in without) / len(without),
        propose_ms_mean=round(propose_ms, 1),
        misses=[{k: r[k] for k in ("id", "question", "gold", "proposed", "confidence")}
                for r in rows if r not in exact and (r["gold"] is not None or r["proposed"] is not None)],
    )
    report["ndcg"] = _ndcg(rag, questions, docs)
    return report


def _ndcg(rag: LocalRAG, questions: list[dict[str, Any]], docs: list[Document]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("off", "boost", "filter"):
        scores: dict[str, list[float]] = {"with_filter": [], "without_filter": []}
        for q in questions:
            relevant = {d.doc_id: 1 for d in docs if _topic(d.doc_id) == q["topic"]
                        and (q["filter"] is None or matches(q["filter"], d.metadata))}
            if not relevant:  # a hand-written filter no record of the topic passes: nothing to rank
                continue
            result = rag.retrieve([SearchRequest(q["question"], 10, self_query=mode)])[0]
            ranked = list(dict.fromkeys(h.doc_id for h in result.hits))
            scores["with_filter" if q["filter"] else "without_filter"].append(ndcg_at_k(ranked, relevant, 10))
        out[mode] = {name: round(sum(v) / len(v), 4) for name, v in scores.items()}
        out["judged"] = {name: len(v) for name, v in scores.items()}
    for mode in ("boost", "filter"):
        out[f"{mode}_gain"] = {name: round(out[mode][name] - out["off"][name], 4) for name in out["off"]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help="rewrite the question set from the seed")
    parser.add_argument("--llm", action="store_true", help="also run with the local LLM (learn.self_query_llm)")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    args = parser.parse_args()
    if args.build or not SET_FILE.exists():
        SET_FILE.write_text(json.dumps(build(), indent=1) + "\n")
    results: dict[str, Any] = {"rules": run(argparse.Namespace(llm=False, model=args.model))}
    if args.llm:
        results["rules+llm"] = run(args)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    for name, r in ((f"{run_name} {part}", by[part]) for run_name, by in results.items()
                    for part in ("templated", "held_out")):
        print(f"{name}: exact {r['exact_match']:.3f} (same documents {r['same_documents']:.3f}), no-filter "
              f"{r['no_filter']:.3f}, nDCG@10 {json.dumps(r['ndcg'])}, {r['propose_ms_mean']} ms a proposal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
