"""A small answers dataset for ``localrag eval --answers``, cut from SQuAD v1.1 dev
(../shared/data/squad-v1.1-dev), with questions the corpus cannot answer.

The corpus is every paragraph of ``--articles`` articles drawn with ``--seed``. Answerable questions
are drawn from those articles (evidence: the question's paragraph); unanswerable ones from the other
articles, whose paragraphs are left out, so nothing in the corpus holds their answer. Also writes
``short.toml``: the short-answer settings of bench_answers.py (one passage, answers over 6 words
condensed, the short-answer prompt), to compare with the default settings:

    python benchmarks/answer_eval_set.py --out /tmp/squad-qa
    localrag --data /tmp/qa-data eval --answers /tmp/squad-qa --config default \\
        --config short=/tmp/squad-qa/short.toml --set generate.threads=1 --out results.json --plot results.png
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_answers import DATA, SHORT_SYSTEM_TEMPLATE, SHORT_USER_TEMPLATE, read_jsonl  # noqa: E402


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string (escapes \n and quotes alike)


def build(out: Path, articles: int, answerable: int, unanswerable: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    corpus = read_jsonl(DATA / "corpus.jsonl")
    by_article: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in corpus:
        by_article[row["_id"].split("_")[0]].append(row)
    chosen = set(rng.sample(sorted(by_article, key=int), articles))
    queries = {row["_id"]: row["text"] for row in read_jsonl(DATA / "queries.jsonl")}
    gold = read_jsonl(DATA / "answers.jsonl")
    inside = [g for g in gold if g["corpus_id"].split("_")[0] in chosen]
    outside = [g for g in gold if g["corpus_id"].split("_")[0] not in chosen]
    picked = [(g, True) for g in rng.sample(inside, answerable)]
    picked += [(g, False) for g in rng.sample(outside, unanswerable)]
    rng.shuffle(picked)

    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for article in sorted(chosen, key=int):
            for row in by_article[article]:
                fh.write(json.dumps({"_id": row["_id"], "title": row["title"], "text": row["text"]},
                                    ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for g, _ in picked:
            fh.write(json.dumps({"_id": g["_id"], "text": queries[g["_id"]]}, ensure_ascii=False) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"{g['_id']}\t{g['corpus_id']}\t1\n" for g, ok in picked if ok)
    with (out / "answers.jsonl").open("w", encoding="utf-8") as fh:
        for g, ok in picked:
            row = {"query_id": g["_id"], "answers": g["answers"] if ok else []}
            if ok:
                row["evidence"] = [g["corpus_id"]]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "short.toml").write_text(
        "# the short-answer settings of benchmarks/bench_answers.py --k 1 --max-words 6\n[answer]\nk = 1\n"
        f"max_words = 6\nsystem_template = {_toml_string(SHORT_SYSTEM_TEMPLATE)}\n"
        f"user_template = {_toml_string(SHORT_USER_TEMPLATE)}\n", encoding="utf-8")
    titles = sorted({by_article[a][0]["title"] for a in chosen})
    return {"out": str(out), "articles": titles, "paragraphs": sum(len(by_article[a]) for a in chosen),
            "answerable": answerable, "unanswerable": unanswerable, "seed": seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the folder to write (BEIR layout)")
    parser.add_argument("--articles", type=int, default=8, help="articles whose paragraphs form the corpus")
    parser.add_argument("--answerable", type=int, default=24)
    parser.add_argument("--unanswerable", type=int, default=6)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    print(json.dumps(build(args.out, args.articles, args.answerable, args.unanswerable, args.seed), indent=2))


if __name__ == "__main__":
    main()
