from __future__ import annotations

from pathlib import Path

import pytest

from localrag.config import Settings, load_settings
from localrag.errors import ConfigError


def test_defaults_then_file_then_env(tmp_path: Path) -> None:
    (tmp_path / "localrag.toml").write_text('[search]\nrrf_k = 30\nmode = "keyword"\n[bm25]\nstem = false\n')
    settings = load_settings(tmp_path, env={"LOCALRAG_SEARCH__RRF_K": "10", "LOCALRAG_CHUNK__CHUNK_TOKENS": "128"})
    assert settings.search.rrf_k == 10
    assert settings.search.mode == "keyword"
    assert settings.bm25.stem is False
    assert settings.chunk.chunk_tokens == 128
    assert Settings().search.rrf_k == 60


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"search": {"mode": "fuzzy"}}, "search.mode must be one of"),
        ({"search": {"alpha": 1.5}}, "alpha must lie in"),
        ({"search": {"rrf_k": "many"}}, "search.rrf_k must be of type int"),
        ({"search": {"nope": 1}}, "unknown setting search.nope"),
        ({"nosection": {"a": 1}}, "unknown settings section"),
        ({"chunk": {"chunk_tokens": 10, "overlap_tokens": 10}}, "overlap_tokens must be smaller"),
        ({"bm25": {"stem": "maybe"}}, "bm25.stem must be of type bool"),
    ],
)
def test_bad_settings_name_the_problem(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings().with_overrides(overrides)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "localrag.toml").write_text("[search\n")
    with pytest.raises(ConfigError, match=r"localrag\.toml is not valid TOML"):
        load_settings(tmp_path, env={})


def test_update_settings_file_merges_keeps_a_backup_and_validates(tmp_path: Path) -> None:
    from localrag.config import CONFIG_FILE, update_settings_file

    (tmp_path / CONFIG_FILE).write_text('[search]\nalpha = 0.3\n\n[embed]\nthreads = 1\n', encoding="utf-8")
    update_settings_file(tmp_path, {"embed": {"model": "/models/mine"}, "bm25": {"k1": 1.2}}, written_by="test")
    settings = load_settings(tmp_path, env={})
    assert (settings.search.alpha, settings.embed.threads, settings.embed.model, settings.bm25.k1) == (
        0.3, 1, "/models/mine", 1.2)
    assert "alpha = 0.3" in (tmp_path / (CONFIG_FILE + ".bak")).read_text()
    before = (tmp_path / CONFIG_FILE).read_text()
    with pytest.raises(ConfigError, match="alpha"):
        update_settings_file(tmp_path, {"search": {"alpha": 3.0}}, written_by="test")
    assert (tmp_path / CONFIG_FILE).read_text() == before
