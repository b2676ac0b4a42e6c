"""messages.csv: the exported messages flat, UTF-8 with a BOM so Excel reads the Chinese right.

Spreadsheet safety: a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
would run as a formula in Excel, LibreOffice or Google Sheets ("CSV injection"), so such a cell is
written with a leading apostrophe, which spreadsheets show as text. messages.jsonl keeps every value
exactly as it was; this file is for reading.

Columns only ever go on at the end, so consumers that read by position keep working: ``tags``
(``name (who, when)``, '; ' between tags) and ``notes`` (``[author, created, edited by who when] text``,
a note a line) are last: the review decisions as of the export.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from discovery.export.review_snapshot import csv_notes, csv_tags

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS = (
    "bates", "document", "role", "id", "native_id", "source_format", "conversation_id", "conversation_name",
    "conversation_type", "thread_id", "reply_to", "bundle_id", "sender_id", "sender_name", "sender_kind",
    "sent_at", "sent_at_local", "sent_at_raw", "tz_assumption", "edited", "edited_at", "deleted", "kind",
    "text", "highlights", "mentions", "attachments", "reactions", "custodian", "source_path", "source_member",
    "source_sha256", "source_container_sha256", "source_locator", "raw", "tags", "notes",
)  # fmt: skip


def neutralise(value: Any) -> str:
    """VALUE as a CSV cell that no spreadsheet will evaluate as a formula."""
    if value.__class__ is not str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if value == []:
            return "[]"
        value = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, (list, dict)) else str(
            value)
    return "'" + value if value[:1] in _FIRST else value


_FIRST = frozenset(FORMULA_STARTS)


def write_rows(file: Any, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    writer = csv.writer(file, lineterminator="\r\n")
    writer.writerow(list(header))
    for row in rows:
        writer.writerow([neutralise(value) for value in row])


def csv_line(cells: Iterable[str]) -> str:
    """CELLS (strings) as one CSV record, exactly as ``csv.writer(lineterminator="\\r\\n")`` writes it
    (QUOTE_MINIMAL: a cell with a quote, comma, CR or LF is quoted, its quotes doubled; a test holds
    the two equal). About three times faster than the csv module, whose per-character checks dominate
    a 200,000-message export."""
    return ",".join([
        '"' + cell.replace('"', '""') + '"' if '"' in cell or "," in cell or "\n" in cell or "\r" in cell else cell
        for cell in cells
    ]) + "\r\n"


class CsvWriter:
    name = "messages.csv"

    def __init__(self, folder: Path):
        self.file = open(folder / self.name, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed in close()
        self.file.write(csv_line(COLUMNS))

    def add(self, m: dict[str, Any]) -> None:
        source, export = m["source"], m["export"]
        self.file.write(csv_line([  # neutralise, its common cases inline: this runs for every cell of every row
            ("'" + value if value[:1] in _FIRST else value) if value.__class__ is str
            else "" if value is None else neutralise(value)
            for value in (  # in COLUMNS order
            export["bates"], export["document"], export["role"], m["id"], m["native_id"], m["source_format"],
            m["conversation_id"], m["conversation_name"], m["conversation_type"], m["thread_id"], m["reply_to"],
            m["bundle_id"], m["sender_id"], m["sender_name"], m["sender_kind"], m["sent_at"], export["sent_at_local"],
            m["sent_at_raw"], m["tz_assumption"], m["edited"], m["edited_at"], m["deleted"], m["kind"], m["text"],
            m.get("highlights") or "", m["mentions"], m["attachments"], m["reactions"], m["custodian"],
            source["path"], source["member"], source["sha256"], source["container_sha256"], source["locator"],
            m["raw"], csv_tags(m["tags"]), csv_notes(m["notes"]),
        )]))

    def close(self) -> None:
        self.file.close()
