"""Load-time rewrite of encoder graphs into ops that onnxruntime's CPU kernels run faster.

onnxruntime 1.31's fused ``LayerNormalization`` and ``SkipLayerNormalization`` CPU kernels take
~6 ns per element; the same normalisation spelt as primitive ops (Add, ReduceMean, Sub, Mul,
Sqrt, Div) takes under 2 ns, because those are vectorised by MLAS (measured on (16, 30, 384):
1.17 ms vs 0.35 ms). ``BiasGelu`` is likewise slower than Add + ``Gelu`` (1.34 vs 0.98 ms on
(16, 30, 1536)). For MiniLM with short queries that is a quarter of the encoder's time: the
int8 embedder drops from ~2.2 to ~1.6 ms CPU per query. The rewrite changes no weight; outputs
agree with the fused graph to float rounding, which int8 dynamic quantisation can amplify to a
cosine of ~0.994 (the same spread as int8 against fp32 itself).

The session must then be created with :data:`KEEP_UNFUSED` disabled, or onnxruntime fuses the
primitives straight back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# onnxruntime's graph transformers that would undo the rewrite.
KEEP_UNFUSED = ("LayerNormFusion", "SimplifiedLayerNormFusion", "SkipLayerNormFusion", "BiasGeluFusion")
_MS = "com.microsoft"


def unfused_model(model_path: Path) -> bytes | None:
    """The model at ``model_path`` with its layer norms and bias-GELUs as primitive ops, serialised;
    None when it has none to rewrite (the file is then loaded as it is)."""
    import onnx

    model = onnx.load(str(model_path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    used = _consumed_names(model.graph)
    nodes: list[Any] = []
    changed = 0
    for node in model.graph.node:
        replacement = _rewrite(node, model.graph, opset, used)
        if replacement is None:
            nodes.append(node)
        else:
            nodes.extend(replacement)
            changed += 1
    if not changed:
        return None
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    log.debug("%s: %d fused normalisation/GELU nodes spelt as primitive ops", model_path.name, changed)
    return bytes(model.SerializeToString())


def _consumed_names(graph: Any) -> set[str]:
    names = {name for node in graph.node for name in node.input}
    return names | {output.name for output in graph.output}


def _rewrite(node: Any, graph: Any, opset: int, used: set[str]) -> list[Any] | None:
    # Only the normalised output may be in use: the optional mean / inverse-std outputs are not rebuilt.
    if any(name and name in used for name in node.output[1:]):
        return None
    if node.op_type == "SkipLayerNormalization" and node.domain == _MS:
        inputs = list(node.input)
        summed = [inputs[0], inputs[1]] + ([inputs[4]] if len(inputs) > 4 and inputs[4] else [])
        return _layer_norm(node, graph, opset, summed, inputs[2], inputs[3] if len(inputs) > 3 else "")
    if node.op_type == "LayerNormalization" and node.domain in ("", "ai.onnx"):
        if _attribute(node, "axis", -1) != -1:
            return None
        inputs = list(node.input)
        return _layer_norm(node, graph, opset, [inputs[0]], inputs[1], inputs[2] if len(inputs) > 2 else "")
    if node.op_type == "BiasGelu" and node.domain == _MS:
        from onnx import helper

        biased = f"{node.output[0]}__biased"
        return [
            helper.make_node("Add", list(node.input), [biased]),
            helper.make_node("Gelu", [biased], [node.output[0]], domain=_MS),
        ]
    return None


def _layer_norm(node: Any, graph: Any, opset: int, summed: list[str], gamma: str, beta: str) -> list[Any]:
    """(x - mean) / sqrt(var + eps) * gamma + beta over the last axis, where x = sum(summed)."""
    from onnx import helper, numpy_helper

    p = f"{node.output[0]}__ln"
    epsilon = np.array(_attribute(node, "epsilon", 1e-5), np.float32)
    graph.initializer.append(numpy_helper.from_array(epsilon, p + "eps"))
    nodes = []
    x = summed[0]
    for i, term in enumerate(summed[1:]):
        nodes.append(helper.make_node("Add", [x, term], [f"{p}sum{i}"]))
        x = f"{p}sum{i}"
    if opset >= 18:  # ReduceMean's axes moved from an attribute to an input
        graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), p + "axes"))

    def mean(src: str, dst: str) -> Any:
        if opset >= 18:
            return helper.make_node("ReduceMean", [src, p + "axes"], [dst])
        return helper.make_node("ReduceMean", [src], [dst], axes=[-1])

    scaled = p + "scaled" if beta else node.output[0]
    nodes += [
        mean(x, p + "mean"),
        helper.make_node("Sub", [x, p + "mean"], [p + "centred"]),
        helper.make_node("Mul", [p + "centred", p + "centred"], [p + "square"]),
        mean(p + "square", p + "var"),
        helper.make_node("Add", [p + "var", p + "eps"], [p + "vareps"]),
        helper.make_node("Sqrt", [p + "vareps"], [p + "std"]),
        helper.make_node("Div", [p + "centred", p + "std"], [p + "norm"]),
        helper.make_node("Mul", [p + "norm", gamma], [scaled]),
    ]
    if beta:
        nodes.append(helper.make_node("Add", [scaled, beta], [node.output[0]]))
    return nodes


def _attribute(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default
