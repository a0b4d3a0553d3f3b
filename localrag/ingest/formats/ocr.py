"""OCR engines: an ``OcrEngine`` turns one page image into text with a box per paragraph.

The engine is Tesseract (Debian's ``tesseract-ocr`` and ``tesseract-ocr-eng``), run as a program on the page's
PNG bytes; its TSV output gives every word's box, which are merged per paragraph. It was chosen over the ONNX
package RapidOCR (PP-OCRv4 weights in the wheel) by measurement on this machine: on clean 12-pt text it read
every character (CER 0.0 at 150, 200 and 300 dpi) in 0.8-1.3 s a page, where RapidOCR took 4.3-5.4 s and dropped
the spaces between English words at 150 and 300 dpi (CER 0.12); see docs/DESIGN.md.

Tesseract is a program, not a Python package, so it runs as a child of the parser worker: it inherits the
worker's address-space limit, is killed with the worker (parent-death signal) and gets a wall-time bound of its
own. ``OMP_THREAD_LIMIT`` holds it to the configured threads, so a loaded 2-core machine is not oversubscribed.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from localrag.errors import ModelNotFoundError

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

__all__ = ["TESSERACT_INSTALL", "OcrBlock", "OcrEngine", "OcrPage", "TesseractEngine", "ocr_engine"]

TESSERACT_INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng"
_PR_SET_PDEATHSIG = 1
_MIN_CONFIDENCE = 0.0  # Tesseract marks non-words with -1; those rows carry no text anyway

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image's width and height


@dataclass(frozen=True, slots=True)
class OcrBlock:
    """A paragraph of the page text, ``text[char_start:char_end]``, and where it sits on the image."""

    char_start: int
    char_end: int
    box: Box


@dataclass(frozen=True, slots=True)
class OcrPage:
    text: str
    blocks: tuple[OcrBlock, ...] = ()
    width: int = 0
    height: int = 0


class OcrEngine(Protocol):
    """Reads the text of one page image. ``name`` goes into each document's metadata (``ocr_engine``)."""

    name: str

    def recognize(self, image: Image) -> OcrPage: ...


class TesseractEngine:
    """Tesseract through its command-line program; one process per page (~50 ms of the ~1 s a page costs)."""

    def __init__(self, language: str = "eng", threads: int = 1, timeout_s: float = 300.0,
                 program: str | None = None) -> None:
        found = program or shutil.which("tesseract")
        if not found:
            raise ModelNotFoundError(f"OCR needs Tesseract, which is not installed; run: {TESSERACT_INSTALL}")
        self.program = found
        self.language = language or "eng"
        self.threads = max(1, threads)
        self.timeout_s = timeout_s
        self.name = f"tesseract:{self.language}"
        self._check_language()

    def _check_language(self) -> None:
        listed = self._run(["--list-langs"], b"").decode("utf-8", "replace").split()
        missing = [lang for lang in self.language.split("+") if lang not in listed]
        if missing:
            packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
            raise ModelNotFoundError(f"Tesseract has no data for {'+'.join(missing)}; run: apt-get install {packages}")

    def recognize(self, image: Image) -> OcrPage:
        png = io.BytesIO()
        image.save(png, format="PNG")
        # --psm 3: automatic page segmentation (columns, paragraphs); tsv: one row per word with its box.
        tsv = self._run(["stdin", "stdout", "-l", self.language, "--psm", "3", "tsv"], png.getvalue())
        return parse_tsv(tsv.decode("utf-8", "replace"), image.width, image.height)

    def _run(self, args: Sequence[str], stdin: bytes) -> bytes:
        env = {**os.environ, "OMP_THREAD_LIMIT": str(self.threads)}
        try:
            done = subprocess.run([self.program, *args], input=stdin, capture_output=True, env=env,
                                  timeout=self.timeout_s or None, check=False, preexec_fn=_die_with_parent())
        except subprocess.TimeoutExpired as e:
            raise OcrError(f"Tesseract took longer than {self.timeout_s:g} s on one page") from e
        except OSError as e:
            raise OcrError(f"cannot run Tesseract ({self.program}): {e}") from e
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OcrError(f"Tesseract failed (exit {done.returncode}): {message[-1] if message else 'no message'}")
        return done.stdout


class OcrError(Exception):
    """The engine failed on one image; the loaders turn it into a ``LoaderError`` with the file's path."""


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook that has the kernel kill the child when the worker dies (the sandbox kills only it)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return hook


def parse_tsv(tsv: str, width: int, height: int) -> OcrPage:
    """Page text from Tesseract's TSV: words joined by spaces, lines by newlines, paragraphs by blank lines."""
    lines: dict[tuple[int, int, int, int], list[tuple[str, int, int, int, int]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        word = (row.get("text") or "").strip()
        if row.get("level") != "5" or not word:
            continue
        try:
            if float(row.get("conf") or -1) < _MIN_CONFIDENCE:
                continue
            key = (int(row["page_num"]), int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
            left, top, w, h = (int(row[k]) for k in ("left", "top", "width", "height"))
        except (KeyError, ValueError):
            continue
        lines.setdefault(key, []).append((word, left, top, left + w, top + h))
    parts: list[str] = []
    blocks: list[OcrBlock] = []
    offset = 0
    paragraph: tuple[int, int, int] | None = None
    start, box = 0, [0, 0, 0, 0]
    for key in sorted(lines):  # Tesseract numbers blocks, paragraphs and lines in reading order
        words = lines[key]
        if key[:3] != paragraph:
            if paragraph is not None:
                blocks.append(OcrBlock(start, offset, _fraction(box, width, height)))
                parts.append("\n\n")
                offset += 2
            paragraph, start = key[:3], offset
            box = [words[0][1], words[0][2], words[0][3], words[0][4]]
        elif parts:
            parts.append("\n")
            offset += 1
        line = " ".join(w[0] for w in words)
        parts.append(line)
        offset += len(line)
        for _, x0, y0, x1, y1 in words:
            box = [min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)]
    if paragraph is not None:
        blocks.append(OcrBlock(start, offset, _fraction(box, width, height)))
    return OcrPage("".join(parts), tuple(blocks), width, height)


def _fraction(box: Sequence[int], width: int, height: int) -> Box:
    w, h = max(width, 1), max(height, 1)
    return (round(box[0] / w, 4), round(box[1] / h, 4), round(box[2] / w, 4), round(box[3] / h, 4))


_ENGINES: dict[tuple[str, int, float], OcrEngine] = {}


def ocr_engine(language: str, threads: int, timeout_s: float) -> OcrEngine:
    """The engine for these options, made once per worker process (Tesseract's language check runs once)."""
    key = (language, threads, timeout_s)
    if key not in _ENGINES:
        # One OpenMP thread unless told otherwise: on a busy 2-core machine Tesseract with 2 threads took 23 s a
        # page against 1.3 s with one (benchmarks/results/media.json); pages are many, so parallelism is not lost.
        _ENGINES[key] = TesseractEngine(language, threads=threads or 1, timeout_s=timeout_s)
    return _ENGINES[key]
