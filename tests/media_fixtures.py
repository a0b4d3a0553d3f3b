"""Fixtures for the OCR and speech tests, made on the spot: text rendered with DejaVu into PNG and image-only PDF
pages (Pillow), speech spoken by espeak-ng. Nothing is downloaded; the font and espeak-ng come from Debian
packages (fonts-dejavu-core, espeak-ng) that scripts/setup.sh installs."""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
DPI = 200

PAGE_ONE = (
    "The quarterly report shows that revenue grew by twelve percent.",
    "Invoice number 4471 was paid on the third of March 2024.",
    "Bees tell each other where the flowers are by dancing.",
    "The warehouse in Rotterdam ships pallets every Tuesday.",
)
PAGE_TWO = (
    "Glaciers carve deep valleys as they move down the mountains.",
    "The committee approved the budget for the new library wing.",
    "A lighthouse keeper recorded the storm in her logbook.",
)
SENTENCES = (
    "The library opens at nine in the morning.",
    "Please send the quarterly report to the finance team.",
    "Honeybees tell each other where flowers are by dancing.",
    "The meeting was moved to Thursday afternoon.",
)


def require(program: str, install: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.fail(f"{program} is not installed; scripts/setup.sh installs it ({install})")
    return found


def render_page(lines: Sequence[str], *, points: int = 12, dpi: int = DPI):  # type: ignore[no-untyped-def]
    """A US-letter page of ``lines`` at ``points`` pt, black on white, one inch margins."""
    from PIL import Image, ImageDraw, ImageFont

    if not FONT.is_file():
        pytest.fail(f"{FONT} is missing; install fonts-dejavu-core")
    pixels = round(points * dpi / 72)
    font = ImageFont.truetype(str(FONT), pixels)
    page = Image.new("L", (int(8.5 * dpi), int(11 * dpi)), 255)
    draw = ImageDraw.Draw(page)
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, font=font, fill=0)
        y += int(pixels * 2.2)  # a blank line's worth of leading: one paragraph per line
    return page


def write_png(path: Path, lines: Sequence[str]) -> Path:
    render_page(lines).save(path, dpi=(DPI, DPI))
    return path


def write_image_pdf(path: Path, pages: Sequence[Sequence[str]]) -> Path:
    """A PDF whose pages are images only (no text layer), as a scanner writes them."""
    images = [render_page(lines) for lines in pages]
    images[0].save(path, format="PDF", resolution=DPI, save_all=True, append_images=images[1:])
    return path


def write_speech(path: Path, sentences: Sequence[str] = SENTENCES, gap_s: float = 1.0) -> list[float]:
    """A mono 16-bit WAV of the sentences spoken one after another; returns where each one starts (s)."""
    espeak = require("espeak-ng", "apt-get install -y espeak-ng")
    pieces: list[np.ndarray] = []
    starts: list[float] = []
    rate = 22050
    at = 0.0
    for index, sentence in enumerate(sentences):
        single = path.with_name(f".{path.stem}.{index}.wav")
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(single), sentence], check=True, timeout=60)
        with wave.open(str(single)) as w:
            rate = w.getframerate()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        single.unlink()
        starts.append(at)
        pieces += [samples, np.zeros(int(rate * gap_s), dtype=np.int16)]
        at += (len(samples) + int(rate * gap_s)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(pieces).tobytes())
    return starts


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, a in enumerate(reference, start=1):
        current = [i]
        for j, b in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def char_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    return edit_distance(ref, hyp) / max(len(ref), 1)


def words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z0-9']+", text.lower())


# Whisper writes small numbers as digits; the reference spells them (the usual WER normalisation).
_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
NUMBER_WORDS = {str(number): word for number, word in enumerate(_NUMBERS)}


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref = words(reference)
    hyp = [NUMBER_WORDS.get(w, w) for w in words(hypothesis)]
    return edit_distance(ref, hyp) / max(len(ref), 1)
