"""A PNG comparing evaluated runs: scores (nDCG@10, or answer metrics) and p50 latency per run
(matplotlib, a dev extra)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from localrag.errors import DependencyMissingError


def plot_runs(
    modes: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    title: str = "",
    metrics: Sequence[tuple[str, str]] = (("ndcg@10", "nDCG@10"),),
    latency_label: str = "p50 latency per query (ms, log scale)",
) -> Path:
    """Two horizontal bar panels sharing the run names: the scores in [0, 1] named by ``metrics``
    (key, label; grouped bars when several, a missing or None score drawn as 0 and labelled "-"),
    and p50 latency (ms, log scale)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never a display
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise DependencyMissingError("plots need matplotlib: pip install matplotlib") from e
    names = list(modes)
    p50 = [max(float(modes[n]["latency_ms"]["p50"]), 0.01) for n in names]
    bar = 0.8 / len(metrics)
    height = 1.2 + 0.35 * len(names) * max(1.0, len(metrics) * 0.6)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    y = list(range(len(names)))
    colours = ["#3b75af", "#519e3e", "#c53a32", "#8d69b8", "#84584e", "#d57dbe", "#7f7f7f", "#bcbc35"]
    top = 1.0
    for j, (key, label) in enumerate(metrics):
        raw = [modes[n].get(key) for n in names]
        values = [float(v) if v is not None else 0.0 for v in raw]
        top = max(top, *values)
        offset = (j - (len(metrics) - 1) / 2) * bar if len(metrics) > 1 else 0.0
        positions = [i + offset for i in y]
        left.barh(positions, values, height=bar if len(metrics) > 1 else 0.8,
                  color=colours[j % len(colours)], label=label)
        for pos, value, shown in zip(positions, values, raw, strict=True):
            left.text(value, pos, f" {value:.3f}" if shown is not None else " -", va="center",
                      fontsize=7 if len(metrics) > 1 else 8)
    left.set_yticks(y, names)
    left.invert_yaxis()
    # several metrics: room on the right of the bars for the legend, so it hides none of them
    left.set_xlim(0, top * (1.6 if len(metrics) > 1 else 1.0))
    if len(metrics) > 1:
        left.legend(fontsize=7, loc="center right")
        if top <= 1.0:
            left.set_xticks([i / 5 for i in range(6)])  # the scores' own range, not the legend's room
        left.set_xlabel("score")
    else:
        left.set_xlabel(metrics[0][1])
    right.barh(y, p50, color="#ef8636")
    right.set_xscale("log")
    right.set_xlabel(latency_label)
    for i, value in enumerate(p50):
        right.text(value, i, f" {value:.1f}", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out
