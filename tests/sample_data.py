"""Test data built or shipped with the tests, imported by test modules (``from sample_data import ...``).

It lives in its own module, not in a conftest: several test folders have a conftest.py, and the first one
imported takes the name ``conftest``, so ``from conftest import ...`` breaks with the collection order.
"""

from __future__ import annotations

from pathlib import Path

from localrag.config import Settings

TEST_DATA = Path(__file__).parent / "data"


def sample_texts(n: int) -> list[str]:
    """Built sentences for real embeddings: the same text on every machine, nothing read from outside."""
    import random

    rng = random.Random(0)
    subjects = [
        "the enzyme",
        "a protein",
        "the vaccine",
        "this gene",
        "the patient cohort",
        "a bacterium",
        "the cell line",
    ]
    verbs = ["inhibits", "activates", "reduces", "increases", "binds", "regulates", "predicts"]
    objects = ["tumour growth", "insulin release", "blood pressure", "immune response", "bone density", "viral load"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} in study {i}" for i in range(n)]


def scifact_cases(n: int = 4) -> list[tuple[str, str, list[str]]]:
    """(claim, its relevant abstract, three abstracts no test claim is judged against): ten SciFact
    test-split cases shipped in tests/data (see its README for the licence and how they were drawn)."""
    import json

    rows = [json.loads(line) for line in (TEST_DATA / "scifact_cases.jsonl").read_text(encoding="utf-8").splitlines()]
    assert n <= len(rows), f"tests/data ships {len(rows)} SciFact cases, {n} asked for"
    return [(row["claim"], row["relevant"], list(row["unjudged"])) for row in rows[:n]]


def small_model_settings(**answer: object) -> Settings:
    """Settings for answer tests on the real 135M llama.cpp model (SmolLM2, from its model package): one
    thread, short generations; ``answer`` overrides answer settings."""
    overrides: dict[str, object] = {
        "generate": {"model": "smollm2-135m", "threads": 1, "providers": "llamacpp", "max_tokens": 64},
    }
    if answer:
        overrides["answer"] = dict(answer)
    return Settings().with_overrides(overrides)
