"""`localrag eval` runs side by side with --plot, and `localrag tune` from the CLI (default int8 embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_tune import make_dataset

from localrag.cli import main


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("beir") / "synth", docs=30)


def test_eval_compares_runs_and_writes_a_png(synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png, out = tmp_path / "plot.png", tmp_path / "eval.json"
    code = main(["--data", str(tmp_path / "data"), "eval", "--dataset", str(synth), "--mode", "keyword",
                 "--mode", "hybrid", "--mode", "hybrid-weighted", "--plot", str(png), "--out", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert all(name in table for name in ("keyword", "hybrid", "hybrid-weighted"))
    results = json.loads(out.read_text())
    assert list(results["modes"]) == ["keyword", "hybrid", "hybrid-weighted"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[0] > 100 and image.shape[1] > 400


def test_cli_tune_reports_the_test_delta_and_stores_settings(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["--data", str(data), "tune", "--dataset", str(synth), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["best_ndcg@10"] >= report["base_ndcg@10"]
    assert report["test"]["split"] == "test" and report["test"]["queries"] == 30
    stored = (data / "localrag.toml").read_text()
    assert f'fusion = "{report["best"]["fusion"]}"' in stored
    assert json.loads((data / "tuned.json").read_text())["best"] == report["best"]


def test_cli_tune_from_feedback_without_any_is_refused(synth: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["--data", str(data), "eval", "--dataset", str(synth), "--mode", "keyword"]) == 0
    assert main(["--data", str(data), "tune", "--dataset", str(synth), "--feedback"]) == 2
    assert "no stored feedback" in capsys.readouterr().err
