"""The command line a newcomer meets: help for everything, and clear failures for the usual typos
(run in-process; nothing here loads a model)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from localrag.cli import build_parser, main


def _actions(parser: argparse.ArgumentParser, path: str = "localrag"):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", argparse.Action([], name, help=listed.get(name))
                yield from _actions(sub, f"{path} {name}")


def test_every_command_option_and_argument_has_help() -> None:
    missing = [f"{where}: {'/'.join(a.option_strings) or a.dest}" for where, a in _actions(build_parser())
               if not a.help or a.help == argparse.SUPPRESS or not a.help.strip()]
    assert missing == []
    commands = {where for where, _ in _actions(build_parser())}
    assert {"localrag backup", "localrag restore", "localrag export", "localrag import", "localrag recover",
            "localrag doctor", "localrag serve", "localrag ingest"} <= commands


@pytest.mark.parametrize("args", [
    ("search", "tides"), ("ask", "what causes tides?"), ("chat",), ("stats",), ("export", "out.jsonl"),
    ("backup", "copy"), ("delete", "--doc-id", "x"), ("reindex",), ("recover",),
    ("feedback", "tides", "1", "--relevant"),
])
def test_a_mistyped_data_directory_fails_and_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             args: tuple[str, ...]) -> None:
    typo = tmp_path / "my-dtaa"
    code = main(["--data", str(typo), *[str(tmp_path / a) if a in ("out.jsonl", "copy") else a for a in args]])
    err = capsys.readouterr().err
    assert code == 2 and "is not a localrag data directory" in err and "check --data" in err
    assert not typo.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_existing_directory_without_a_store_is_named_as_such(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path), "stats"]) == 2
    assert "holds no store.sqlite3" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_ingest_of_a_missing_path_fails_before_anything_is_written(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "notes.txt"
    real.write_text("a real note", encoding="utf-8")
    data = tmp_path / "data"
    code = main(["--data", str(data), "ingest", str(real), str(tmp_path / "nots")])
    err = capsys.readouterr().err
    assert code == 2 and "no such file or directory" in err and str(tmp_path / "nots") in err
    assert not data.exists()
