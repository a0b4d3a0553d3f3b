"""Online feedback and query strategies with real components: the int8 MiniLM embedder, SQLite, FAISS,
SmolLM2-135M (one thread) writing the expansions, and the CLI as a process runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localrag.cli import main
from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.samples import SAMPLE_DIR
from localrag.types import SearchRequest

pytestmark = pytest.mark.model

QUERY = "How do honeybees tell each other where flowers are?"
PARAPHRASE = "How do bees communicate the location of flowers to each other?"
UNRELATED = "How do ants find food?"
STRATEGIES = ("none", "multi_query", "hyde", "decompose", "auto")


def settings() -> Settings:
    return Settings().with_overrides({
        "embed": {"threads": 1},
        "generate": {"model": "smollm2-135m", "threads": 1, "providers": "llamacpp", "max_tokens": 32},
    })


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Path:
    path = tmp_path_factory.mktemp("learn") / "data"
    with LocalRAG(path, settings=settings(), embedder=real_embedder) as rag:
        rag.add(SAMPLE_DIR, exclude=["LICENSE.txt"])
    return path


@pytest.fixture
def rag(data: Path, real_embedder: Any) -> Iterator[LocalRAG]:
    with LocalRAG(data, settings=settings(), embedder=real_embedder) as r:
        yield r


def cosine(rag: LocalRAG, a: str, b: str) -> float:
    # one text at a time, as a search embeds it (a padded batch gives int8 vectors that differ in the 3rd digit)
    return float(np.dot(rag.embedder.embed_query(a), rag.embedder.embed_query(b)))


def test_votes_reach_paraphrases_but_not_unrelated_queries_and_survive_a_restart(
    data: Path, real_embedder: Any, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "votes"
    shutil.copytree(data, copy)  # the module's directory stays vote-free for the other tests
    with LocalRAG(copy, settings=settings(), embedder=real_embedder) as rag:
        threshold = rag.settings.learn.similarity
        assert cosine(rag, QUERY, PARAPHRASE) >= threshold > cosine(rag, QUERY, UNRELATED)
        before = {q: rag.search(q, k=8) for q in (QUERY, PARAPHRASE, UNRELATED)}
        target = before[QUERY][-1]
        down = before[QUERY][1]
        for voter in ("k1", "k2", "k3"):
            rag.feedback(QUERY, target.chunk_id, True, source=voter)
            rag.feedback(QUERY, down.chunk_id, False, source=voter)
        after = {q: rag.search(q, k=8) for q in (QUERY, PARAPHRASE, UNRELATED)}
    for query in (QUERY, PARAPHRASE):
        ranks = [h.chunk_id for h in after[query]]
        old = [h.chunk_id for h in before[query]]
        assert ranks.index(target.chunk_id) < old.index(target.chunk_id), query
        assert ranks.index(down.chunk_id) >= old.index(down.chunk_id), query
        scores = {h.chunk_id: h.scores["feedback"] for h in after[query]}
        assert scores[target.chunk_id] > 0 > scores[down.chunk_id]
    assert [h.chunk_id for h in after[UNRELATED]] == [h.chunk_id for h in before[UNRELATED]]
    assert all("feedback" not in h.scores for h in after[UNRELATED])
    with LocalRAG(copy, settings=settings(), embedder=real_embedder) as reopened:
        again = reopened.search(PARAPHRASE, k=8)
    assert [h.chunk_id for h in again] == [h.chunk_id for h in after[PARAPHRASE]]


def test_search_retrieve_and_ask_take_every_strategy_and_say_which_ran(rag: LocalRAG) -> None:
    plain = rag.search(QUERY, k=3)
    for name in STRATEGIES:
        result = rag.retrieve([SearchRequest(QUERY, 3, strategy=name)])[0]
        expected = "none" if name in ("none", "auto") else name  # auto: a one-clause question runs plain
        assert result.strategy == expected, name
        assert result.hits and len(result.hits) <= 3
        if expected != "none":
            assert result.timings["expand"] > 0 and all("strategy" in h.scores for h in result.hits)
    assert [h.chunk_id for h in rag.search(QUERY, k=3, strategy="none")] == [h.chunk_id for h in plain]
    compound = "How do honeybees find flowers and why do tides rise twice a day?"
    assert rag.retrieve([SearchRequest(compound, 3, strategy="auto")])[0].strategy == "decompose"
    answer = rag.ask(QUERY, k=2, strategy="hyde", max_tokens=16)
    assert answer.strategy == "hyde" and answer.hits
    assert rag.ask(QUERY, k=2, max_tokens=16).strategy == "none"
    with pytest.raises(Exception, match="strategy must be one of"):
        rag.search(QUERY, strategy="telepathy")


def test_the_cli_takes_strategy_on_search_and_ask(data: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"EMBED__THREADS": "1", "GENERATE__MODEL": "smollm2-135m", "GENERATE__THREADS": "1",
                        "GENERATE__PROVIDERS": "llamacpp", "GENERATE__MAX_TOKENS": "16"}.items():
        monkeypatch.setenv(f"LOCALRAG_{name}", value)
    assert main(["--data", str(data), "search", QUERY, "--k", "2", "--strategy", "multi_query", "--json"]) == 0
    out = capsys.readouterr()
    assert len(json.loads(out.out)) == 2 and "strategy: multi_query" in out.err
    assert main(["--data", str(data), "ask", QUERY, "--k", "2", "--strategy", "decompose", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["strategy"] == "decompose"
    with pytest.raises(SystemExit):  # argparse refuses it, naming the choices
        main(["--data", str(data), "search", QUERY, "--strategy", "bogus"])
    assert "invalid choice: 'bogus'" in capsys.readouterr().err
