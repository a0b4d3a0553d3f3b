"""A PNG comparing evaluated runs: nDCG@10 and p50 latency per run (matplotlib, a dev extra)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localrag.errors import DependencyMissingError


def plot_runs(modes: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Two horizontal bar panels sharing the run names: nDCG@10, and p50 latency (ms, log scale)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never a display
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise DependencyMissingError("plots need matplotlib: pip install matplotlib") from e
    names = list(modes)
    ndcg = [float(modes[n]["ndcg@10"]) for n in names]
    p50 = [max(float(modes[n]["latency_ms"]["p50"]), 0.01) for n in names]
    height = 1.2 + 0.35 * len(names)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    y = list(range(len(names)))
    left.barh(y, ndcg, color="#3b75af")
    left.set_yticks(y, names)
    left.invert_yaxis()
    left.set_xlabel("nDCG@10")
    left.set_xlim(0, max(1.0, max(ndcg, default=0.0)))
    for i, value in enumerate(ndcg):
        left.text(value, i, f" {value:.3f}", va="center", fontsize=8)
    right.barh(y, p50, color="#ef8636")
    right.set_xscale("log")
    right.set_xlabel("p50 latency per query (ms, log scale)")
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
