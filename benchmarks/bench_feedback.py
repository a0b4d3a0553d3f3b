"""Online learning from feedback on SciFact: simulated users vote, later searches are measured.

    python benchmarks/bench_feedback.py --data /tmp/bench-feedback     # SciFact ingested there if missing

Feedback split: ``--queries`` SciFact *train* queries (seeded sample). Three simulated users per query
(three voters, as three API keys would be) each see the top 10 hits of the plain search and vote on
every one: up when its document is judged relevant in the train qrels, down otherwise, each vote
flipped with probability 0, 0.2 or 0.4; "random" votes up or down by a coin. Then nDCG@10 is measured
on the same queries asked again (repeated), on LLM paraphrases of them (the local answer model,
greedy decoding, cached in benchmarks/feedback_paraphrases.json) and on SciFact *test* queries
(unrelated: a disjoint split nobody voted on), each against the no-feedback baseline. Each condition
starts from a copy of the same data directory, so votes never leak between conditions.

Also recorded: the voters' reliability that learn/reliability.py reads from their agreement, and the
query-embedding cosine of each query with its paraphrase and of each unrelated query with its nearest
voted query, the figures behind learn.similarity. Writes benchmarks/results/feedback.json.

"Random feedback changes nothing measurable" is read as: each query kind's delta lies within 2 paired
standard errors (``delta_se``) of 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from localrag.config import Settings, load_settings
from localrag.engine import LocalRAG
from localrag.eval.beir import BeirDataset, load_beir
from localrag.eval.metrics import ndcg_at_k, percentile
from localrag.eval.runner import eval_namespace, ingest_dataset, sample_ids
from localrag.types import ChatMessage, Prompt, SearchRequest

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "feedback.json"
PARAPHRASES = HERE / "feedback_paraphrases.json"
SCIFACT = Path("/work/shared/data/scifact")
USERS = 3
SHOWN = 10
SEED = 11
PARAPHRASE_SYSTEM = "You rewrite sentences. Reply with the rewritten sentence only."
PARAPHRASE_USER = ("Rewrite this scientific claim as a question a person would type into a search box, using "
                   "different words where you can but keeping its meaning.\n\nClaim: {query}\n\nQuestion:")
log = logging.getLogger("bench_feedback")


def settings_for(data: Path, feedback: bool, **learn: Any) -> Settings:
    return load_settings(data).with_overrides({
        "server": {"result_cache_size": 0},
        "learn": {"feedback": feedback, **learn},
        "rerank": {"enabled": False},
    })


def paraphrases(queries: dict[str, str], settings: Settings) -> dict[str, str]:
    """Paraphrases by the local answer model (greedy), read from and added to the cached file."""
    cached: dict[str, str] = json.loads(PARAPHRASES.read_text()) if PARAPHRASES.is_file() else {}
    missing = [q for q in queries if q not in cached]
    if missing:
        from localrag.generate.factory import build_provider

        generator = build_provider("llamacpp", settings.generate, settings.answer)
        for i, qid in enumerate(missing):
            prompt = Prompt((ChatMessage("system", PARAPHRASE_SYSTEM),
                             ChatMessage("user", PARAPHRASE_USER.format(query=queries[qid]))),
                            question=queries[qid], task="rewrite")
            text = generator.generate(prompt, max_tokens=64, temperature=0.0).text.strip().splitlines()
            cached[qid] = (text[0] if text else "").strip().strip('"').strip() or queries[qid]
            if i % 20 == 0:
                log.info("paraphrased %d/%d", i + 1, len(missing))
                PARAPHRASES.write_text(json.dumps(cached, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        PARAPHRASES.write_text(json.dumps(cached, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return {q: cached[q] for q in queries}


def ranked_docs(rag: LocalRAG, namespace: str, text: str) -> tuple[list[str], list[Any]]:
    hits = rag.retrieve([SearchRequest(text, 50, "hybrid", namespace)])[0].hits
    return list(dict.fromkeys(h.doc_id for h in hits))[:10], list(hits)


def mean_ndcg(rag: LocalRAG, namespace: str, queries: dict[str, str],
              qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    return {qid: ndcg_at_k(ranked_docs(rag, namespace, text)[0], qrels[qid], 10) for qid, text in queries.items()}


def give_feedback(rag: LocalRAG, namespace: str, queries: dict[str, str], qrels: dict[str, dict[str, int]],
                  noise: float | None, seed: int) -> int:
    """Each simulated user votes on the plain search's top SHOWN hits; ``noise`` None: random votes."""
    rng = random.Random(seed)
    votes = 0
    for qid, text in queries.items():
        hits = rag.retrieve([SearchRequest(text, SHOWN, "hybrid", namespace)])[0].hits
        for user in range(USERS):
            for hit in hits:
                relevant = qrels[qid].get(hit.doc_id, 0) > 0
                if noise is None:
                    relevant = rng.random() < 0.5
                elif rng.random() < noise:
                    relevant = not relevant
                rag.feedback(text, hit.chunk_id, relevant, namespace, source=f"user{user}")
                votes += 1
    return votes


