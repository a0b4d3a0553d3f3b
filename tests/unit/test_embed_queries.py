"""Batched query embedding: length groups (pure) and the int8 ONNX embedder's ``embed_queries``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from localrag.embed import onnx
from localrag.embed.onnx import length_groups


def _cost(lengths: list[int], groups: list[tuple[int, int]]) -> int:
    return sum(onnx._RUN_COST_TOKENS + (stop - start) * lengths[stop - 1] for start, stop in groups)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_length_groups_cover_in_order_and_beat_fixed_batches(seed: int) -> None:
    lengths = sorted(np.random.default_rng(seed).integers(3, 80, size=45).tolist())
    groups = length_groups(lengths, max_rows=16)
    assert groups[0][0] == 0 and groups[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(groups))  # contiguous, no gaps or overlaps
    assert all(0 < stop - start <= 16 for start, stop in groups)
    fixed = [(i, min(i + 16, len(lengths))) for i in range(0, len(lengths), 16)]
    one_each = [(i, i + 1) for i in range(len(lengths))]
    assert _cost(lengths, groups) <= min(_cost(lengths, fixed), _cost(lengths, one_each))


def test_length_groups_of_nothing_and_equal_lengths() -> None:
    assert length_groups([], 8) == []
    assert length_groups([12] * 5, 8) == [(0, 5)]  # no padding to save: one run


@pytest.mark.model
def test_embed_queries_keeps_order_and_stays_close_to_single_queries() -> None:
    from localrag.embed.factory import load_embedder

    embedder = load_embedder("minilm-l6-onnx-int8", threads=1, batch_size=32, max_tokens=256)
    texts = ["What causes the seasons on Earth?", "protein", "Does vitamin D supplementation reduce the risk "
             "of fractures in older adults living at home?", "gene expression in T cells", "sleep and glucose"]
    batched = embedder.embed_queries(texts)  # type: ignore[attr-defined]
    single = np.stack([embedder.embed_query(t) for t in texts])
    assert batched.shape == single.shape and batched.dtype == np.float32
    similarity = batched @ single.T
    assert list(similarity.argmax(axis=1)) == list(range(len(texts)))  # rows come back in input order
    assert similarity.diagonal().min() >= 0.98  # int8 scales per run: close, not bit-identical


@pytest.mark.model
def test_queries_run_on_a_one_thread_session_and_documents_on_the_configured_threads() -> None:
    from localrag.embed.export import ensure_onnx
    from localrag.models import get_spec, locate_folder

    spec = get_spec("minilm-l6-onnx-int8")
    embedder = onnx.OnnxEmbedder(ensure_onnx(spec), locate_folder(spec), threads=2)
    embedder.embed_query("a question")
    assert set(embedder._sessions) == {1}  # no document session made for queries
    passages = embedder.embed_documents(["a passage about proteins", "another about sleep"])
    assert set(embedder._sessions) == {1, 2}
    # the same text through either session lands on the same vector (int8: close, not bit-identical)
    assert float(embedder.embed_query("a passage about proteins") @ passages[0]) >= 0.98
