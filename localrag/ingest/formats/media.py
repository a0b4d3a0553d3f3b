"""Audio and video (mp3, wav, m4a, ogg, opus, flac; the audio track of mp4 and webm): a timed transcript.

The document text holds one line per recognised segment, each led by its start time:

    [00:03.8] Please send the quarterly report to the finance team.

The time travels inside the text on purpose: every chunk, hit, citation quote and answer source then carries the
timestamp of what it quotes, in every interface, with no per-chunk metadata in the store. ``span_times`` turns
any char span of the text (a hit's ``char_start``/``char_end``) back into start and end seconds. The metadata
holds the language (detected per file, unless ``ingest.speech_language`` forces one), its probability, the
duration and the model.

Decoding is PyAV's (bundled FFmpeg libraries, pulled in by faster-whisper), so no ffmpeg program is needed.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

from localrag.errors import DependencyMissingError, LocalRagError, ModelNotFoundError
from localrag.ingest.errors import LoaderError
from localrag.ingest.formats import FormatContext, make_document
from localrag.ingest.formats.speech import Transcript, describe, transcriber
from localrag.types import Document

log = logging.getLogger(__name__)

__all__ = ["format_time", "load_media", "span_times", "time_markers", "transcript_text"]

VIDEO_SUFFIXES = frozenset({".mp4", ".webm"})
# A segment line's lead: [mm:ss.s] or [h:mm:ss.s], at the start of a line.
MARKER = re.compile(r"^\[(?:(\d+):)?(\d{2}):(\d{2}\.\d)\] ", re.MULTILINE)


def format_time(seconds: float) -> str:
    tenths = round(max(seconds, 0.0) * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    clock = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{clock}" if hours else clock


def _seconds(match: re.Match[str]) -> float:
    hours = int(match.group(1) or 0)
    return hours * 3600 + int(match.group(2)) * 60 + float(match.group(3))


def transcript_text(transcript: Transcript) -> str:
    return "\n".join(f"[{format_time(s.start)}] {s.text}" for s in transcript.segments)


def time_markers(text: str) -> list[tuple[int, float]]:
    """(char offset, start seconds) of every segment line of a transcript, in text order."""
    return [(m.start(), _seconds(m)) for m in MARKER.finditer(text)]


def span_times(text: str, char_start: int, char_end: int, duration: float | None = None) -> tuple[float, float] | None:
    """(start, end) seconds of the speech under ``text[char_start:char_end]``; None without markers.

    ``text`` is the document text (or a chunk's own text with offsets into it). The start is the marker of
    the line holding ``char_start``; the end is the next line's marker after ``char_end`` (or ``duration``, or
    the last marker in the span when neither is known).
    """
    markers = time_markers(text)
    if not markers:
        return None
    before = [t for pos, t in markers if pos <= char_start]
    start = before[-1] if before else markers[0][1]
    after = [t for pos, t in markers if pos >= char_end]
    if after:
        end = after[0]
    elif duration is not None:
        end = duration
    else:
        end = max(t for pos, t in markers if pos < char_end) if any(pos < char_end for pos, _ in markers) else start
    return start, max(start, end)


def load_media(data: bytes, path: Path, ctx: FormatContext) -> list[Document]:
    limits = ctx.limits
    try:
        engine = transcriber(limits.speech_model, limits.media_threads)
    except (ModelNotFoundError, DependencyMissingError) as e:
        raise LoaderError(path, f"not transcribed: {e}") from e
    try:
        result = engine.transcribe(io.BytesIO(data), limits.speech_language)
    except LocalRagError:
        raise
    except Exception as e:  # PyAV and CTranslate2 raise their own types for undecodable streams
        reason = str(e) or type(e).__name__
        if ("audio" in reason.lower() and "stream" in reason.lower()) or isinstance(e, IndexError):
            raise LoaderError(path, "no audio track to transcribe") from e
        raise LoaderError(path, f"cannot decode audio: {type(e).__name__}: {reason}") from e
    text = transcript_text(result)
    if not text.strip():
        raise LoaderError(path, f"empty: no speech recognised in {result.duration:.0f} s of audio")
    kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "audio"
    metadata: dict[str, Any] = {"file_type": kind, **describe(result), "speech_model": engine.name,
                                "segments": len(result.segments)}
    log.debug("%s: %d segments, language %s", path, len(result.segments), result.language)
    return [make_document(path, text, metadata=metadata)]
