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
