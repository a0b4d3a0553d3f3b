"""A small bundled sample corpus (original texts, CC0) for ``localrag demo`` and the README quickstart."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent / "corpus"
SAMPLE_QUESTION = "How do honeybees tell each other where to find flowers?"
