"""Derive ONNX encoders from a model package's safetensors, offline, and cache them.

Recipe (measured on all-MiniLM-L6-v2, see models/README.md):
  1. ``torch.onnx.export`` of the transformers model loaded from the package folder with eager
     attention, dynamic batch and sequence axes; the TorchScript exporter is used because its
     graph is the one onnxruntime's BERT fusions recognise (the dynamo graph falls back);
  2. onnxruntime's transformer optimizer fuses embeddings + LayerNorm, attention, Gelu and
     skip-LayerNorm into single contrib ops (fp32 ~1.3x faster);
  3. int8: ``quantize_dynamic`` of that graph, QInt8 weights per output channel (per-tensor
     weights drop the mean cosine to ~0.94); activations are quantized per call.
Every artefact is checked against the torch model on fixed sentences before it is moved into
place (temp file + ``os.replace``). A JSON sidecar records the source package and version,
the recipe version and the file's sha256; a cached file is reused only while all still match.

torch is needed only here, and only to make a missing artefact: a prepared cache serves the
ONNX embedder without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from localrag.errors import DependencyMissingError, LocalRagError, ModelNotFoundError
from localrag.models import ModelSpec, all_specs, ensure_offline, locate_folder, package_version

log = logging.getLogger(__name__)

RECIPE = 1  # bump when the export or quantization recipe changes: cached artefacts are redone
ONNX_FILE = "model.onnx"
CARD_FILE = "MODEL_CARD.md"  # beside every model the project trains
SIDECAR_FILE = "model.json"
OPSET = 17
MIN_COSINE_FP32 = 0.999
MEAN_COSINE_INT8 = 0.99
MIN_COSINE_INT8 = 0.97  # one- or two-word texts lose most to per-tensor activation quantization
TORCH_HINT = "pip install 'localrag[torch]'"

# Fixed check sentences: varied lengths in one padded batch, so masking errors show up.
CHECK_SENTENCES = (
    "The mitochondria produce most of the cell's supply of adenosine triphosphate.",
    "How do I reset my password if I no longer have access to my email account?",
    "Aspirin reduces the risk of heart attack in adults with cardiovascular disease.",
    "The quarterly report shows revenue growth of twelve percent over the previous year.",
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
    "Install the package with pip and run the command line tool to index your documents.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease. "
    "Most vaccines contain weakened or inactivated forms of the microbe, its toxins or one of "
    "its surface proteins, and several doses may be needed to build lasting immunity. "
    "Side effects are usually mild and pass within a few days.",
)

_lock = threading.Lock()


# -- cache layout ----------------------------------------------------------------------
def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else ``$LOCALRAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/localrag`` (``~/.cache``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    explicit = os.environ.get("LOCALRAG_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "localrag"


def onnx_path(name: str, cache_dir: Path | None = None) -> Path:
    """Where the ONNX file of registry model ``name`` lives: ``<cache>/models/<name>/model.onnx``."""
    return cache_root(cache_dir) / "models" / name / ONNX_FILE


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path.parent / SIDECAR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _expected(spec: ModelSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "format": spec.format,
        "recipe": RECIPE,
        "source_package": spec.distribution,
        "source_version": package_version(spec),
    }


def cached_onnx(spec: ModelSpec, cache_dir: Path | None = None) -> Path | None:
    """The cached artefact of ``spec`` if it exists and its sidecar matches, else None."""
    path = onnx_path(spec.name, cache_dir)
    sidecar = read_sidecar(path)
    if sidecar is None or not path.is_file():
        return None
    if any(sidecar.get(key) != value for key, value in _expected(spec).items()):
        log.info("cached %s was made from another source or recipe; it will be redone", path)
        return None
    stat = path.stat()
    if sidecar.get("size") == stat.st_size and sidecar.get("mtime_ns") == stat.st_mtime_ns:
        return path  # unchanged since its hash was recorded: skip rehashing on every start
    if sidecar.get("size") != stat.st_size or sidecar.get("sha256") != sha256_file(path):
        log.warning("cached %s does not match its recorded sha256; it will be redone", path)
        return None
    return path


def _write_sidecar(spec: ModelSpec, path: Path, check: tuple[float, float]) -> None:
    stat = path.stat()
    record = {
        **_expected(spec),
        "sha256": sha256_file(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "cosine_mean": round(check[0], 6),
        "cosine_min": round(check[1], 6),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    sidecar = path.parent / SIDECAR_FILE
    with _temporary_beside(sidecar) as tmp:  # not fileio.atomic_write_bytes: that one makes 0600 files
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(tmp, sidecar)


# -- entry point -----------------------------------------------------------------------
def ensure_onnx(spec: ModelSpec, cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """The ONNX file of an ``onnx-*`` registry entry, exporting it (needs torch) if not cached."""
    if spec.format not in ("onnx-fp32", "onnx-int8"):
        raise LocalRagError(f"model {spec.name!r} is not an ONNX model")
    folder = locate_folder(spec)  # the package must be installed either way: it holds the tokenizer
    with _lock:
        found = None if force else cached_onnx(spec, cache_dir)
        if found is not None:
            return found
        _require_torch(spec, cache_dir)
        reference = TorchReference(folder)
        if spec.format == "onnx-fp32":
            return _make_fp32(spec, folder, cache_dir, reference)
        fp32_spec = _fp32_sibling(spec)
        fp32 = cached_onnx(fp32_spec, cache_dir)
        if fp32 is None or force:
            fp32 = _make_fp32(fp32_spec, folder, cache_dir, reference)
        target = onnx_path(spec.name, cache_dir)
        check = quantize_int8(fp32, target, reference=reference)
        _write_sidecar(spec, target, check)
        return target


def _make_fp32(spec: ModelSpec, folder: Path, cache_dir: Path | None, reference: TorchReference) -> Path:
    target = onnx_path(spec.name, cache_dir)
    check = export_onnx(folder, target, reference=reference)
    _write_sidecar(spec, target, check)
    return target


def _fp32_sibling(spec: ModelSpec) -> ModelSpec:
    for other in all_specs():
        if other.format == "onnx-fp32" and (other.module, other.path) == (spec.module, spec.path):
            return other
    raise LocalRagError(f"no fp32 ONNX entry to quantize {spec.name!r} from")


def _require_torch(spec: ModelSpec, cache_dir: Path | None) -> None:
    missing = [m for m in ("torch", "transformers", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        raise DependencyMissingError(
            f"model {spec.name!r} needs an ONNX export that is not in "
            f"{onnx_path(spec.name, cache_dir).parent}; "
            f"exporting needs {', '.join(missing)}: {TORCH_HINT}, then run `localrag models prepare` "
            "(or copy a prepared cache directory from a machine that has torch)"
        )


# -- torch reference -------------------------------------------------------------------
class TorchReference:
    """The transformers model of a package folder, loaded once, for export and for checks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._model: Any = None
        self._expected: np.ndarray | None = None

    @property
    def model(self) -> Any:
        if self._model is None:
            ensure_offline()
            from transformers import AutoModel

            from localrag.embed.sentence_transformer import quiet_transformers

            with quiet_transformers():
                # Eager attention traces to the plain MatMul/Softmax pattern onnxruntime can fuse.
                self._model = AutoModel.from_pretrained(
                    str(self.folder), local_files_only=True, attn_implementation="eager"
                ).eval()
        return self._model

    def embeddings(self) -> np.ndarray:
        """Mean-pooled, normalised torch embeddings of ``CHECK_SENTENCES``."""
        if self._expected is None:
            import torch

            from localrag.embed.tokenizer import ModelTokenizer

            batch = ModelTokenizer(self.folder).encode_batch(CHECK_SENTENCES)
            with torch.no_grad():
                hidden = self.model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
            self._expected = _pool(hidden.numpy(), batch["attention_mask"])
        return self._expected


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from localrag.embed.onnx import mean_pool

    return mean_pool(hidden, mask)


