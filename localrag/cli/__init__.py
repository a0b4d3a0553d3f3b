"""The ``localrag`` command line. Bad input exits non-zero with a one-line reason.

One module per group of commands (core, answers, serve, data, library), plus the groups other packages
register (eval, rerank, embed); each command's handler is set with ``set_defaults(handler=...)``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from localrag.cli.common import EXIT_BAD_INPUT, open_rag, progress_bar
from localrag.errors import LocalRagError

log = logging.getLogger(__name__)

# Older names, imported by the command modules of other packages.
_open = open_rag
_progress_bar = progress_bar

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from localrag.cli import answers, core, data, library, serve
    from localrag.embed.commands import add_commands as add_embed_commands  # train-embedder, reembed
    from localrag.eval.commands import add_commands as add_eval_commands  # eval, tune
    from localrag.learn.commands import add_commands as add_learn_commands  # learn
    from localrag.rerank.commands import add_commands as add_rerank_commands  # train-reranker, feedback

    parser = argparse.ArgumentParser(prog="localrag", description="Offline-first RAG engine.")
    parser.add_argument("--data", default=os.environ.get("LOCALRAG_DATA", "./localrag-data"),
                        help="data directory (default: $LOCALRAG_DATA or ./localrag-data)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="run `localrag COMMAND --help` for its options")
    core.add_commands(sub)
    add_eval_commands(sub)
    serve.add_commands(sub)
    answers.add_commands(sub)
    add_rerank_commands(sub)
    add_learn_commands(sub)
    add_embed_commands(sub)
    data.add_commands(sub)
    library.add_commands(sub)  # sync, watch
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except LocalRagError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
