"""The answer's JSON form (`/v1/ask`, `ask --json`) has exactly the fields the README documents."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from localrag.answer.format import answer_dict
from localrag.types import Answer

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_fields() -> dict[str, str]:
    """Python field -> JSON name, from the README's 'What an answer holds' table."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("#### What an answer holds") : text.index("#### How answers are built")]
    mapping: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z_]+)`", cells[0])
        json_names = names if cells[1] == "same" else re.findall(r"`([a-z_]+)`", cells[1])
        assert len(names) == len(json_names), line
        mapping.update(zip(names, json_names, strict=True))
    return mapping


def test_the_readme_documents_every_answer_field_under_its_json_name() -> None:
    documented = documented_fields()
    assert set(documented) == {f.name for f in fields(Answer)}
    produced = answer_dict(Answer(question="q", text="a [1]."))
    assert set(produced) == set(documented.values())
    assert produced["answer"] == "a [1]." and produced["timings_ms"] == {}
