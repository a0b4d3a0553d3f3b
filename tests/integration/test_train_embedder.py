"""Fine-tuning the embedder for real (a few steps of torch on SciFact claims), its int8 export, loading
it by path, and copying a data directory into a new one embedded with it (``reembed``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sample_data import scifact_cases

from localrag.config import Settings, load_settings
from localrag.embed.build import CONFIG_FILE, export_embedder, read_config
from localrag.embed.factory import embedder_dim, is_model_path, load_embedder
from localrag.embed.reembed import reembed
from localrag.embed.train import EmbedTrainSettings, train_embedder_model
from localrag.engine import LocalRAG
from localrag.errors import ConfigError, InvalidInputError, ModelNotFoundError
from localrag.rerank.build import base_model_folder
from localrag.rerank.mining import TrainGroup
from localrag.types import Document

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _margin(embedder: object, groups: list[TrainGroup]) -> float:
    """Mean (cosine to the relevant passage) - (mean cosine to the negatives) over the groups."""
    margins = []
    for group in groups:
        query = embedder.embed_query(group.query)  # type: ignore[attr-defined]
        passages = embedder.embed_documents([group.positive, *group.negatives])  # type: ignore[attr-defined]
        scores = passages @ query
        margins.append(float(scores[0] - scores[1:].mean()))
    return float(np.mean(margins))


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TrainGroup]]:
    groups = [TrainGroup(claim, good, tuple(bad)) for claim, good, bad in scifact_cases(8)]
    settings = EmbedTrainSettings(max_tokens=64, query_tokens=32, negatives=2, groups_per_step=4, epochs=3,
                                  learning_rate=1e-4, threads=1)
    model, record = train_embedder_model(groups, base_model_folder(), settings)
    assert record["steps"] == 6 and record["groups"] == 8
    folder = tmp_path_factory.mktemp("embedder")
    export_embedder(model, base_model_folder(), folder, record=record)
    return folder, groups


def test_export_is_checked_and_described(trained_folder: tuple[Path, list[TrainGroup]]) -> None:
    folder, _ = trained_folder
    config = read_config(folder)
    assert config["dim"] == 384 and config["vector_space"].startswith("trained-embedder:")
    assert config["export_check"]["fp32_cosine"][1] >= 0.999
    assert config["export_check"]["int8_cosine"][0] >= 0.99
    assert json.loads((folder / CONFIG_FILE).read_text())["sha256"] == config["sha256"]
    assert "learning_rate" in (folder / "MODEL_CARD.md").read_text()
    assert not (folder / ".staging").exists()


def test_training_moves_queries_towards_their_passages(trained_folder: tuple[Path, list[TrainGroup]]) -> None:
    folder, groups = trained_folder
    base = load_embedder(Settings().embed.model, threads=1, batch_size=8, max_tokens=64)
    tuned = load_embedder(str(folder), threads=1, batch_size=8, max_tokens=64)
    assert tuned.dim == base.dim == embedder_dim(str(folder)) == 384
    assert _margin(tuned, groups) > _margin(base, groups) + 0.01


def test_a_trained_folder_is_an_embed_model(tmp_path: Path, trained_folder: tuple[Path, list[TrainGroup]]) -> None:
    folder, groups = trained_folder
    assert is_model_path(str(folder)) and not is_model_path("minilm-l6-onnx-int8")
    settings = Settings().with_overrides({"embed": {"model": str(folder), "threads": 1}})
    docs = [Document(f"d{i}", g.positive, title=f"doc {i}") for i, g in enumerate(groups)]
    with LocalRAG(tmp_path / "data", settings=settings) as rag:
        rag.add(docs)
        hits = rag.search(groups[0].query, k=3, mode="dense")
        assert hits[0].doc_id == "d0"
        assert rag.store.get_meta("vector_space") == read_config(folder)["vector_space"]
    # A store indexed by the default model refuses the trained one (mixed vectors).
    with LocalRAG(tmp_path / "plain", settings=Settings().with_overrides({"embed": {"threads": 1}})) as rag:
        rag.add(docs[:2])
    with pytest.raises(ConfigError, match="indexed with embedding model"), LocalRAG(tmp_path / "plain",
                                                                                  settings=settings) as rag:
        rag.search("anything", k=1, mode="dense")


def test_reembed_copies_every_namespace_and_leaves_the_source(
    tmp_path: Path, trained_folder: tuple[Path, list[TrainGroup]]
) -> None:
    folder, groups = trained_folder
    source, target = tmp_path / "old", tmp_path / "new"
    source.mkdir()
    (source / "localrag.toml").write_text('[search]\nalpha = 0.3\n\n[embed]\nthreads = 1\n', encoding="utf-8")
    with LocalRAG(source) as rag:
        rag.add([Document(f"a{i}", g.positive, title=f"A {i}", metadata={"n": i}) for i, g in enumerate(groups[:4])])
        rag.add([Document("b0", groups[5].positive, title="B")], namespace="other")
        before = rag.store.generation()
    result = reembed(source, target, str(folder))
    assert result["documents"] == {"": 4, "other": 1} and result["chunks"] >= 5
    settings = load_settings(target)
    assert settings.embed.model == str(folder.resolve()) and settings.search.alpha == 0.3
    with LocalRAG(target) as rag:
        assert rag.get_document("a2").metadata == {"n": 2}
        assert rag.get_document("a2").text == groups[2].positive
        assert rag.search(groups[5].query, k=1, namespace="other", mode="dense")[0].doc_id == "b0"
    with LocalRAG(source) as rag:
        assert rag.store.generation() == before and rag.stats()["documents"] == 5
    with pytest.raises(InvalidInputError, match="not empty"):
        reembed(source, target, str(folder))


def test_a_folder_that_is_not_a_trained_embedder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="train-embedder"):
        read_config(tmp_path)
    with pytest.raises(ModelNotFoundError, match="train-embedder"):
        load_embedder(str(tmp_path), threads=1, batch_size=8, max_tokens=64)


def test_train_embedder_learns_from_feedback_and_titles(tmp_path: Path) -> None:
    from localrag.embed.build import train_embedder

    cases = scifact_cases(6)
    documents = [Document(f"d{i}", good.split("\n", 1)[1], title=good.split("\n", 1)[0])
                 for i, (_, good, _) in enumerate(cases)]
    documents += [Document(f"n{i}{j}", bad.split("\n", 1)[1], title=bad.split("\n", 1)[0])
                  for i, (_, _, bads) in enumerate(cases) for j, bad in enumerate(bads)]
    with LocalRAG(tmp_path / "data", settings=Settings().with_overrides({"embed": {"threads": 1}})) as rag:
        rag.add(documents)
        for i, (claim, _, _) in enumerate(cases[:3]):
            chunk = rag.search(claim, k=50)  # every chunk of this small corpus
            rag.feedback(claim, next(h.chunk_id for h in chunk if h.doc_id == f"d{i}"), True)
        settings = EmbedTrainSettings(max_tokens=48, query_tokens=32, groups_per_step=4, threads=1)
        config = train_embedder(rag, tmp_path / "out", titles=5, settings=settings)
    training = config["training"]
    assert "stored feedback: 3 judgments, 3 groups" in training["data"]
    assert "corpus titles as queries (no labels): 5 groups" in training["data"]
    assert training["groups"] == 8 and training["steps"] == 2
    assert read_config(tmp_path / "out")["sha256"] == config["sha256"]


def test_reembed_command_line(tmp_path: Path, trained_folder: tuple[Path, list[TrainGroup]],
                              capsys: pytest.CaptureFixture[str]) -> None:
    from localrag.cli import main

    folder, groups = trained_folder
    source = tmp_path / "src"
    source.mkdir()
    (source / "localrag.toml").write_text("[embed]\nthreads = 1\n", encoding="utf-8")
    with LocalRAG(source) as rag:
        rag.add([Document(f"d{i}", g.positive) for i, g in enumerate(groups[:3])])
    assert main(["--data", str(source), "reembed", str(tmp_path / "dst"), "--model", str(folder)]) == 0
    assert "3 documents" in capsys.readouterr().out
    assert main(["--data", str(source), "reembed", str(tmp_path / "dst"), "--model", str(folder)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["--data", str(source), "reembed", str(tmp_path / "other"), "--model", str(tmp_path)]) == 2
    assert "train-embedder" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
