"""CLI commands of this package: ``train-reranker`` and ``feedback`` (registered by localrag.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from localrag.rerank.train import TrainSettings


def add_commands(sub: Any) -> None:
    defaults = TrainSettings()
    p = sub.add_parser("train-reranker", help="fine-tune the cross-encoder reranker on qrels and/or feedback")
    p.add_argument("--dataset", type=Path, help="a BEIR dataset whose qrels to train on (ingested if needed)")
    p.add_argument("--split", default="train", help="the qrels split to train on (never the one you report)")
    p.add_argument("--no-feedback", action="store_true", help="ignore the stored feedback")
    p.add_argument("--holdout", type=int, default=0,
                   help="keep this many judged queries (fixed seed) out of training, to choose k1/blend on")
    p.add_argument("--out", type=Path, help="output folder (default: <data>/reranker, used by rerank.model=trained)")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the training groups")
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="of the encoder")
    p.add_argument("--negatives", type=int, default=defaults.negatives, help="hard negatives per group")
    p.add_argument("--mine-negatives", type=int, default=0,
                   help="negatives drawn per group when mining (training uses the first --negatives)")
    p.add_argument("--max-tokens", type=int, default=defaults.max_tokens,
                   help="tokens per (query, passage) pair while training")
    p.add_argument("--max-groups", type=int, default=defaults.max_groups, help="0: every group")
    p.add_argument("--threads", type=int, default=defaults.threads, help="torch threads (0: every core)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of sampling and initialisation")
    p.add_argument("--json", action="store_true", help="print the training report as JSON")
    p.set_defaults(handler=cmd_train_reranker)

    p = sub.add_parser("feedback", help="record whether a chunk is relevant to a query")
    p.add_argument("query", help="the query the judgment is about")
    p.add_argument("chunk_id", type=int, help="the judged chunk (`localrag search` prints chunk ids)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--relevant", dest="relevant", action="store_true", help="the chunk answers the query")
    group.add_argument("--not-relevant", dest="relevant", action="store_false",
                       help="the chunk does not answer the query")
    group.add_argument("--grade", type=float, help="a graded judgment in [-1, 1] (above 0: relevant)")
    p.add_argument("--namespace", default="", help="the chunk's namespace (default: '')")
    p.add_argument("--list", action="store_true", help="then print the stored judgments as JSON")
    p.set_defaults(handler=cmd_feedback)


def cmd_train_reranker(args: argparse.Namespace) -> int:
    from localrag.engine import LocalRAG
    from localrag.rerank.build import train_reranker
    from localrag.rerank.factory import DATA_DIR_NAME

    settings = TrainSettings(epochs=args.epochs, negatives=args.negatives, max_tokens=args.max_tokens,
                             max_groups=args.max_groups, threads=args.threads, seed=args.seed,
                             learning_rate=args.learning_rate)

    def progress(step: int, total: int, loss: float) -> None:
        if sys.stderr.isatty() or step == total or step % 10 == 0:
            print(f"\rstep {step}/{total} loss {loss:.3f}", end="" if step < total else "\n", file=sys.stderr)

    with LocalRAG(args.data) as rag:
        out = args.out or Path(args.data) / DATA_DIR_NAME
        config = train_reranker(rag, out, dataset=args.dataset, split=args.split, feedback=not args.no_feedback,
                                settings=settings, holdout=args.holdout, mine_negatives=args.mine_negatives,
                                progress=progress)
    if args.json:
        print(json.dumps(config, indent=2))
    else:
        training = config["training"]
        print(f"trained on {training['data']} in {training['train_seconds']} s; wrote {out}")
        print(f"int8 vs torch: {config['export_check']['int8']}")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from localrag.cli.common import require_data
    from localrag.engine import LocalRAG

    require_data(args)  # judgments are about stored chunks: a mistyped --data must not create a store
    with LocalRAG(args.data) as rag:
        relevant = None if args.grade is not None else args.relevant
        rag.feedback(args.query, args.chunk_id, relevant, namespace=args.namespace, grade=args.grade)
        if args.list:
            print(json.dumps(rag.feedback_items(args.namespace), indent=2))
        else:
            judged = f"grade {args.grade:g}" if args.grade is not None else (
                "relevant" if args.relevant else "not relevant")
            print(f"recorded: chunk {args.chunk_id} {judged}")
    return 0
