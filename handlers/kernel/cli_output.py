"""What the command lines print, for every feature's CLI: JSON lines (UTF-8 with real Chinese
characters), and tables for people's spreadsheets: CSV that Excel and WPS open correctly (UTF-8 with a
BOM, so the Chinese is not mojibake; CRLF rows, as Excel writes them) and .xlsx (openpyxl). Headers are
Chinese; times are the community's local time, written by the callers."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

BOM = "\ufeff"


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return BOM + buffer.getvalue()


def xlsx_bytes(sheet: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook  # only when asked for: not needed at start-up

    book = Workbook(write_only=True)
    ws = book.create_sheet(title=sheet[:31])  # Excel's limit on sheet names
    ws.append(list(headers))
    for row in rows:
        ws.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def binary_out(output: Path | None) -> BinaryIO | None:
    """Where a binary file goes: ``output``, else stdout when it is redirected; None on a terminal
    (an .xlsx would only garble it)."""
    if output is not None:
        return output.open("wb")
    if sys.stdout.isatty():
        return None
    return sys.stdout.buffer


def write_bytes(data: bytes, output: Path | None) -> bool:
    target = binary_out(output)
    if target is None:
        return False
    if target is sys.stdout.buffer:
        sys.stdout.flush()
        target.write(data)
        target.flush()
    else:
        with target:
            target.write(data)
    return True
