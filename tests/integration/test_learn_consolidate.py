"""``localrag learn``: stored feedback consolidated into a trained reranker, measured on held-out judged
queries before it is adopted (real embedder, real torch training of the MiniLM cross-encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomllib
from sample_data import scifact_cases

from localrag.cli import main
from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.errors import InvalidInputError
from localrag.learn.consolidate import consolidate, judged_queries
from localrag.rerank.train import TrainSettings
from localrag.types import Document

pytestmark = pytest.mark.model


def judged_store(path: Path, embedder: Any, cases: int) -> None:
    """SciFact claims, their abstracts and unjudged ones; each claim's abstract voted relevant."""
    rows = scifact_cases(cases)
    docs = {f"rel{i}": text for i, (_, text, _) in enumerate(rows)}
    docs.update({f"other{i}-{j}": text for i, (_, _, others) in enumerate(rows) for j, text in enumerate(others)})
    with LocalRAG(path, settings=Settings().with_overrides({"embed": {"threads": 1}}), embedder=embedder) as rag:
        rag.add([Document(doc_id, text) for doc_id, text in docs.items()])
        for i, (claim, _, _) in enumerate(rows):
            hits = rag.search(claim, k=5)
            for hit in hits:
                rag.feedback(claim, hit.chunk_id, hit.doc_id == f"rel{i}")


def test_learn_needs_enough_judged_queries(tmp_path: Path, real_embedder: Any,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    judged_store(tmp_path / "d", real_embedder, 2)
    assert main(["--data", str(tmp_path / "d"), "learn"]) == 2
    assert "at least 4 queries" in capsys.readouterr().err


@pytest.mark.slow
def test_learn_trains_measures_on_held_out_queries_and_adopts(tmp_path: Path, real_embedder: Any) -> None:
    judged_store(tmp_path / "d", real_embedder, 8)
    # three epochs spread the scores enough for the int8 export check (Spearman >= 0.98 against torch)
    tiny = TrainSettings(max_tokens=48, negatives=3, groups_per_step=2, threads=1, epochs=3)
    with LocalRAG(tmp_path / "d", embedder=real_embedder) as rag:
        with pytest.raises(InvalidInputError, match="no training groups"):
            consolidate(rag, settings=tiny, holdout_share=2.0)  # every query held out: nothing to train on
        report = consolidate(rag, settings=tiny, min_gain=-1.0)  # any candidate passes: the adoption path
        judged = len(judged_queries(rag.feedback_items()))  # claims whose abstract was in the top 5 they saw
    assert judged >= 6 and report["held_out_queries"] == round(judged * 0.25)
    assert report["training"]["queries"] == judged - report["held_out_queries"]
    assert report["current"]["reranker"] == "none" and 0.0 < report["current"]["ndcg@10"] <= 1.0
    assert 0.0 < report["candidate"]["ndcg@10"] <= 1.0
    assert report["adopted"] and (tmp_path / "d" / "reranker" / "model.onnx").is_file()
    assert not (tmp_path / "d" / "reranker.candidate").exists()
    written = tomllib.loads((tmp_path / "d" / "localrag.toml").read_text())
    assert written["rerank"] == {"enabled": True, "model": "trained"}
