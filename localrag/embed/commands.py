"""CLI commands of this package: ``train-embedder`` and ``reembed`` (registered by localrag.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from localrag.embed.train import EmbedTrainSettings


def add_commands(sub: Any) -> None:
    defaults = EmbedTrainSettings()
    p = sub.add_parser("train-embedder", help="fine-tune the embedding model on qrels, feedback and corpus titles")
    p.add_argument("--dataset", type=Path, help="a BEIR dataset whose qrels to train on (ingested if needed)")
    p.add_argument("--split", default="train", help="the qrels split to train on (never the one you report)")
    p.add_argument("--no-feedback", action="store_true", help="ignore the stored feedback")
    p.add_argument("--titles", type=int, default=0,
                   help="also train on this many title -> text pairs of the dataset's corpus (without --dataset: "
                        "of the default namespace); no labels needed")
    p.add_argument("--holdout", type=int, default=0, help="keep this many judged queries (fixed seed) out")
    p.add_argument("--out", type=Path, help="output folder (default: <data>/embedder)")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the training groups")
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="of the encoder")
    p.add_argument("--negatives", type=int, default=defaults.negatives, help="hard negatives per group")
    p.add_argument("--max-tokens", type=int, default=defaults.max_tokens, help="passage tokens while training")
    p.add_argument("--max-groups", type=int, default=defaults.max_groups, help="0: every group")
    p.add_argument("--threads", type=int, default=defaults.threads, help="torch threads (0: every core)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of sampling and initialisation")
    p.add_argument("--json", action="store_true", help="print the training report as JSON")
    p.set_defaults(handler=cmd_train_embedder)

    p = sub.add_parser("reembed", help="copy the documents into a new data directory embedded with another model")
    p.add_argument("target", type=Path, help="the new (empty) data directory")
    p.add_argument("--model", required=True, help="a registry name, or a folder written by train-embedder")
    p.set_defaults(handler=cmd_reembed)


def _progress(step: int, total: int, loss: float) -> None:
    if sys.stderr.isatty() or step == total or step % 10 == 0:
        print(f"\rstep {step}/{total} loss {loss:.3f}", end="" if step < total else "\n", file=sys.stderr)


def cmd_train_embedder(args: argparse.Namespace) -> int:
    from localrag.embed.build import DATA_DIR_NAME, train_embedder
    from localrag.engine import LocalRAG

    settings = EmbedTrainSettings(epochs=args.epochs, negatives=args.negatives, max_tokens=args.max_tokens,
                                  max_groups=args.max_groups, threads=args.threads, seed=args.seed,
                                  learning_rate=args.learning_rate)
    out = args.out or Path(args.data) / DATA_DIR_NAME
    with LocalRAG(args.data) as rag:
        config = train_embedder(rag, out, dataset=args.dataset, split=args.split, feedback=not args.no_feedback,
                                titles=args.titles, settings=settings, holdout=args.holdout, progress=_progress)
    if args.json:
        print(json.dumps(config, indent=2))
    else:
        training = config["training"]
        print(f"trained on {training['data']} in {training['train_seconds']} s; wrote {out}")
        print(f"int8 cosine to torch (mean, min): {config['export_check']['int8_cosine']}")
        print(f"to use it: localrag --data {args.data} reembed NEW_DIR --model {out}")
    return 0


def cmd_reembed(args: argparse.Namespace) -> int:
    from localrag.embed.reembed import reembed

    result = reembed(Path(args.data), args.target, args.model,
                     progress=lambda ns, n: print(f"{ns or '(default)'}: {n} documents", file=sys.stderr))
    print(f"wrote {result['target']}: {sum(result['documents'].values())} documents, {result['chunks']} chunks, "
          f"embedded with {result['model']}")
    return 0