def summary(per_query: dict[str, float], baseline: dict[str, float]) -> dict[str, Any]:
    diffs = np.array([per_query[q] - baseline[q] for q in baseline])
    return {
        "ndcg@10": round(float(np.mean(list(per_query.values()))), 4),
        "delta": round(float(diffs.mean()), 4),
        # paired standard error of the mean difference: "nothing measurable" means |delta| within ~2 of these
        "delta_se": round(float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0, 4),
        "queries_better": int((diffs > 1e-9).sum()),
        "queries_worse": int((diffs < -1e-9).sum()),
    }


def similarity_figures(rag: LocalRAG, fb: dict[str, str], para: dict[str, str],
                       unrelated: dict[str, str]) -> dict[str, Any]:
    texts = list(fb.values()) + list(para.values()) + list(unrelated.values())
    vectors = rag.retriever._query_vectors(texts)
    pairs = [float(vectors[fb[q]] @ vectors[para[q]]) for q in fb]
    voted = np.stack([vectors[t] for t in fb.values()])
    nearest = [float((voted @ vectors[t]).max()) for t in unrelated.values()]

    def pct(values: list[float]) -> dict[str, float]:
        return {f"p{p}": round(percentile(values, p), 3) for p in (5, 25, 50, 75, 95)} | {"max": round(max(values), 3)}

    return {"query_vs_its_paraphrase": pct(pairs), "unrelated_vs_nearest_voted_query": pct(nearest)}


# --tune: learn.weight, once voter reliability (learn/reliability.py) discounts chance agreement. The rule,
# fixed before the run: the smallest weight whose dev gains at 20% noise reach +0.06 on repeated and
# paraphrased queries (the +0.05 target plus a margin for split-to-split variance) while random votes
# stay within 2 standard errors of 0 and no query kind loses more than 0.005 at 40% noise or unrelated.
GRID = [{"weight": w} for w in (0.3, 0.4, 0.5, 0.6)]
RULE = ("smallest weight whose 20%-noise gains reach +0.06 on repeated and paraphrased queries, with random votes "
        "within 2 standard errors of 0 and no query kind below -0.005 at 40% noise or on unrelated queries")


