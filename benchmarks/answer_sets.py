"""Question sets for bench_answers.py, constructed from SQuAD v1.1 dev (../shared/data/squad-v1.1-dev).

All drawn with fixed seeds, so every run (and every system) sees the same questions:

- ``squad`` (factoid): the first questions of bench_answers' seed-13 sample of 200, the sample that
  measured F1 0.525 with the short-answer settings (results/answers_squad200_short.json), so the
  same questions can be compared;
- ``unanswerable``: questions of ``held_out`` articles whose paragraphs are left out of the corpus;
  nothing in the corpus holds their answers;
- ``multihop``: two questions about different paragraphs of one article, joined into one
  ("Who designed the bridge, and in what year did the ferry stop?"); gold: both answers, and both
  paragraphs as evidence (each hop needs its own passage);
- ``yesno``: a question followed by a candidate answer ("... ? Is it 1937?"): half the candidates are
  the gold answer ("yes"), half another answer of the same article of the same kind, number or not ("no");
- ``comparison``: two "When was X founded/built/born?" questions of different articles whose answers are
  different years, asked as one ("Which was founded first, X or Y?"); gold: the earlier one's name, and
  both paragraphs as evidence.

A dev split, disjoint from all of the above, for choosing thresholds (``dev_sets``; never reported as a
result): ``dev_held_out`` more articles left out of the corpus (their questions: ``dev_unanswerable``) and
SQuAD questions of the corpus outside the seed-13 sample of 200 and outside every set (``dev_answerable``).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from localrag.answer.questions import kind_of
from localrag.eval.answer_metrics import normalize_answer
from localrag.types import Document

_WH = re.compile(r"^(?:(?:in|on|at|by|from|to|for|during|of|with)\s+)?(?:who|whom|whose|when|where|which|what|"
                 r"how\s+(?:many|much|long|old))\b", re.IGNORECASE)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    import json

    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _short(answers: list[str], words: int) -> bool:
    return 0 < len(answers[0].split()) <= words


def _simple(question: str) -> bool:
    """A single wh-question: one sentence, no 'and' clause, typed factoid."""
    return bool(_WH.match(question)) and question.count("?") == 1 and kind_of(question) == "factoid" \
        and " and " not in question and "," not in question


_FOUNDED = re.compile(r"^(?:when|in what year|what year) (?:was|were) (?P<x>.+?) (?P<verb>founded|built|established|"
                      r"created|formed|completed|opened|born)\s*\?$", re.IGNORECASE)


def build_sets(data: Path, *, squad: int = 30, unanswerable: int = 20, multihop: int = 20, yesno: int = 20,
               comparison: int = 0, held_out: int = 5, dev_held_out: int = 5, dev: int = 0,
               seed: int = 13) -> tuple[list[Document], dict[str, list[dict[str, Any]]]]:
    """The corpus (held-out articles left out) and the question sets; with ``dev`` > 0 also the dev split's
    sets (``dev_answerable``: ``dev`` questions, ``dev_unanswerable``: ``dev`` // 2), which the caller keeps
    apart from the reported sets."""
    rows = _read_jsonl(data / "corpus.jsonl")
    title = {row["_id"]: row.get("title", "") for row in rows}
    queries = {row["_id"]: row["text"] for row in _read_jsonl(data / "queries.jsonl")}
    items = [{"id": row["_id"], "question": queries[row["_id"]], "paragraph": row["corpus_id"],
              "answers": row["answers"], "article": title[row["corpus_id"]]}
             for row in _read_jsonl(data / "answers.jsonl")]
    sample = random.Random(seed).sample(items, 200)  # bench_answers' SQuAD sample (same seed, same order)
    used_articles = {item["article"] for item in sample[:squad]}
    rng = random.Random(seed + 1)
    articles = sorted({item["article"] for item in items})
    held = set(rng.sample(sorted(set(articles) - used_articles), held_out))
    # the dev split's out-of-corpus articles: their own generator, so the reported sets stay as they were drawn
    dev_rng = random.Random(seed + 2)
    dev_held = set(dev_rng.sample(sorted(set(articles) - used_articles - held), dev_held_out))
    corpus = [Document(row["_id"], row["text"], title=row.get("title", "")) for row in rows if title[row["_id"]]
              not in held | dev_held]
    squad_set = [{**item, "set": "squad"} for item in sample[:squad] if item["article"] not in held]
    taken = {item["id"] for item in sample}

    pool = [item for item in items if item["article"] in held and _short(item["answers"], 6)]
    unanswerable_set = [{**item, "set": "unanswerable", "answers": []} for item in rng.sample(pool, unanswerable)]

    by_article: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if item["article"] not in held | dev_held and item["id"] not in taken and _simple(item["question"]) \
                and _short(item["answers"], 5):
            by_article[item["article"]].append(item)
    kept = sorted(by_article)
    multihop_set = []
    while len(multihop_set) < multihop:
        candidates = by_article[rng.choice(kept)]
        first = rng.choice(candidates)
        others = [c for c in candidates if c["paragraph"] != first["paragraph"] and c["id"] not in taken]
        if first["id"] in taken or not others:
            continue
        second = rng.choice(others)
        taken |= {first["id"], second["id"]}
        q1 = first["question"].strip().rstrip("?").strip()
        q2 = second["question"].strip()
        q2 = q2[0].lower() + q2[1:]
        multihop_set.append({"id": f"{first['id']}+{second['id']}", "set": "multihop",
                             "question": f"{q1}, and {q2}", "hops": [first, second],
                             "answers": [], "paragraphs": [first["paragraph"], second["paragraph"]]})

    yesno_set = []
    while len(yesno_set) < yesno:
        candidates = by_article[rng.choice(kept)]
        item = rng.choice(candidates)
        if item["id"] in taken:
            continue
        gold = item["answers"][0]
        if len(yesno_set) % 2 == 0:
            candidate, label = gold, "yes"
        else:
            golds = {w for g in item["answers"] for w in normalize_answer(g).split()}
            digit = any(c.isdigit() for c in gold)
            wrong = [c["answers"][0] for c in candidates if c["id"] != item["id"]
                     and any(ch.isdigit() for ch in c["answers"][0]) == digit
                     and not set(normalize_answer(c["answers"][0]).split()) & golds]
            if not wrong:
                continue
            candidate, label = rng.choice(wrong), "no"
        taken.add(item["id"])
        question = item["question"].strip()
        question = question if question.endswith("?") else question + "?"
        yesno_set.append({**item, "set": "yesno", "question": f"{question} Is it {candidate.strip().rstrip('.')}?",
                          "answers": [label], "candidate": candidate})
    sets = {"squad": squad_set, "multihop": multihop_set, "yesno": yesno_set, "unanswerable": unanswerable_set}
    if comparison:
        sets["comparison"] = _comparisons(items, held | dev_held, taken, comparison, random.Random(seed + 3))
    if dev:
        answerable = [item for item in items if item["article"] not in held | dev_held and item["id"] not in taken]
        sets["dev_answerable"] = [{**item, "set": "dev_answerable"} for item in dev_rng.sample(answerable, dev)]
        pool = [item for item in items if item["article"] in dev_held]
        sets["dev_unanswerable"] = [{**item, "set": "dev_unanswerable", "answers": []}
                                    for item in dev_rng.sample(pool, dev // 2)]
    return corpus, sets


def _comparisons(items: list[dict[str, Any]], held: set[str], taken: set[str], n: int,
                 rng: random.Random) -> list[dict[str, Any]]:
    """"Which was founded first, X or Y?" from two dated questions of different articles (``taken`` grows)."""
    dated = []
    for item in items:
        match = _FOUNDED.match(item["question"].strip())
        year = item["answers"][0].strip()
        subject = match.group("x") if match else ""
        # a named subject ("the University of Warsaw"), not "the school" or "he"
        if match and re.fullmatch(r"\d{4}", year) and item["article"] not in held and item["id"] not in taken \
                and any(w[:1].isupper() for w in subject.split()) and "'" not in subject and " which " not in subject:
            dated.append({**item, "subject": subject, "verb": match.group("verb").lower(), "year": int(year)})
    rng.shuffle(dated)
    out: list[dict[str, Any]] = []
    used: set[str] = set()
    for first in dated:
        if len(out) >= n:
            break
        for second in dated:
            if first["id"] in used or second["id"] in used or first["article"] == second["article"] \
                    or first["year"] == second["year"] or (first["verb"] == "born") != (second["verb"] == "born") \
                    or normalize_answer(first["subject"]) == normalize_answer(second["subject"]):
                continue
            used |= {first["id"], second["id"]}
            taken |= {first["id"], second["id"]}
            born = first["verb"] == "born"
            verb = "born" if born else (first["verb"] if first["verb"] == second["verb"] else "founded")
            lead = "Who was" if born else "Which was"
            winner = min((first, second), key=lambda item: item["year"])
            out.append({"id": f"{first['id']}<>{second['id']}", "set": "comparison",
                        "question": f"{lead} {verb} first, {first['subject']} or {second['subject']}?",
                        "hops": [first, second], "answers": [winner["subject"]],
                        "paragraphs": [first["paragraph"], second["paragraph"]]})
            break
    return out
