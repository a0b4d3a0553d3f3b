"""OCR pages per second and speech real-time factor, with their accuracy, on generated fixtures.

    python benchmarks/bench_media.py [--pages 4] [--speech-repeats 4] [--rounds 2] [--out FILE]

- OCR: US-letter pages of 12-pt DejaVu Serif text (24 lines) rendered at 200 dpi, read by the configured engine
  (Tesseract) with 1 and 2 threads, then the same through ``load_file`` (the parser worker: PNG decoding, the
  Tesseract process, JSON back). Character error rate against the rendered text. If ``rapidocr_onnxruntime`` is
  importable it is measured on the same pages for comparison (it is not a dependency).
- Speech: espeak-ng sentences (tests/media_fixtures.py) repeated into one WAV, transcribed by whisper-base with
  1 and 2 threads: real-time factor (seconds of compute per second of audio, lower is faster), word error rate,
  and the model's cold load time.
Wall times, best of ``--rounds``: OCR runs a child process, whose CPU time ``process_time`` would not see.
Writes benchmarks/results/media.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from media_fixtures import SENTENCES, char_error_rate, render_page, word_error_rate, write_speech  # noqa: E402

from localrag.ingest.formats.media import MARKER  # noqa: E402
from localrag.ingest.formats.ocr import TesseractEngine  # noqa: E402
from localrag.ingest.formats.speech import WhisperTranscriber, whisper_folder  # noqa: E402
from localrag.ingest.limits import ParseLimits  # noqa: E402
from localrag.ingest.loaders import load_file  # noqa: E402

WORDS = ["quarterly", "revenue", "invoice", "warehouse", "glacier", "committee", "budget", "library", "lighthouse",
         "storm", "river", "meeting", "report", "finance", "harbour", "pallet", "engine", "citation", "offline",
         "scanner"]


def page_lines(seed: int, lines: int = 24) -> list[str]:
    """Deterministic English-like lines of 7-9 words (no dictionary needed)."""
    out = []
    for i in range(lines):
        n = 7 + (seed + i) % 3
        words = [WORDS[(seed * 7 + i * 5 + k * 3) % len(WORDS)] for k in range(n)]
        out.append(" ".join(words).capitalize() + f" {100 + (seed * 31 + i) % 900}.")
    return out


def best(run: Any, rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def bench_ocr(pages: int, rounds: int, folder: Path) -> dict[str, Any]:
    texts = [page_lines(seed) for seed in range(pages)]
    images = [render_page(lines) for lines in texts]
    reference = ["\n".join(lines) for lines in texts]
    out: dict[str, Any] = {"pages": pages, "dpi": 200, "points": 12, "lines_per_page": 24}
    for threads in (1, 2):
        engine = TesseractEngine("eng", threads=threads)
        seconds, read = best(lambda engine=engine: [engine.recognize(image) for image in images], rounds)
        out[f"tesseract_threads{threads}"] = {
            "pages_per_s": round(pages / seconds, 3),
            "s_per_page": round(seconds / pages, 3),
            "cer": round(sum(char_error_rate(r, p.text) for r, p in zip(reference, read, strict=True)) / pages, 4),
        }
    paths = []
    for index, image in enumerate(images):
        path = folder / f"page{index}.png"
        image.save(path)
        paths.append(path)
    limits = ParseLimits(media_threads=1)
    load_file(paths[0], limits=limits)  # the worker starts (and checks Tesseract's languages) once
    seconds, _ = best(lambda: [load_file(path, limits=limits) for path in paths], rounds)
    out["load_file_threads1"] = {"pages_per_s": round(pages / seconds, 3), "s_per_page": round(seconds / pages, 3)}
    out["rapidocr"] = bench_rapidocr(images, reference, rounds)
    return out


def bench_rapidocr(images: list[Any], reference: list[str], rounds: int) -> dict[str, Any] | str:
    try:
        import numpy as np
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return "not installed (measured by hand: see docs/DESIGN.md)"
    engine = RapidOCR()
    arrays = [np.array(image.convert("RGB")) for image in images]

    def run() -> list[str]:
        return ["\n".join(r[1] for r in (engine(a)[0] or [])) for a in arrays]

    seconds, read = best(run, rounds)
    return {"pages_per_s": round(len(images) / seconds, 3),
            "cer": round(sum(char_error_rate(r, t) for r, t in zip(reference, read, strict=True)) / len(images), 4)}


def bench_speech(repeats: int, rounds: int, folder: Path) -> dict[str, Any]:
    sentences = list(SENTENCES) * repeats
    wav = folder / "speech.wav"
    write_speech(wav, sentences)
    import wave

    with wave.open(str(wav)) as w:
        duration = w.getnframes() / w.getframerate()
    model_folder, name = whisper_folder("whisper-base")
    out: dict[str, Any] = {"model": name, "audio_s": round(duration, 2), "sentences": len(sentences)}
    for threads in (1, 2):
        start = time.perf_counter()
        transcriber = WhisperTranscriber(model_folder, name, threads)
        load_s = time.perf_counter() - start
        seconds, transcript = best(lambda t=transcriber: t.transcribe(str(wav)), rounds)
        text = " ".join(s.text for s in transcript.segments)
        out[f"threads{threads}"] = {
            "rtf": round(seconds / duration, 4),
            "x_real_time": round(duration / seconds, 2),
            "load_s": round(load_s, 3),
            "wer": round(word_error_rate(" ".join(sentences), MARKER.sub("", text)), 4),
            "language": transcript.language,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--speech-repeats", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "media.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result = {
            "machine": {"cpus": os.cpu_count(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
                        "python": platform.python_version()},
            "ocr": bench_ocr(args.pages, args.rounds, folder),
            "speech": bench_speech(args.speech_repeats, args.rounds, folder),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
