"""Which paths of a synced folder are walked and indexed: defaults, .localragignore, include/exclude."""

from __future__ import annotations

from pathlib import Path

from localrag.ingest.ignore import IgnoreRules, looks_minified


def test_defaults_ignore_file_and_negation(tmp_path: Path) -> None:
    (tmp_path / ".localragignore").write_text("# comment\n*.log\ndrafts/\n!dist/\n!keep.log\n")
    rules = IgnoreRules(tmp_path)
    assert not rules.enter("node_modules") and not rules.enter("a/b/.git") and not rules.enter("drafts")
    assert rules.enter("dist")  # the ignore file took dist/ back from the defaults
    assert rules.enter("docs") and rules.keep("docs/index.md")
    assert not rules.keep("app.min.js") and not rules.keep("x/y.js.map") and not rules.keep("package-lock.json")
    assert not rules.keep("run.log") and rules.keep("keep.log")  # the last matching rule wins
    assert not rules.reachable("node_modules/pkg/readme.md") and rules.reachable("dist/readme.md")
    assert not rules.folder_reachable("drafts/old") and rules.folder_reachable("docs/api")


def test_include_exclude_and_no_defaults(tmp_path: Path) -> None:
    rules = IgnoreRules(tmp_path, include=["*.min.js", "build/**"], exclude=["secret*"])
    assert rules.keep("vendor.min.js") and not rules.keep("notes.md")  # include takes files back, and only them
    assert rules.enter("build") and not rules.enter("secret-stuff")
    bare = IgnoreRules(tmp_path, use_defaults=False)
    assert bare.enter("node_modules") and bare.keep("app.min.js")


def test_minified_heuristic(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("var a = 1;\n" * 500)
    (tmp_path / "b.js").write_text("var a=1;" * 400)
    (tmp_path / "long.html").write_text("<p>" + "word " * 1000 + "</p>")
    assert not looks_minified(tmp_path / "a.js") and looks_minified(tmp_path / "b.js")
    assert not looks_minified(tmp_path / "long.html")  # generated pages keep paragraphs on one line: prose
