"""CLI command of this package: ``learn`` (registered by localrag.cli)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_commands(sub: Any) -> None:
    p = sub.add_parser("learn", help="consolidate stored feedback into the reranker (torch); adopted only if "
                                     "it measures better on held-out judged queries")
    p.add_argument("--holdout", type=float, default=0.25, help="share of judged queries held out to measure on")
    p.add_argument("--min-gain", type=float, default=0.01, help="nDCG@10 the candidate must gain to be adopted")
    p.add_argument("--no-adopt", action="store_true", help="measure only; leave the candidate aside")
    p.add_argument("--epochs", type=int, help="passes over the training groups (default: train-reranker's)")
    p.add_argument("--router", action="store_true",
                   help="instead: fit the search router (strategy auto) on the judged queries, saved to router.json "
                        "when it does not lose on the held-out ones (no torch)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_learn)


def cmd_learn(args: argparse.Namespace) -> int:
    from localrag.cli.common import require_data
    from localrag.engine import LocalRAG
    from localrag.learn.consolidate import consolidate
    from localrag.rerank.train import TrainSettings

    require_data(args)
    if args.router:
        return cmd_learn_router(args)
    settings = TrainSettings() if args.epochs is None else TrainSettings(epochs=args.epochs)
    with LocalRAG(args.data) as rag:
        report = consolidate(rag, holdout_share=args.holdout, min_gain=args.min_gain, settings=settings,
                             adopt=not args.no_adopt)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        verdict = "adopted" if report["adopted"] else "not adopted"
        print(f"held-out nDCG@10: current {report['current']['ndcg@10']}, candidate {report['candidate']['ndcg@10']}"
              f" on {report['held_out_queries']} queries: {verdict}")
    return 0


def cmd_learn_router(args: argparse.Namespace) -> int:
    from localrag.engine import LocalRAG
    from localrag.learn.router_train import train_from_feedback

    with LocalRAG(args.data) as rag:
        report = train_from_feedback(rag, holdout_share=args.holdout, adopt=not args.no_adopt)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        figures = report["held_out_ndcg@10"]
        verdict = "saved to router.json" if report["adopted"] else "not adopted"
        print(f"held-out nDCG@10: fixed {figures['default']}, router {figures['router']} on "
              f"{report['held_out_queries']} queries; table {report['table']}: {verdict}")
    return 0
