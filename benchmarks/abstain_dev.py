"""Choosing the abstention bar on a dev split (answer_sets.py ``dev_sets``), retrieval only, no generation.

For every dev question (``dev_answerable``: SQuAD questions of the corpus outside the seed-13 sample of 200
and every reported set; ``dev_unanswerable``: questions of the dev articles left out of the corpus), the best
passage the adaptive path would see, with and without spelling correction (answer/spelling.py), and its
features: dense cosine, idf-weighted coverage, relevance_of. Then, for a range of bars, the abstention
precision and recall each gives. Never run on the reported sets.

    python benchmarks/abstain_dev.py --data /tmp/bench-answers-sets --dev 200 [--out results/abstain_dev.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from answer_sets import build_sets  # noqa: E402

from localrag.answer.pipeline import AskOptions  # noqa: E402
from localrag.answer.relevance import _TOKENIZER, most_relevant, relevance_of  # noqa: E402
from localrag.answer.spelling import speller_for  # noqa: E402
from localrag.config import load_settings  # noqa: E402
from localrag.engine import LocalRAG  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "squad-v1.1-dev"


def coverage(rag: LocalRAG, question: str, text: str, namespace: str) -> float:
    words = list(dict.fromkeys(_TOKENIZER(question)))
    doc_freq = rag.doc_freq(namespace)
    if not words or doc_freq is None:
        return 1.0
    n, dfs = doc_freq(" ".join(words))
    weights = [math.log((n + 1) / (df + 0.5)) for df in dfs]
    held = set(_TOKENIZER(text))
    total = sum(weights)
    return sum(w for word, w in zip(words, weights, strict=False) if word in held) / total if total > 0 else 1.0


def features(rag: LocalRAG, question: str) -> dict[str, Any]:
    hits = rag.answers._retrieve([question], AskOptions(k=3))[0][0]
    if not hits:
        return {"relevance": 0.0, "dense": 0.0, "coverage": 0.0}
    first = relevance_of(rag, question, hits[0])
    hits, relevance = most_relevant(rag, question, hits)  # the passage the adaptive path answers from
    hit = hits[0]
    return {"relevance": relevance, "first_relevance": first, "dense": float(hit.scores.get("dense", 0.0)),
            "coverage": coverage(rag, question, hit.text, hit.namespace), "doc": hit.doc_id}


def sweep(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    out = []
    for bar in [x / 100 for x in range(30, 61, 2)]:
        abstain_u = sum(r[key] < bar for r in rows if not r["answerable"])
        abstain_a = sum(r[key] < bar for r in rows if r["answerable"])
        n_u = sum(not r["answerable"] for r in rows)
        out.append({"bar": bar, "recall": round(abstain_u / n_u, 3),
                    "precision": round(abstain_u / (abstain_u + abstain_a), 3) if abstain_u + abstain_a else None,
                    "false_abstentions": abstain_a})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the sets' data directory (bench_answers --data)")
    parser.add_argument("--dev", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    _, sets = build_sets(DATA, squad=30, unanswerable=40, multihop=16, yesno=16, comparison=8, dev=args.dev)
    settings = load_settings(env={}).with_overrides({"generate": {"providers": "llamacpp"}})
    rows = []
    with LocalRAG(args.data, settings=settings, read_only=True) as rag:
        doc_freq = rag.doc_freq("")
        speller = speller_for(rag)
        assert doc_freq is not None and speller is not None
        for item in sets["dev_answerable"] + sets["dev_unanswerable"]:
            question = item["question"]
            fixed, fixes = speller.correct(question, doc_freq)
            plain = features(rag, question)
            spelled = features(rag, fixed) if fixes else plain
            rows.append({"id": item["id"], "question": question, "corrected": fixed if fixes else "",
                         "answerable": item["set"] == "dev_answerable", "gold_doc": item["paragraph"],
                         **{f"plain_{k}": v for k, v in plain.items()}, **spelled})
    report = {"dev_answerable": len(sets["dev_answerable"]), "dev_unanswerable": len(sets["dev_unanswerable"]),
              "corrected": sum(bool(r["corrected"]) for r in rows),
              "sweep_plain": sweep(rows, "plain_first_relevance"),
              "sweep_spelled_first": sweep(rows, "first_relevance"),
              "sweep": sweep(rows, "relevance"),
              "rows": rows}
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
