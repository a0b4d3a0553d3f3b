"""Spreadsheets and delimited text: sheet and row anchors, the header row in every block, failures with reasons.

Every fixture is written by the test itself (openpyxl, xlwt, odfdo, plain strings).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest

from localrag.ingest.errors import ParseLimitError
from localrag.ingest.formats.tables import BLOCK_CHARS, cell_text, row_blocks
from localrag.ingest.limits import ParseLimits
from localrag.ingest.loaders import LoaderError, load_file, parse_file
from localrag.types import Document


def xlsx(path: Path, sheets: dict[str, list[list[object]]], *, offset: int = 0) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r, row in enumerate(rows, start=1 + offset):
            for c, value in enumerate(row, start=1):
                sheet.cell(row=r, column=c, value=value)
    book.save(path)
    return path


def by_sheet(docs: list[Document]) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {}
    for d in docs:
        out.setdefault(d.metadata["sheet"], []).append(d)
    return out


def test_xlsx_one_document_per_row_block_with_sheet_rows_and_header(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Account", "Region", "Q1 ARR", "Q3 ARR"]]
    rows += [[f"account-{i:03d}", "EMEA" if i % 2 else "APAC", 1000 + i, 2000.5 + i] for i in range(60)]
    path = xlsx(tmp_path / "book.xlsx", {"Summary": [["Total", 99]], "Revenue": rows, "Blank": []})
    docs = load_file(path)  # through the worker, as ingest runs it
    sheets = by_sheet(docs)
    assert set(sheets) == {"Summary", "Revenue"}  # a sheet without cells yields nothing
    revenue = sheets["Revenue"]
    assert len(revenue) > 3
    covered: list[int] = []
    for d in revenue:
        first, last = d.metadata["row_start"], d.metadata["row_end"]
        lines = d.text.splitlines()
        assert lines[0] == f"Sheet Revenue, rows {first}-{last}"
        assert lines[1] == "Account | Region | Q1 ARR | Q3 ARR"  # the header leads every block
        assert d.metadata["header_row"] == 1 and d.metadata["sheet_index"] == 2
        assert d.title == f"book.xlsx: sheet Revenue, rows {first}-{last}"
        assert d.doc_id == f"{path.as_posix()}#sheet=Revenue&rows={first}-{last}"
        assert d.source == path.as_posix() == d.metadata["source"]
        assert d.metadata["file_type"] == "xlsx"
        assert len(d.text) <= BLOCK_CHARS
        # Row numbers are the sheet's own: the row on line k of the block is sheet row first + k - 1.
        body = lines[2:]
        assert len(body) == last - first + 1
        for k, line in enumerate(body):
            assert line.startswith(f"account-{first + k - 2:03d} | ")
        covered.extend(range(first, last + 1))
    assert covered == list(range(2, 62))  # every data row once, in order
    row_12 = next(d for d in revenue if d.metadata["row_start"] <= 12 <= d.metadata["row_end"])
    assert "account-010 | APAC | 1010 | 2010.5" in row_12.text  # whole floats read as integers, others kept
    summary = sheets["Summary"]
    assert [(d.text, d.metadata["row_start"], d.metadata["row_end"]) for d in summary] == [
        ("Sheet Summary, rows 1-1\nTotal | 99", 1, 1)
    ]


def test_rows_keep_their_sheet_numbers_when_the_table_starts_lower(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "offset.xlsx", {"Data": [["Name", "Score"], ["Ann", 3], [None, None], ["Bob", 4.5]]}, offset=4
    )
    [doc] = parse_file(path)
    assert doc.metadata["header_row"] == 5
    assert (doc.metadata["row_start"], doc.metadata["row_end"]) == (6, 8)  # the empty row 7 is dropped
    assert doc.text == "Sheet Data, rows 6-8\nName | Score\nAnn | 3\nBob | 4.5"


def test_xls_and_ods(tmp_path: Path) -> None:
    import xlwt
    from odfdo import Document as OdfDocument
    from odfdo import Table

    book = xlwt.Workbook()
    sheet = book.add_sheet("Old")
    for r, row in enumerate([["Name", "Score"], ["Ann", 3], ["Bob", 4.5]]):
        for c, value in enumerate(row):
            sheet.write(r + 2, c, value)
    book.save(str(tmp_path / "old.xls"))
    [xls] = parse_file(tmp_path / "old.xls")
    assert xls.text == "Sheet Old, rows 4-5\nName | Score\nAnn | 3\nBob | 4.5"
    assert (xls.metadata["sheet"], xls.metadata["row_start"], xls.metadata["row_end"]) == ("Old", 4, 5)
    assert xls.metadata["file_type"] == "xls"

    ods = OdfDocument("spreadsheet")
    table = Table("Costs")
    table.set_values([["Item", "Cost"], ["Rent", 1200], ["Power", 99.5]])
    ods.body.append(table)
    ods.save(str(tmp_path / "costs.ods"))
    [doc] = load_file(tmp_path / "costs.ods")
    assert doc.text == "Sheet Costs, rows 2-3\nItem | Cost\nRent | 1200\nPower | 99.5"
    assert (doc.metadata["sheet"], doc.metadata["row_start"], doc.metadata["row_end"]) == ("Costs", 2, 3)


def test_csv_sniffs_the_delimiter_and_tsv_uses_tabs(tmp_path: Path) -> None:
    (tmp_path / "semi.csv").write_text('city;population\nOslo;709000\n"New\nYork";8300000\n', encoding="utf-8")
    [doc] = load_file(tmp_path / "semi.csv")
    assert doc.text == "Rows 2-3\ncity | population\nOslo | 709000\nNew York | 8300000"
    assert doc.title == "semi.csv: rows 2-3"
    assert "sheet" not in doc.metadata and doc.metadata["file_type"] == "csv"
    assert doc.doc_id.endswith("semi.csv#rows=2-3")
    (tmp_path / "t.tsv").write_text("a,b\tc\n1,5\t2\n", encoding="utf-8")
    [tsv] = parse_file(tmp_path / "t.tsv")
    assert tsv.text == "Rows 2-2\na,b | c\n1,5 | 2"  # the comma is data in a tsv


def test_blocks_split_by_size_and_a_long_row_stands_alone() -> None:
    rows = [(1, ["h1", "h2"])] + [(n, ["x" * 50, str(n)]) for n in range(2, 30)] + [(30, ["y" * 900])]
    blocks = list(row_blocks(rows, max_chars=200, max_rows=100))
    assert all(header == (1, ["h1", "h2"]) for header, _ in blocks)
    assert [n for _, block in blocks for n, _ in block] == list(range(2, 31))
    assert blocks[-1][1] == [(30, ["y" * 900])]
    for _, block in blocks[:-1]:
        assert len("h1 | h2") + sum(len(" | ".join(c)) + 1 for _, c in block) <= 200
    assert len(list(row_blocks(rows, max_chars=10_000, max_rows=5))) == 6


def test_cell_text() -> None:
    assert cell_text(1500000.0) == "1500000"
    assert cell_text(0.15) == "0.15"
    assert cell_text(dt.datetime(2024, 3, 1)) == "2024-03-01"
    assert cell_text(dt.datetime(2024, 3, 1, 9, 30)) == "2024-03-01 09:30:00"
    assert cell_text(True) == "TRUE"
    assert cell_text(float("nan")) == ""
    assert cell_text("two\nlines") == "two lines"


def test_broken_and_empty_workbooks_are_refused_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "bad.xlsx").write_bytes(b"PK\x03\x04 not really a zip at all" * 10)
    with pytest.raises(LoaderError) as info:
        load_file(tmp_path / "bad.xlsx")
    assert info.value.reason.startswith("cannot read XLSX:")
    empty = xlsx(tmp_path / "empty.xlsx", {"A": [], "B": [[None, None]]})
    with pytest.raises(LoaderError) as info:
        parse_file(empty)
    assert info.value.reason == "empty: no cell holds a value"


def test_an_xlsx_bomb_is_refused_before_calamine_opens_it(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<a/>" + b" " * (40 * 1024 * 1024))
    (tmp_path / "bomb.xlsx").write_bytes(buffer.getvalue())
    with pytest.raises(ParseLimitError) as info:
        load_file(tmp_path / "bomb.xlsx", limits=ParseLimits(max_unzipped_mb=16))
    assert "zip bomb" in info.value.reason


def test_a_sheet_spanning_the_whole_grid_costs_the_worker_not_the_engine(tmp_path: Path) -> None:
    # calamine holds a sheet's used range densely: two corner cells ask for 17 billion. The allocation fails
    # under the worker's memory limit (Rust aborts), the file is skipped with the reason, the next file loads.
    import openpyxl

    book = openpyxl.Workbook()
    book.active["A1"] = "top left"
    book.active["XFD1048576"] = "bottom right"
    book.save(tmp_path / "corners.xlsx")
    with pytest.raises(LoaderError) as info:
        load_file(tmp_path / "corners.xlsx", limits=ParseLimits(memory_mb=1024))
    assert "the parser process died" in info.value.reason and "ingest.parse_memory_mb" in info.value.reason
    [doc] = load_file(xlsx(tmp_path / "fine.xlsx", {"S": [["a", "b"], [1, 2]]}), limits=ParseLimits(memory_mb=1024))
    assert doc.text == "Sheet S, rows 2-2\na | b\n1 | 2"
