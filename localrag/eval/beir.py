"""Reading BEIR-format datasets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localrag.errors import InvalidInputError, NotFoundError


@dataclass(frozen=True, slots=True)
class BeirDataset:
    root: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"

    @property
    def name(self) -> str:
        return self.root.resolve().name


def load_beir(root: Path, split: str = "test") -> BeirDataset:
    """Queries restricted to those judged in ``split``."""
    root = Path(root)
    for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / required).is_file():
            raise NotFoundError(f"{root} is not a BEIR dataset: {required} is missing")
    qrels = read_qrels(root, split)
    queries = {q: text for q, text in read_queries(root).items() if q in qrels}
    return BeirDataset(root, queries, {q: r for q, r in qrels.items() if q in queries})


def read_qrels(root: Path, split: str) -> dict[str, dict[str, int]]:
    """``qrels/<split>.tsv`` as {query id: {document id: grade}} (a header line is skipped)."""
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels" / f"{split}.tsv").open(encoding="utf-8", newline="") as fh:
        for line_no, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if line_no == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise InvalidInputError(f"{root}/qrels/{split}.tsv line {line_no}: expected 3 columns")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of each non-blank line; a line that is not a JSON object is refused."""
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InvalidInputError(f"{path} line {line_no}: {e}") from e
            if not isinstance(record, dict):
                raise InvalidInputError(f"{path} line {line_no}: expected a JSON object")
            yield line_no, record


def read_queries(root: Path) -> dict[str, str]:
    """Every query of ``queries.jsonl``: {id: text}."""
    try:
        return {str(r["_id"]): str(r["text"]) for _, r in read_jsonl(root / "queries.jsonl")}
    except KeyError as e:
        raise InvalidInputError(f"{root}/queries.jsonl: a record lacks {e}") from e