def check_against_torch(onnx_file: Path, reference: TorchReference) -> tuple[float, float]:
    """(mean, min) cosine between the ONNX model's and torch's embeddings of CHECK_SENTENCES,
    run in a session made as the embedder makes its own (so what is checked is what is served)."""
    from localrag.embed.onnx import make_session
    from localrag.embed.tokenizer import ModelTokenizer

    session = make_session(onnx_file, 0)
    batch = ModelTokenizer(reference.folder).encode_batch(CHECK_SENTENCES)
    names = {i.name for i in session.get_inputs()}
    (hidden,) = session.run(["last_hidden_state"], {k: v for k, v in batch.items() if k in names})
    cosines = (_pool(np.asarray(hidden), batch["attention_mask"]) * reference.embeddings()).sum(axis=1)
    return float(cosines.mean()), float(cosines.min())


# -- export and quantization -----------------------------------------------------------
@contextlib.contextmanager
def _temporary_beside(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(name, 0o644)  # mkstemp makes 0600; a shared cache must stay readable by its users
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (temp file beside it, then os.replace; readable by all)."""
    with _temporary_beside(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def publish_folder(staging: Path, out_dir: Path, files: tuple[str, ...], config_file: str,
                   config: dict[str, Any], card: str) -> None:
    """Move a checked model's files from ``staging`` into ``out_dir``, then its JSON config and card
    (each replaced atomically; the config last but one, so a folder with it has its model)."""
    for name in files:
        os.replace(staging / name, out_dir / name)
    write_text_atomic(out_dir / config_file, json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_text_atomic(out_dir / CARD_FILE, card)


def export_onnx(
    model_folder: Path, out_path: Path, *, reference: TorchReference | None = None
) -> tuple[float, float]:
    """Export ``model_folder`` (a transformers/sentence-transformers folder) to fp32 ONNX at ``out_path``.

    Writes atomically after checking cosine >= 0.999 to torch on every check sentence; returns
    the (mean, min) cosine. Raises ModelNotFoundError if the export does not reproduce the model.
    """
    reference = reference or TorchReference(model_folder)
    started = time.perf_counter()
    with _temporary_beside(out_path) as raw, _temporary_beside(out_path) as fused:
        _torch_export(reference.model, raw)
        final = fused if _fuse(model_folder, raw, fused) else raw
        check = check_against_torch(final, reference)
        if check[1] < MIN_COSINE_FP32:
            raise ModelNotFoundError(
                f"ONNX export of {model_folder} does not reproduce the torch model "
                f"(min cosine {check[1]:.5f} < {MIN_COSINE_FP32})"
            )
        os.replace(final, out_path)
    elapsed = time.perf_counter() - started
    log.info("exported %s in %.1fs (cosine mean %.6f, min %.6f)", out_path, elapsed, *check)
    return check


def _torch_export(model: Any, out: Path) -> None:
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    wrapper = LastHiddenState(model).eval()
    ids = torch.full((2, 16), 1000, dtype=torch.int64)
    mask = torch.ones((2, 16), dtype=torch.int64)
    mask[1, 9:] = 0  # a padded row, so the traced graph carries the masking path
    example = (ids, mask, torch.zeros_like(ids))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation and tracer warnings of a one-off export
        try:
            torch.onnx.export(
                wrapper, example, str(out), input_names=names, output_names=["last_hidden_state"],
                dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
            return
        except (TypeError, RuntimeError, NotImplementedError) as e:  # TorchScript exporter gone
            log.info("TorchScript ONNX export failed (%s); using the dynamo exporter", e)
        batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=4096)
        shapes = {name: {0: batch, 1: sequence} for name in names}
        with contextlib.redirect_stdout(io.StringIO()):  # the dynamo exporter prints progress
            program = torch.onnx.export(
                wrapper, example, None, input_names=names, output_names=["last_hidden_state"],
                dynamic_shapes=shapes, dynamo=True, external_data=False,
            )
            if program is None:
                raise LocalRagError("torch.onnx.export returned no program")
            program.save(str(out), external_data=False)


def _fuse(model_folder: Path, source: Path, out: Path) -> bool:
    """Fuse BERT subgraphs into onnxruntime contrib ops; False (source kept) if not a BERT model."""
    try:
        config = json.loads((model_folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if config.get("model_type") != "bert":
        return False
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        fused = optimize_model(
            str(source), model_type="bert", num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]), opt_level=0,
        )
        fused.save_model_to_file(str(out), use_external_data_format=False)
    except Exception as e:  # the optimizer raises assorted errors on graphs it does not know
        log.warning("onnxruntime fusion failed (%s); keeping the unfused graph", e)
        return False
    log.debug("fused operators: %s", fused.get_fused_operator_statistics())
    return True


def quantize_int8(
    fp32_path: Path, int8_path: Path, *, reference: TorchReference | None = None,
    model_folder: Path | None = None,
) -> tuple[float, float]:
    """Dynamic int8 quantization of ``fp32_path`` into ``int8_path`` (atomic).

    With a torch reference (or ``model_folder`` to load one) the result must reach mean cosine
    >= 0.99 and min >= 0.97 on the check sentences, else 7-bit weights are tried (they avoid
    int16 saturation in the u8s8 kernels of CPUs without VNNI); returns (mean, min), or
    (nan, nan) when unchecked.
    """
    if reference is None and model_folder is not None:
        reference = TorchReference(model_folder)
    check = (float("nan"), float("nan"))
    with _temporary_beside(int8_path) as tmp:
        for reduce_range in (False, True):
            _quantize(fp32_path, tmp, reduce_range)
            if reference is None:
                break
            check = check_against_torch(tmp, reference)
            if check[0] >= MEAN_COSINE_INT8 and check[1] >= MIN_COSINE_INT8:
                break
            log.warning("int8 (reduce_range=%s) cosine mean %.5f, min %.5f: too far", reduce_range, *check)
        else:
            raise ModelNotFoundError(
                f"int8 quantization of {fp32_path} strays from the torch model "
                f"(cosine mean {check[0]:.5f}, min {check[1]:.5f})"
            )
        os.replace(tmp, int8_path)
    return check


def _quantize(fp32_path: Path, out: Path, reduce_range: bool) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32_path), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
        # The fused contrib ops have no shape inference; their outputs are float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
