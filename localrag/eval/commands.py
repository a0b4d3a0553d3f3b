"""CLI commands of this package: ``eval`` (retrieval or answer runs side by side, optional plot) and ``tune``
(registered by localrag.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

RUN_NAMES = ("keyword", "dense", "hybrid", "hybrid-weighted")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate retrieval (--dataset) or answers (--answers) on a BEIR-format "
                       "dataset, runs side by side")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", type=Path,
                       help="a BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/); ingested if needed")
    which.add_argument("--answers", type=Path, metavar="DATASET",
                       help="evaluate answers: a BEIR folder with an answers.jsonl (docs/answer-eval.md)")
    p.add_argument("--config", action="append", default=[], metavar="NAME[=FILE.toml]",
                   help="--answers: a configuration to compare, its settings from FILE over the data "
                        "directory's (repeatable; default: one, 'default')")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="[NAME:]SECTION.FIELD=VALUE",
                   help="--answers: a setting of configuration NAME (of every one without NAME), "
                        "e.g. short:answer.k=1 (repeatable)")
    p.add_argument("--split", default="test", help="the qrels split to evaluate on (default: test)")
    p.add_argument("--mode", action="append", choices=RUN_NAMES,
                   help="a run to compare (repeatable; default keyword, dense, hybrid)")
    p.add_argument("--rerank", action="store_true", help="also run each mode with the configured reranker")
    p.add_argument("--strategy", action="append", choices=["multi-query", "hyde"], default=[],
                   help="also run hybrid search with this LLM query strategy (repeatable; uses generate.*)")
    p.add_argument("--queries", type=int, help="evaluate a fixed random subset of this many queries (questions)")
    p.add_argument("--seed", type=int, default=13, help="seed of the --queries subset")
    p.add_argument("--plot", type=Path, help="write a PNG of the scores and p50 latency per run")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--out", type=Path, help="also write the JSON results here")
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("tune", help="tune fusion, alpha, RRF k, candidates, BM25 k1/b and reranking")
    p.add_argument("--dataset", required=True, type=Path, help="a BEIR dataset (ingested if needed)")
    p.add_argument("--split", default="train", help="the split to tune on (never the one you report)")
    p.add_argument("--test-split", default="test", help="the split the delta is reported on; '' for none")
    p.add_argument("--feedback", action="store_true",
                   help="tune on the stored feedback judgments of the dataset's namespace instead of its qrels")
    p.add_argument("--rerank-queries", type=int, default=100, help="queries used to judge reranking on/off")
    p.add_argument("--dry-run", action="store_true", help="report only; do not store the settings")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=cmd_tune)


def _runs(args: argparse.Namespace, rag: Any) -> list[Any]:
    from localrag.eval.runner import Run

    names = args.mode or ["keyword", "dense", "hybrid"]
    runs = [Run(n, "hybrid", {"fusion": "weighted", "rerank": False}) if n == "hybrid-weighted"
            else Run(n, n, {"rerank": False}) for n in names]
    if args.rerank:
        runs += [Run(f"{r.name}+rerank", r.mode, {**r.overrides, "rerank": True}) for r in list(runs)]
    if args.strategy:
        from localrag.generate.factory import build_generator
        from localrag.query.cache import Completer, CompletionCache
        from localrag.query.strategies import build_strategies

        settings = rag.settings
        cache = CompletionCache(Path(rag.path) / "query-cache.sqlite3")
        completer = Completer(build_generator(settings.generate, settings.answer), cache)
        strategies = build_strategies(completer)
        runs += [Run(f"hybrid+{s}", "hybrid", {"rerank": False}, strategies[s]) for s in args.strategy]
    return runs


def cmd_eval(args: argparse.Namespace) -> int:
    from localrag.cli import _open, _progress_bar
    from localrag.errors import InvalidInputError

    if args.answers is not None:
        if args.mode or args.rerank or args.strategy:
            raise InvalidInputError("--mode, --rerank and --strategy evaluate retrieval; with --answers "
                                    "use --set, e.g. --set rerank.enabled=true")
        return cmd_eval_answers(args)
    if args.config or args.sets:
        raise InvalidInputError("--config and --set compare answer configurations: use them with --answers")
    from localrag.eval.beir import load_beir
    from localrag.eval.runner import evaluate, format_table, sample_ids

    query_ids = None
    if args.queries is not None:
        query_ids = sample_ids(list(load_beir(args.dataset, args.split).queries), args.queries, args.seed)
    update, close = _progress_bar("ingest corpus")
    with _open(args) as rag:
        try:
            results = evaluate(rag, args.dataset, split=args.split, runs=_runs(args, rag), progress=update,
                               query_ids=query_ids)
        finally:
            close()
    if query_ids is not None:
        results["subset"] = {"queries": len(query_ids), "seed": args.seed}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.plot:
        from localrag.eval.plot import plot_runs

        plot_runs(results["modes"], args.plot, f"{args.dataset.name} ({args.split}, {results['queries']} queries)")
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


ANSWER_PLOT_METRICS = (("f1", "token F1"), ("citation_recall", "citation recall"),
                       ("grounded_claim_rate", "grounded claims"), ("abstention_recall", "abstention recall"),
                       ("similarity", "similarity"))


def cmd_eval_answers(args: argparse.Namespace) -> int:
    from localrag.cli import _progress_bar
    from localrag.cli.common import counter
    from localrag.config import load_settings
    from localrag.eval.answers import evaluate_answers, format_answer_table, load_answers, parse_configs
    from localrag.eval.runner import sample_ids

    configs = parse_configs(args.config, args.sets)
    dataset = load_answers(args.answers, args.split)
    if args.queries is not None:
        keep = set(sample_ids([g.query_id for g in dataset.items], args.queries, args.seed))
        dataset = replace(dataset, items=tuple(g for g in dataset.items if g.query_id in keep))
    update, close = _progress_bar("ingest corpus")
    answered, close_count = counter(f"answers ({len(configs)} x {len(dataset.items)})")
    done = [0]

    def on_answer(config: str, query_id: str) -> None:
        done[0] += 1
        answered(done[0])

    try:
        results = evaluate_answers(Path(args.data), dataset, configs, load_settings(Path(args.data)),
                                   progress=update, on_answer=on_answer, split=args.split)
    finally:
        close()
        close_count()
    if args.queries is not None:
        results["subset"] = {"questions": len(dataset.items), "seed": args.seed}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if args.plot:
        from localrag.eval.plot import plot_runs

        plot_runs(results["configs"], args.plot, f"{args.answers.name} ({results['questions']} questions)",
                  metrics=ANSWER_PLOT_METRICS, latency_label="p50 latency per answer (ms, log scale)")
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print(format_answer_table(results))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from localrag.cli import _open
    from localrag.errors import InvalidInputError
    from localrag.eval.beir import load_beir
    from localrag.eval.runner import eval_namespace
    from localrag.eval.tune import TunePoint, judged_from_feedback, save_tuned, tune_dataset

    with _open(args) as rag:
        judged = None
        if args.feedback:
            namespace = eval_namespace(load_beir(args.dataset, args.split))
            judged = judged_from_feedback(rag.feedback_items(namespace))
            if not judged.queries:
                raise InvalidInputError(f"no stored feedback with a relevant chunk in namespace {namespace!r}")
        result, report = tune_dataset(rag, args.dataset, split=args.split, test_split=args.test_split or None,
                                      judged=judged, rerank_queries=args.rerank_queries)
        report["source"] = "feedback" if args.feedback else "qrels"
        stored = None
        if not args.dry_run:
            stored = save_tuned(rag.path, result.best, rag.settings, report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    base, best = TunePoint(**report["base"]), TunePoint(**report["best"])
    print(f"tuned on {report['queries']} {report['source']} queries of {args.dataset} ({args.split}), "
          f"{report['trials']} settings in {report['seconds']}s")
    print(f"  default {base}\n  nDCG@10 {report['base_ndcg@10']:.4f}")
    print(f"  tuned   {best}\n  nDCG@10 {report['best_ndcg@10']:.4f}")
    if report.get("rerank"):
        print(f"  reranking ({report['rerank']['queries']} queries): {report['rerank']['ndcg@10']}")
    if "test" in report:
        t = report["test"]
        print(f"  {t['split']} split ({t['queries']} queries): default {t['default_ndcg@10']:.4f} -> "
              f"tuned {t['tuned_ndcg@10']:.4f} (delta {t['delta']:+.4f})")
    print(f"stored in {stored}" if stored else "not stored (--dry-run)", file=sys.stderr)
    return 0