def choose(conditions: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """The GRID entry RULE picks from a --tune run's rows (None when none qualifies)."""
    kinds = ("repeated", "paraphrased", "unrelated")

    def ok(i: int) -> bool:
        noisy, worst, coin = conditions["noise 20%"][i], conditions["noise 40%"][i], conditions["random"][i]
        return (all(noisy[kind]["delta"] >= 0.06 for kind in kinds[:2])
                and all(abs(coin[k]["delta"]) <= 2 * coin[k]["delta_se"] for k in kinds)
                and all(worst[k]["delta"] >= -0.005 for k in kinds) and noisy["unrelated"]["delta"] >= -0.005)
    passing = [GRID[i] for i in range(len(GRID)) if ok(i)]
    return min(passing, key=lambda c: c["weight"]) if passing else None


CONDITIONS: tuple[tuple[str, float | None], ...] = (
    ("noise 0%", 0.0), ("noise 20%", 0.2), ("noise 40%", 0.4), ("random", None))


def run(data: Path, namespace: str, sets: dict[str, dict[str, str]], qrels: dict[str, dict[str, int]],
        conditions: Sequence[tuple[str, float | None]], configs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Baseline, then per condition: a copy of ``data``, the votes, and nDCG@10 under each learn config."""
    with LocalRAG(data, settings=settings_for(data, False)) as rag:
        baseline = {name: mean_ndcg(rag, namespace, queries, qrels) for name, queries in sets.items()}
    out: dict[str, Any] = {"baseline": {name: round(float(np.mean(list(v.values()))), 4)
                                        for name, v in baseline.items()}, "conditions": {}}
    log.info("baseline %s", out["baseline"])
    for label, noise in conditions:
        copy = data.with_name(data.name + "-votes")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(data, copy)
        try:
            with LocalRAG(copy, settings=settings_for(copy, True)) as rag:
                votes = give_feedback(rag, namespace, sets["repeated"], qrels, noise, SEED)
            rows = []
            for config in configs:
                with LocalRAG(copy, settings=settings_for(copy, True, **config)) as rag:
                    reliability = round(rag.learner.votes(namespace).reliability, 3)
                    row: dict[str, Any] = {"votes": votes, "voter_reliability": reliability,
                                           **({"learn": config} if config else {})}
                    for name, queries in sets.items():
                        row[name] = summary(mean_ndcg(rag, namespace, queries, qrels), baseline[name])
                rows.append(row)
                log.info("%s %s: %s", label, config, {k: v["delta"] for k, v in row.items() if k in sets})
        finally:
            shutil.rmtree(copy, ignore_errors=True)
        out["conditions"][label] = rows[0] if len(rows) == 1 else rows
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-feedback"), help="SciFact data directory")
    parser.add_argument("--queries", type=int, default=200, help="feedback queries drawn from SciFact train")
    parser.add_argument("--unrelated", type=int, default=300, help="unrelated queries drawn from SciFact test")
    parser.add_argument("--tune", type=int, default=0,
                        help="instead: try GRID on a dev split, the next N train queries, with unrelated queries "
                             "from train too (no evaluation query), pick by RULE; writes results/feedback_tuning.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.time()
    train, test = load_beir(SCIFACT, "train"), load_beir(SCIFACT, "test")
    namespace = eval_namespace(train)
    with LocalRAG(args.data, settings=settings_for(args.data, False)) as rag:
        ingest_dataset(rag, BeirDataset(train.root, {}, {}))
    shuffled = sample_ids(list(train.queries), None, SEED)
    chosen = shuffled[args.queries: args.queries + args.tune] if args.tune else shuffled[: args.queries]
    fb = {q: train.queries[q] for q in chosen}
    if args.tune:  # dev: unrelated queries from train too, so tuning sees none of the evaluation's queries
        start = args.queries + args.tune
        unrelated = {q: train.queries[q] for q in shuffled[start: start + args.unrelated]}
    else:
        unrelated = {q: test.queries[q] for q in sample_ids(list(test.queries), args.unrelated, SEED)}
    para = paraphrases(fb, load_settings(args.data))
    qrels = {**train.qrels, **test.qrels}
    sets = {"repeated": fb, "paraphrased": para, "unrelated": unrelated}
    split = (f"train queries {args.queries}-{args.queries + len(fb)} of a seed-{SEED} shuffle (disjoint from the "
             f"benchmark's feedback split)" if args.tune else f"train, the first {len(fb)} of a seed-{SEED} shuffle")
    unrelated_split = (f"train queries {args.queries + len(fb)}-{args.queries + len(fb) + len(unrelated)} of the "
                       f"same shuffle (none of the evaluation's test queries)" if args.tune
                       else f"test, {len(unrelated)} queries")
    out: dict[str, Any] = {
        "dataset": "SciFact (BEIR)", "feedback_split": split,
        "unrelated_split": unrelated_split, "users_per_query": USERS, "votes_on": f"top {SHOWN}",
        "settings": {f.name: getattr(Settings().learn, f.name) for f in dataclasses.fields(Settings().learn)},
        "machine": "shared 2-core machine, other jobs running (quality figures are not timing-sensitive)",
    }
    with LocalRAG(args.data, settings=settings_for(args.data, False)) as rag:
        out["similarity"] = similarity_figures(rag, fb, para, unrelated)
    if args.tune:
        out |= run(args.data, namespace, sets, qrels, CONDITIONS[1:], GRID)
        out |= {"rule": RULE, "chosen": choose(out["conditions"])}
    else:
        out |= run(args.data, namespace, sets, qrels, CONDITIONS, [{}])
    out["seconds"] = round(time.time() - started, 1)
    target = RESULTS.with_name("feedback_tuning.json") if args.tune else RESULTS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
