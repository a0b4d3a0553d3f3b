"""`localrag eval --answers` end to end: a BEIR-layout folder generated here (five short documents,
four questions of which one the corpus cannot answer), the default embedder and SmolLM2-135M through
llama.cpp (one thread), two configurations side by side, the JSON, the table and the plot.

SmolLM2-135M is tiny: the test checks that every metric is measured and consistent, not its values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localrag.cli import main

pytestmark = pytest.mark.model

DOCUMENTS = {
    "bees": "Honeybees tell each other where flowers are with the waggle dance. The length of the waggle "
            "run tells the distance to the food.",
    "lighthouse": "The Bell Rock Lighthouse off the coast of Angus, Scotland, was built between 1807 and 1810 "
                  "by Robert Stevenson. It is the oldest surviving sea-washed lighthouse.",
    "tea": "Green tea is made from leaves of Camellia sinensis that are not withered and oxidised like "
           "black tea. It originated in China.",
    "volcano": "Mount Etna is an active volcano on the east coast of Sicily, Italy. It is the tallest active "
               "volcano in Europe outside the Caucasus.",
    "piano": "The piano was invented by Bartolomeo Cristofori in Florence around the year 1700.",
}
QUESTIONS = [  # id, question, gold answers, evidence document
    ("q1", "Who built the Bell Rock Lighthouse?", ["Robert Stevenson"], "lighthouse"),
    ("q2", "Who invented the piano?", ["Bartolomeo Cristofori"], "piano"),
    ("q3", "On which island is Mount Etna?", ["Sicily"], "volcano"),
    ("q4", "What is the boiling point of liquid nitrogen in kelvin?", [], ""),  # not in the corpus
]
METRICS = ("exact_match", "f1", "citation_precision", "citation_recall", "grounded_claim_rate",
           "abstention_precision", "abstention_recall", "abstention_rate", "similarity", "latency_ms",
           "first_token_ms")


def make_folder(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": d, "text": t}) + "\n" for d, t in DOCUMENTS.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t, *_ in QUESTIONS))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t1\n" for q, _, _, d in QUESTIONS if d))
    (root / "answers.jsonl").write_text("".join(
        json.dumps({"query_id": q, "answers": a}) + "\n" for q, _, a, _ in QUESTIONS))
    return root


def test_eval_answers_compares_configurations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path / "tiny-qa")
    short = tmp_path / "short.toml"
    short.write_text("[answer]\nk = 1\nmax_words = 6\n")
    out, png = tmp_path / "answers.json", tmp_path / "answers.png"
    code = main(["--data", str(tmp_path / "data"), "eval", "--answers", str(folder),
                 "--config", "k3", "--config", f"short={short}",
                 "--set", "generate.model=smollm2-135m", "--set", "generate.threads=1",
                 "--set", "generate.providers=llamacpp", "--set", "generate.max_tokens=48",
                 "--set", "k3:answer.k=3", "--out", str(out), "--plot", str(png)])
    assert code == 0
    table = capsys.readouterr().out
    assert "(4 questions, 1 unanswerable)" in table
    assert any(line.startswith("k3 ") for line in table.splitlines())
    assert any(line.startswith("short ") for line in table.splitlines())

    results = json.loads(out.read_text())
    assert results["questions"] == 4 and results["unanswerable"] == 1 and results["ingest"]["added"] == 5
    assert list(results["configs"]) == ["k3", "short"]
    assert results["configs"]["short"]["overrides"]["answer"] == {"k": 1, "max_words": 6}
    for name, run in results["configs"].items():
        assert set(METRICS) <= set(run), name
        assert run["questions"] == 4 and run["answerable"] == 3 and len(run["rows"]) == 4
        assert run["answered_by"] and all(key.startswith("llamacpp:") for key in run["answered_by"])
        rows = {r["query_id"]: r for r in run["rows"]}
        assert rows["q4"]["f1"] is None and rows["q4"]["similarity"] is None  # unanswerable: not scored
        for q in ("q1", "q2", "q3"):
            assert 0.0 <= rows[q]["f1"] <= 1.0 and rows[q]["citation_recall"] in (0.0, 1.0)
            assert -1.0 <= rows[q]["similarity"] <= 1.0001
            # an answer that was given and cites its evidence must be checked claim by claim
            if not rows[q]["abstained"] and rows[q]["citation_recall"] == 1.0:
                assert rows[q]["claims"] >= 1
        assert run["f1"] == pytest.approx(sum(rows[q]["f1"] for q in ("q1", "q2", "q3")) / 3, abs=1e-3)
        abstained = sum(r["abstained"] for r in run["rows"])
        assert run["abstention_rate"] == pytest.approx(abstained / 4)
        assert run["abstention_recall"] == (1.0 if rows["q4"]["abstained"] else 0.0)
        assert run["latency_ms"]["p95"] >= run["latency_ms"]["p50"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
