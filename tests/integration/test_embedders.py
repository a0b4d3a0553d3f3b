"""Both embedding paths on the real all-MiniLM-L6-v2 weights: shapes, agreement, ranking, imports.

The ONNX artefacts are exported once per session into a temporary cache (needs torch).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from localrag.embed import export
from localrag.embed.factory import clear_cache, load_embedder, prepare_models
from localrag.embed.tokenizer import ModelTokenizer
from localrag.models import get_spec, locate_folder
from localrag.protocols import Embedder, Tokenizer

pytestmark = pytest.mark.model

# Ordinary sentences of 5-60 words, none of them export.CHECK_SENTENCES.
SENTENCES = [
    "The tilt of the Earth's axis causes the seasons.",
    "A recipe for banana bread needs ripe bananas, flour, sugar and eggs.",
    "Gene expression in T cells changes after exposure to the antigen.",
    "The committee postponed its decision on the new budget until next spring.",
    "Use the --force flag to overwrite files that already exist in the target folder.",
    "Chronic sleep deprivation is associated with impaired glucose tolerance and weight gain.",
    "What are the side effects of long-term use of proton pump inhibitors?",
    "The river flooded the valley after three days of heavy rain, and hundreds of families "
    "were moved to schools and sports halls while volunteers filled sandbags along the banks. "
    "Officials said the water would recede slowly over the coming week.",
    " ".join(["Long passages are truncated to the model's token limit by both paths alike."] * 40),
]
ONE_WORD = ["hi", "yes", "no", "42", "protein"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    directory = tmp_path_factory.mktemp("localrag-cache")
    prepared = prepare_models(["minilm-l6-onnx", "minilm-l6-onnx-int8"], cache_dir=directory)
    assert [p.path for p in prepared] == [
        export.onnx_path("minilm-l6-onnx", directory),
        export.onnx_path("minilm-l6-onnx-int8", directory),
    ]
    return directory


@pytest.fixture(scope="session")
def embedders(cache_dir: Path) -> Iterator[dict[str, Embedder]]:
    loaded = {
        name: load_embedder(name, threads=1, batch_size=4, max_tokens=256, cache_dir=cache_dir)
        for name in ("minilm-l6", "minilm-l6-onnx", "minilm-l6-onnx-int8")
    }
    yield loaded
    clear_cache()


@pytest.fixture(scope="session")
def vectors(embedders: dict[str, Embedder]) -> dict[str, np.ndarray]:
    return {name: e.embed_documents(SENTENCES) for name, e in embedders.items()}


@pytest.mark.parametrize("name", ["minilm-l6", "minilm-l6-onnx", "minilm-l6-onnx-int8"])
def test_unit_norm_float32_of_the_model_dimension(
    embedders: dict[str, Embedder], vectors: dict[str, np.ndarray], name: str
) -> None:
    embedder = embedders[name]
    assert isinstance(embedder, Embedder) and isinstance(embedder.tokenizer, Tokenizer)
    assert embedder.dim == 384 and embedder.name == name
    assert getattr(embedder, "vector_space", None) == "all-MiniLM-L6-v2"
    got = vectors[name]
    assert got.shape == (len(SENTENCES), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query(SENTENCES[0])
    assert query.shape == (384,) and query.dtype == np.float32
    empty = embedder.embed_documents([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_fp32_onnx_matches_torch(vectors: dict[str, np.ndarray]) -> None:
    cosines = (vectors["minilm-l6-onnx"] * vectors["minilm-l6"]).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_int8_onnx_stays_close_to_torch(embedders: dict[str, Embedder], vectors: dict[str, np.ndarray]) -> None:
    # Each sentence in a run of its own. Dynamic int8 quantization scales activations per run (one scale
    # for the whole batch tensor), so in a batch a sentence's vector depends on its batch-mates: at
    # batch_size 4 these sentences reached 0.9901 here, alone 0.9920, and which sentences share a
    # batch follows from token counts. Alone, the figure depends on the model and the text only.
    int8 = embedders["minilm-l6-onnx-int8"]
    alone = np.concatenate([int8.embed_documents([sentence]) for sentence in SENTENCES])
    cosines = (alone * vectors["minilm-l6"]).sum(axis=1)
    assert cosines.min() >= 0.99, cosines


def test_int8_on_one_word_texts_is_looser_but_bounded(embedders: dict[str, Embedder]) -> None:
    # Per-tensor activation quantization costs most on 3-token inputs: a known, bounded loss.
    torch_vectors = embedders["minilm-l6"].embed_documents(ONE_WORD)
    int8 = embedders["minilm-l6-onnx-int8"].embed_documents(ONE_WORD)
    assert (int8 * torch_vectors).sum(axis=1).min() >= 0.95


def test_order_is_restored_after_length_sorting(embedders: dict[str, Embedder]) -> None:
    embedder = embedders["minilm-l6-onnx"]  # fp32: batching must not change the vectors
    texts = [SENTENCES[7], "short one", SENTENCES[2], SENTENCES[8], "x"]
    together = embedder.embed_documents(texts)
    alone = np.stack([embedder.embed_query(t) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)


@pytest.mark.parametrize("name", ["minilm-l6", "minilm-l6-onnx", "minilm-l6-onnx-int8"])
def test_relevant_passage_ranks_above_irrelevant(embedders: dict[str, Embedder], name: str) -> None:
    embedder = embedders[name]
    passages = embedder.embed_documents(
        [
            "Bake the cake at 180 degrees for forty minutes, then let it cool before icing.",
            "Seasons happen because Earth's axis is tilted, so each hemisphere gets more direct "
            "sunlight during part of the year.",
            "The football club signed a new striker on the last day of the transfer window.",
        ]
    )
    scores = passages @ embedder.embed_query("Why does the Earth have summer and winter?")
    assert int(np.argmax(scores)) == 1
    assert scores[1] - max(scores[0], scores[2]) > 0.2


def test_cached_export_is_reused_not_redone(cache_dir: Path) -> None:
    spec = get_spec("minilm-l6-onnx-int8")
    path = export.onnx_path(spec.name, cache_dir)
    before = path.stat().st_mtime_ns
    assert export.ensure_onnx(spec, cache_dir) == path
    assert path.stat().st_mtime_ns == before
    sidecar = export.read_sidecar(path)
    assert sidecar is not None and sidecar["cosine_mean"] >= 0.99


def test_onnx_path_never_imports_torch(cache_dir: Path) -> None:
    code = (
        "import sys\n"
        "from localrag.embed.factory import load_embedder\n"
        "for name in ('minilm-l6-onnx-int8', 'minilm-l6-onnx'):\n"
        "    e = load_embedder(name, threads=1, batch_size=8, max_tokens=256)\n"
        "    assert e.embed_documents(['one text', 'and another one']).shape == (2, 384)\n"
        "    assert e.embed_query('a query').shape == (384,)\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    env = {**os.environ, "LOCALRAG_CACHE_DIR": str(cache_dir)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- the tokenizer adapter ---------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer() -> ModelTokenizer:
    return ModelTokenizer(locate_folder(get_spec("minilm-l6")), max_tokens=256)


def test_offsets_cover_words_without_special_tokens(tokenizer: ModelTokenizer) -> None:
    text = "Héllo wörld! Naïve café, CO₂ 😀 emissions."
    offsets = tokenizer.token_offsets(text)
    pieces = [text[start:end] for start, end in offsets]
    assert pieces[:3] == ["Héllo", "wörld", "!"]
    assert "emissions" in pieces and pieces[-1] == "."
    assert all(0 <= s < e <= len(text) for s, e in offsets)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(offsets))
    assert tokenizer.token_offsets("") == [] and tokenizer.count_tokens("") == 0


def test_offsets_are_never_truncated(tokenizer: ModelTokenizer) -> None:
    text = "tokenization " * 3000  # "tokenization" is two word pieces
    offsets = tokenizer.token_offsets(text)
    assert len(offsets) == tokenizer.count_tokens(text) == 6000
    assert offsets[-1][1] == len(text.rstrip())


def test_model_batches_are_truncated_and_padded_to_the_longest(tokenizer: ModelTokenizer) -> None:
    batch = tokenizer.encode_batch(["short", "a bit longer text here", "word " * 1000])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(array.dtype == np.int64 and array.shape == (3, 256) for array in batch.values())
    assert batch["attention_mask"].sum(axis=1).tolist() == [3, 7, 256]
    assert batch["input_ids"][0, :3].tolist()[0] == 101 and batch["input_ids"][0, 2] == 102
    assert batch["input_ids"][0, 3:].max() == tokenizer.pad_id == 0
    small = tokenizer.encode_batch(["short", "a bit longer text here"])
    assert small["input_ids"].shape == (2, 7)
