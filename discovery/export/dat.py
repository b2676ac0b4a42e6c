"""loadfile.dat: a Concordance/Relativity DAT, one row per document (one RSMF file).

Relativity's import defaults: column delimiter U+0014, text qualifier U+00FE (þ), newline inside a
field U+00AE (®), multi-value delimiter ";". The file is UTF-8 with a byte-order mark (Relativity
tells the encoding only from a BOM), so þ and ® are written as their UTF-8 sequences (C3 BE, C2 AE)
and U+0014 as the single byte 14; rows end with CRLF. A value never contains the delimiter or the
qualifier (each becomes U+FFFD, the replacement character) nor a raw line break (it becomes ®).

BEGBATES/ENDBATES are the document's message range (see discovery.export.slices); BEGATTACH/ENDATTACH
equal them (the placeholders for attachments travel inside the RSMF, so a family is one document).
Dates are UTC ("YYYY-MM-DD HH:MM:SS", date and time in one field, as RelativityOne expects).
NATIVE_LINK is the .rsmf, TEXT_LINK its extracted text; hashes are of the .rsmf file. An OPT image
load file is written only when images are produced, which discovery does not do.

TAGS and NOTES (appended last, so positional readers keep working) are the review decisions as of the
export: every tag on any message of the document (';' between values), and every note with its
message's Bates number, author and UTC times (';' between notes; a ';' inside a value becomes ',').
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from discovery.export.review_snapshot import dat_notes, dat_tags
from discovery.export.slices import Document

DELIMITER = "\x14"
QUOTE = "\u00fe"
NEWLINE = "\u00ae"
COLUMNS = (
    "BEGBATES", "ENDBATES", "BEGATTACH", "ENDATTACH", "DOCUMENT_TYPE", "CUSTODIAN", "PLATFORM", "CONVERSATION_ID",
    "CONVERSATION", "CONVERSATION_TYPE", "EVENT_COLLECTION_ID", "SLICE", "DATE_BEGIN_UTC", "DATE_END_UTC",
    "MESSAGE_COUNT", "HIT_COUNT", "ATTACHMENT_COUNT", "PARTICIPANTS", "FILE_NAME", "FILE_SIZE", "MD5_HASH",
    "SHA1_HASH", "SHA256_HASH", "NATIVE_LINK", "TEXT_LINK", "TAGS", "NOTES",
)  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x13\x15-\x1f\x7f]")


def field(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", NEWLINE)
    text = text.replace(DELIMITER, "\ufffd").replace(QUOTE, "\ufffd")
    return QUOTE + _CONTROL.sub("\ufffd", text) + QUOTE


def row(values: list[Any]) -> str:
    return DELIMITER.join(field(value) for value in values) + "\r\n"


def dat_time(iso: str) -> str:
    return iso[:10] + " " + iso[11:19]


def _utc(iso: str) -> str:
    return dat_time(iso) + " UTC"


class DatWriter:
    name = "loadfile.dat"

    def __init__(self, folder: Path):
        self.file = open(folder / self.name, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed in close()
        self.file.write(row(list(COLUMNS)))
        self.rows = 0

    def add(self, doc: Document, native: dict[str, Any]) -> None:
        self.file.write(row([
            doc.begbates, doc.endbates, doc.begbates, doc.endbates, "RSMF", native["custodian"], native["platform"],
            doc.conversation_id, doc.conversation_name, doc.conversation_type, native["eventcollectionid"],
            doc.slice_label + (f" part {doc.part}" if doc.part > 1 else ""), dat_time(native["begin"]),
            dat_time(native["end"]), len(doc.messages), doc.hits, native["attachments"],
            ";".join(p.replace(";", ",") for p in native["participants"]), native["native"].split("/")[-1],
            native["size"], native["md5"], native["sha1"], native["sha256"], native["native"].replace("/", "\\"),
            native["text"].replace("/", "\\"), dat_tags(doc.messages), dat_notes(doc.messages, _utc),
        ]))
        self.rows += 1

    def close(self) -> None:
        self.file.close()


def parse(data: bytes) -> list[dict[str, str]]:
    """Read a DAT written by DatWriter back into rows (for verify and tests)."""
    text = data.decode("utf-8-sig")
    lines = [line for line in text.split("\r\n") if line]
    rows = [[cell.strip(QUOTE).replace(NEWLINE, "\n") for cell in line.split(DELIMITER)] for line in lines]
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, values, strict=True)) for values in rows[1:]]
