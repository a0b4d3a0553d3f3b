"""The load-time rewrite of skip-layer-norms and bias-GELUs (embed/graph.py) on small graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from localrag.embed.graph import unfused_model
from localrag.embed.onnx import make_session
from localrag.errors import ModelNotFoundError

H = 16
FUSED = {"SkipLayerNormalization", "BiasGelu"}


def _save(tmp_path: Path, nodes: list, outputs: list[str], opset: int = 17) -> Path:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=H).astype(np.float32), name)
             for name in ("gamma", "beta", "bias", "gamma2", "beta2")]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", "L", H]) for n in ("x", "skip")]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outs, inits),
                              opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    return path


def _encoder_block() -> list:
    return [
        helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"], ["a"],
                         domain="com.microsoft", epsilon=1e-12),
        helper.make_node("BiasGelu", ["a", "bias"], ["b"], domain="com.microsoft"),
        helper.make_node("LayerNormalization", ["b", "gamma2", "beta2"], ["y"], axis=-1, epsilon=1e-5),
    ]


def _run(session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(o) for o in session.run(None, feed)]


@pytest.mark.parametrize("opset", [17, 18])
def test_rewritten_graph_has_no_fused_ops_and_gives_the_same_outputs(tmp_path: Path, opset: int) -> None:
    path = _save(tmp_path, _encoder_block(), ["y"], opset=opset)
    rewritten = unfused_model(path)
    assert rewritten is not None
    ops = {node.op_type for node in onnx.load_from_string(rewritten).graph.node}
    assert not ops & FUSED and {"Add", "LayerNormalization", "Gelu"} <= ops
    rng = np.random.default_rng(1)
    feed = {"x": rng.normal(size=(3, 5, H)).astype(np.float32), "skip": rng.normal(size=(3, 5, H)).astype(np.float32)}
    fused = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (expected,) = _run(fused, feed)
    (got,) = _run(make_session(path, 1), feed)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_what_cannot_or_need_not_be_split_is_kept(tmp_path: Path) -> None:
    # a skip-layer-norm whose mean output is used: that statistic is not rebuilt
    with_mean = [helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], ["y", "mean"],
                                  domain="com.microsoft")]
    assert unfused_model(_save(tmp_path, with_mean, ["y", "mean"])) is None
    # before opset 17 the ONNX domain has no LayerNormalization to split into
    plain = [helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], ["y"], domain="com.microsoft")]
    assert unfused_model(_save(tmp_path, plain, ["y"], opset=16)) is None
    # onnxruntime's own LayerNormalization kernel is fast: left as it is
    layer_norm = [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["y"], axis=-1)]
    assert unfused_model(_save(tmp_path, layer_norm, ["y"])) is None


def test_a_file_that_is_not_onnx_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00\x01 not a protobuf at all" * 10)
    with pytest.raises(ModelNotFoundError, match=r"broken\.onnx"):
        make_session(bad, 1)


def test_an_encoder_whose_output_width_is_dynamic_is_probed_for_its_dimension(tmp_path: Path) -> None:
    from localrag.embed.onnx import OnnxEmbedder
    from localrag.models import get_spec, locate_folder

    table = numpy_helper.from_array(np.random.default_rng(2).normal(size=(30_522, 4)).astype(np.float32), "table")
    ones = numpy_helper.from_array(np.array([1, 1], np.int64), "ones")
    nodes = [  # width = 4 x max(attention_mask): known only at run time, so the session reports no width
        helper.make_node("Gather", ["table", "input_ids"], ["rows"]),
        helper.make_node("ReduceMax", ["attention_mask"], ["top"], keepdims=0),
        helper.make_node("Reshape", ["top", "one"], ["top1"]),
        helper.make_node("Concat", ["ones", "top1"], ["repeats"], axis=0),
        helper.make_node("Tile", ["rows", "repeats"], ["last_hidden_state"]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["B", "L"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["B", "L", "H"])],
        [table, ones, numpy_helper.from_array(np.array([1], np.int64), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(tmp_path / "model.onnx"))
    embedder = OnnxEmbedder(tmp_path / "model.onnx", locate_folder(get_spec("minilm-l6")))
    assert embedder.dim == 4
    assert embedder.embed_query("a short query").shape == (4,)
