"""Build the constructed grounding set: (claim, passage, label, kind) from SQuAD v1.1 dev.

Each question's gold answer sits in one sentence of its paragraph. From that sentence come:

- ``true_sentence`` (supported): the sentence itself;
- ``true_statement`` (supported): the question turned into a statement with the gold answer
  ("Who won X?" + "Asuka" → "Asuka won X."), for questions opening "Who"/"What" and a verb;
- ``negated`` (contradicted): the sentence with its first auxiliary or past-tense verb negated;
- ``number`` (contradicted): the sentence with one number or year changed;
- ``wrong_name_here`` (contradicted): the gold answer replaced by another name of the same paragraph;
- ``wrong_name_elsewhere`` (unsupported): the gold answer replaced by a name from another article;
- ``invented`` (unsupported): a sentence from another article, checked against this paragraph.

Usage: python benchmarks/grounding_set.py [--pairs 300] [--seed 0] [--out FILE]
(``--sample 40 --out tests/data/grounding_cases.jsonl`` writes the tests' sample.)
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localrag.answer.claims import names  # noqa: E402
from localrag.answer.sentences import sentences  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "squad-v1.1-dev"
_AUX = re.compile(r"\b(was|were|is|are|has|had|have|can|could|will|would|should|did|does|do)\b")
_PAST = re.compile(r"\b([a-z]{3,}ed)\b")
_NUM = re.compile(r"\b\d{1,4}\b")
_VERB_OPEN = re.compile(r"^(Who|What)\s+(?!did\b|does\b|do\b|is the name\b)([a-z]+)\b(.*)\?$")
_MAX_WORDS = 40


def read_squad(data: Path = DATA) -> tuple[dict[str, str], list[dict[str, Any]]]:
    corpus = {}
    with open(data / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            corpus[row["_id"]] = row["text"]
    questions = {}
    with open(data / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            questions[row["_id"]] = row["text"]
    items = []
    with open(data / "answers.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            items.append({"question": questions[row["_id"]], "corpus_id": row["corpus_id"],
                          "answer": row["answers"][0], "start": row["answer_starts"][0]})
    return corpus, items


def _negate(sentence: str) -> str | None:
    aux = _AUX.search(sentence)
    past = _PAST.search(sentence)
    if aux and (not past or aux.start() < past.start()):
        if aux.group(1) in ("did", "does", "do"):
            return None
        return sentence[: aux.end()] + " not" + sentence[aux.end() :]
    if past:
        word = past.group(1)
        stem = word[:-3] + "y" if word.endswith("ied") else word[:-1] if word.endswith("ued") else word[:-2]
        return sentence[: past.start()] + "did not " + stem + sentence[past.end() :]
    return None


def _change_number(sentence: str, rng: random.Random) -> str | None:
    found = list(_NUM.finditer(sentence))
    if not found:
        return None
    match = rng.choice(found)
    value = int(match.group())
    new = value + rng.choice([-1, 1]) * rng.randint(1, 12 if value > 1000 else 5)
    if new < 0 or new == value:
        new = value + 3
    return sentence[: match.start()] + str(new) + sentence[match.end() :]


def _statement(question: str, answer: str) -> str | None:
    match = _VERB_OPEN.match(question.strip())
    if not match or len(answer.split()) > 6:
        return None
    return f"{answer} {match.group(2)}{match.group(3)}."


def cases(pairs: int, seed: int = 0, data: Path = DATA) -> Iterator[dict[str, Any]]:
    """Up to ``pairs`` cases, about half supported, drawn in a fixed random order."""
    rng = random.Random(seed)
    corpus, items = read_squad(data)
    rng.shuffle(items)
    articles = sorted({cid.split("_")[0] for cid in corpus})
    by_article: dict[str, list[str]] = {}
    for cid in corpus:
        by_article.setdefault(cid.split("_")[0], []).append(cid)
    used_paragraphs: set[str] = set()
    counts: dict[str, int] = {}
    made = 0
    for item in items:
        if made >= pairs:
            return
        cid, passage, answer = item["corpus_id"], corpus[item["corpus_id"]], item["answer"]
        if cid in used_paragraphs:
            continue
        span = next(((s, e) for s, e in sentences(passage) if s <= item["start"] < e), None)
        if span is None:
            continue
        sentence = passage[span[0] : span[1]]
        if len(sentence.split()) > _MAX_WORDS or answer not in sentence:
            continue
        used_paragraphs.add(cid)
        article = cid.split("_")[0]
        other_cid = rng.choice(by_article[rng.choice([a for a in articles if a != article])])
        other = corpus[other_cid]
        base = {"passage": passage, "question": item["question"], "answer": answer, "corpus_id": cid}
        out: list[tuple[str, str, str]] = []
        if rng.random() < 0.5:
            out.append(("true_sentence", sentence, "supported"))
        statement = _statement(item["question"], answer)
        if statement:
            out.append(("true_statement", statement, "supported"))
        elif not out:
            out.append(("true_sentence", sentence, "supported"))
        corrupted: list[tuple[str, str, str]] = []
        negated = _negate(sentence)
        if negated:
            corrupted.append(("negated", negated, "contradicted"))
        changed = _change_number(sentence, rng)
        if changed:
            corrupted.append(("number", changed, "contradicted"))
        # a name of the sentence (the gold answer first, where it is one) swapped for another name
        target = answer if answer[:1].isupper() else next(iter(names(sentence)), "")
        if target and target in sentence:
            here = [n for n in names(passage) if n not in sentence and n.lower() not in target.lower()
                    and target.lower() not in n.lower() and len(n) > 3]
            if here:
                corrupted.append(("wrong_name_here", sentence.replace(target, rng.choice(here), 1), "contradicted"))
            there = [n for n in names(other) if n.lower() not in passage.lower() and len(n) > 3]
            if there:
                corrupted.append(("wrong_name_elsewhere", sentence.replace(target, rng.choice(there), 1),
                                  "unsupported"))
        invented = [other[s:e] for s, e in sentences(other) if 6 <= len(other[s:e].split()) <= _MAX_WORDS]
        if invented:
            corrupted.append(("invented", rng.choice(invented), "unsupported"))
        if corrupted:  # the kind made least so far, so that every kind is well represented
            least = min(counts.get(kind, 0) for kind, _, _ in corrupted)
            pick = rng.choice([c for c in corrupted if counts.get(c[0], 0) == least])
            counts[pick[0]] = counts.get(pick[0], 0) + 1
            out.append(pick)
        for kind, claim, label in out:
            if made < pairs:
                made += 1
                yield {**base, "kind": kind, "claim": claim, "label": label}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--sample", type=int, default=0, help="write this many cases, balanced by kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = list(cases(args.pairs, args.seed))
    if args.sample:
        kinds = sorted({r["kind"] for r in rows})
        per_kind = max(1, args.sample // len(kinds))
        rows = [r for k in kinds for r in [x for x in rows if x["kind"] == k][:per_kind]]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
