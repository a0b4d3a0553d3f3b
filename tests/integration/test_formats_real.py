"""Issue 19's acceptance for tables and mail, with the real embedding model: a spreadsheet question answered from
the right sheet and row, and a mail's attachment found and linked to its mail. Fixtures are written here."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest

from localrag.config import Settings
from localrag.engine import LocalRAG

pytestmark = pytest.mark.model

METRICS = ["Headcount", "Churn rate", "Net promoter score", "Support tickets", "Gross margin", "Cash burn",
           "Pipeline coverage", "Win rate", "Average deal size", "Sales cycle days", "Uptime", "Open bugs",
           "Annual recurring revenue (ARR)", "New logos", "Expansion revenue", "Marketing spend"]  # fmt: skip
ARR_ROW = 2 + METRICS.index("Annual recurring revenue (ARR)")  # the header is row 1


def quarterly_book(path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for q in range(1, 5):
        sheet = book.create_sheet(f"Q{q}")
        sheet.append(["Metric", "Value", "Target", "Owner"])
        for i, metric in enumerate(METRICS):
            value = 4_100_000 + 350_000 * q if metric.endswith("(ARR)") else 100 * q + i
            sheet.append([metric, value, value + 10, "finance" if i % 2 else "operations"])
    book.save(path)


@pytest.fixture
def rag(tmp_path: Path, real_embedder):  # type: ignore[no-untyped-def]
    settings = Settings().with_overrides({"generate": {"providers": "extractive"}})
    with LocalRAG(tmp_path / "data", embedder=real_embedder, settings=settings) as engine:
        yield engine


def test_a_spreadsheet_question_is_answered_from_the_right_sheet_and_row(rag: LocalRAG, tmp_path: Path) -> None:
    quarterly_book(tmp_path / "kpis.xlsx")
    report = rag.add(tmp_path / "kpis.xlsx")
    assert not report.skipped and len(report.added) >= 8  # several row blocks in each of the four sheets
    top = rag.search("What was the ARR in Q3?", k=3)[0]
    meta = top.metadata
    assert meta["sheet"] == "Q3", (top.title, top.text)
    assert meta["row_start"] <= ARR_ROW <= meta["row_end"]
    assert top.title == f"kpis.xlsx: sheet Q3, rows {meta['row_start']}-{meta['row_end']}"
    # The sheet and the header travel with the row.
    assert top.text.startswith(
        f"Sheet Q3, rows {meta['row_start']}-{meta['row_end']}\nMetric | Value | Target | Owner\n"
    )
    assert "Annual recurring revenue (ARR) | 5150000 |" in top.text

    answer = rag.ask("What was the ARR in Q3?")
    assert not answer.abstained and "5150000" in answer.text
    cited = [c for c in answer.citations if "5150000" in c.quote]
    assert cited, answer.citations
    stored = rag.get_document(cited[0].doc_id)
    assert stored.metadata["sheet"] == "Q3" and stored.metadata["row_start"] <= ARR_ROW <= stored.metadata["row_end"]


def survey_workbook() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Colonies"
    sheet.append(["Site", "Species", "Nesting pairs"])
    sheet.append(["North cliff", "Atlantic puffin", 412])
    sheet.append(["South stack", "Razorbill", 37])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_mails_attachment_is_found_and_linked_to_its_mail(rag: LocalRAG, tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "Warden <warden@example.org>"
    mail["To"] = "trust@example.org"
    mail["Subject"] = "Seabird survey results"
    mail["Date"] = "Mon, 16 Jun 2025 18:05:00 +0100"
    mail.set_content("Hello all,\n\nthe counts from this season's survey are in the attached spreadsheet.\n")
    xlsx = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    mail.add_attachment(survey_workbook(), maintype="application", subtype=xlsx, filename="survey.xlsx")
    boats = b"Boat schedule: departures at 07:30 from the harbour steps, weather permitting."
    mail.add_attachment(boats, maintype="text", subtype="plain", filename="boats.txt")
    (tmp_path / "survey.eml").write_bytes(bytes(mail))
    (tmp_path / "other.txt").write_text("Puffins are also called sea parrots for their colourful beaks.\n")
    report = rag.add([tmp_path / "survey.eml", tmp_path / "other.txt"])
    assert not report.skipped and len(report.added) == 4  # the mail, its two attachments and the other file

    top = rag.search("How many puffin pairs nest on the north cliff?", k=3)[0]
    assert top.metadata["attachment"] == "survey.xlsx" and top.metadata["sheet"] == "Colonies"
    assert "North cliff | Atlantic puffin | 412" in top.text
    mail_id = top.metadata["attachment_of"]
    assert top.metadata["parent_doc_id"] == mail_id == (tmp_path / "survey.eml").resolve().as_posix()
    parent = rag.get_document(mail_id)
    assert parent.title == "Seabird survey results"
    assert parent.metadata["from"] == "Warden <warden@example.org>" and parent.metadata["date"].startswith("2025-06-16")
    assert top.doc_id in parent.metadata["attachment_ids"]
    assert parent.metadata["attachments"] == ["survey.xlsx", "boats.txt"]

    hit = rag.search("when do the boats leave", k=1, filter={"attachment_of": mail_id})[0]
    assert hit.metadata["attachment"] == "boats.txt" and hit.doc_id in parent.metadata["attachment_ids"]
    # One delete by source reaches the mail and everything it carried.
    assert rag.delete(filter={"source": parent.source}) == 3
    assert all(h.metadata.get("source") != parent.source for h in rag.search("puffin survey", k=10))
