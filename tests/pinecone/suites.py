"""The pipeline's own search and answer suites (tests/unit/test_engine.py, test_answer_pipeline.py),
collected again into another test module so they run against that module's fixtures and environment
(for example with a hosted backend chosen by settings). Their own fixtures come along."""

from __future__ import annotations

import importlib.util
from collections.abc import Collection
from pathlib import Path
from typing import Any

SUITES = ("test_engine", "test_answer_pipeline")


def collect_pipeline_suites(into: dict[str, Any], tag: str, leave_out: Collection[str] = ()) -> None:
    """Put the suites' tests (but those named in ``leave_out``) and fixtures into the module ``into``."""
    for suite in SUITES:
        spec = importlib.util.spec_from_file_location(f"{suite}_on_{tag}",
                                                      Path(__file__).resolve().parents[1] / "unit" / f"{suite}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, value in vars(module).items():
            if (name.startswith("test_") and name not in leave_out) or \
                    type(value).__name__ == "FixtureFunctionDefinition":
                into[name] = value
