"""Any chat-like CSV or JSONL, read through a column map (``--map sender=From,sent_at=Date,text=Body``).

Archivers, compliance tools and ad-hoc scripts write chat as tables with their own column
names; the user says which column holds which model field. Because almost any table "looks
like" CSV, this adapter never wins the content auction on its own (it scores below the
registry's floor): it is used when forced with ``--format generic``.

Field names (map keys): sent_at, text, sender (name; also the id when no sender_id), sender_id,
sender_name, conversation (id and name), conversation_id, conversation_name, native_id,
thread_id, reply_to, and the flags deleted / edited (true, yes, 1, x), attachment (file names,
";"-separated) and kind ("system" rows speak for nobody). A deleted row's text is never
searchable: whatever the tool wrote there is a placeholder, kept in raw only. Columns named
exactly like a field are used without being mapped. A JSONL
column may be a dotted path into nested objects (``user.name``). A mapped column that the file
does not have is one clear error for the file, naming the column and the columns it does have.

Times: epoch numbers (seconds or milliseconds by magnitude) are UTC; text is parsed with
python-dateutil, numeric dates in the day/month order decided once per file, and times without
an offset are read in ``--timezone`` (else UTC); the reading is recorded on each message.
Without a native id column the id is the record's line; without a conversation column the
conversation is the file itself (by content hash), so line ids never collide across files.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from dateutil import parser as date_parser

from discovery.model import Attachment, Mention, Message, SourceError
from discovery.sources._dayorder import decide_order
from discovery.sources._jsonio import sniff_loads
from discovery.sources._localtime import LocalZone
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.encoding import decode, fallback_note, head_text
from discovery.sources.files import SourceFile

FIELDS = ("sent_at", "text", "sender", "sender_id", "sender_name", "conversation", "conversation_id",
          "conversation_name", "native_id", "thread_id", "reply_to", "deleted", "edited", "attachment", "kind")
REQUIRED = ("sent_at", "text")
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2}[./-]\d{1,2}[./-]\d{2,4})\b")
_EPOCH = re.compile(r"^\s*-?\d{9,16}(?:\.\d+)?\s*$")
_TRUE = {"true", "yes", "y", "1", "x", "deleted", "edited"}


class GenericAdapter:
    name = "generic"
    source_format = "generic_csv"  # messages from JSONL files carry "generic_jsonl"
    max_score = 5  # sniff never says more: the auction skips it when that could not change the winner
    description = "Any CSV or JSONL of messages, read through --map FIELD=COLUMN (use with --format generic)"
    limits = (
        "Only the mapped columns: no reactions, attachments, edits or deletions unless the tool that wrote the "
        "file put them in the text; names are whatever the sender column says (no ids unless mapped); times "
        "without an offset are an assumption (--timezone, else UTC)."
    )

    def sniff(self, file: SourceFile) -> int:
        """At most 5, below the auction's floor: tables are too generic to claim by content."""
        try:
            text = head_text(file.head())
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
            return 0
        first = next((line for line in text.split("\n") if line.strip()), "")
        if first.lstrip().startswith("{"):
            try:
                return 5 if isinstance(sniff_loads(first), dict) else 0
            except ValueError:
                return 0
        if "\x00" in text or not any(sep in first for sep in ",;\t|"):
            return 0
        return 5

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        options = options or ParseOptions()
        zone = LocalZone(options.timezone)
        for file in files:
            try:
                for item in _parse_file(file, options.column_map, zone):
                    yield file, item
            except Exception as error:  # noqa: BLE001 - the contract: a bad file is an item, never a crash
                yield file, SourceError(f"cannot read this file as CSV/JSONL: {type(error).__name__}: {error}")


def _parse_file(file: SourceFile, column_map: dict[str, str], zone: LocalZone) -> Iterator[Message | SourceError]:
    unknown = sorted(set(column_map) - set(FIELDS))
    if unknown:
        yield SourceError(f"unknown field(s) in --map: {', '.join(unknown)}; known fields: {', '.join(FIELDS)}")
        return
    if zone.error:
        yield SourceError(zone.error)
    with file.open() as stream:
        text, encoding, fallback = decode(stream.read())
    first = next((line for line in text.split("\n") if line.strip()), "")
    is_jsonl = first.lstrip().startswith("{")
    items, columns = (_jsonl_records if is_jsonl else _csv_records)(text)
    records = [item for item in items if isinstance(item, _Record)]
    if not items:
        yield SourceError("no records in this file")
        return
    mapping, missing = _resolve(column_map, columns, records, is_jsonl)
    if missing:
        yield SourceError(missing)
        return
    file_hash = (file.sha256 or file.hash())
    reader = _Reader(
        mapping=mapping, zone=zone, file_name=file.name, file_hash=file_hash,
        source_format="generic_jsonl" if is_jsonl else "generic_csv",
        encoding_note=fallback_note(encoding, fallback),
        order=_day_order([_get(r.values, mapping.get("sent_at")) for r in records], records),
    )
    reader.learn_people(records)
    for item in items:
        yield reader.message(item) if isinstance(item, _Record) else item


class _Record:
    __slots__ = ("line", "raw", "values")

    def __init__(self, line: int, raw: str, values: Any):
        self.line, self.raw, self.values = line, raw, values


def _csv_records(text: str) -> tuple[list[_Record | SourceError], list[str]]:
    """Rows as dicts by header name, each with its first line number and its exact source lines."""
    pieces = re.split(r"(?<=\n)", text)
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for piece in pieces:
            if piece:
                consumed.append(piece)
                yield piece

    sample = "".join(pieces[:50])
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines(), dialect)
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    except csv.Error as error:
        return [SourceError(f"unreadable CSV header: {error}", "line 1")], []
    columns = [name.strip() for name in header]
    records: list[_Record | SourceError] = []
    consumed.clear()
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            records.append(SourceError(f"unreadable CSV record: {error}", f"line {start}", "".join(consumed)))
            consumed.clear()
            start = reader.line_num + 1
            continue
        raw = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        if any(cell.strip() for cell in row):
            records.append(_Record(start, raw, dict(zip(columns, row, strict=False))))
        start = reader.line_num + 1
    return records, columns


def _jsonl_records(text: str) -> tuple[list[_Record | SourceError], list[str]]:
    records: list[_Record | SourceError] = []
    columns: dict[str, None] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            records.append(SourceError(f"not valid JSON: {error}", f"line {number}", line))
            continue
        if not isinstance(value, dict):
            records.append(SourceError(f"a JSONL record must be an object, not {type(value).__name__}",
                                       f"line {number}", line))
            continue
        columns.update(dict.fromkeys(value))
        records.append(_Record(number, line, value))
    return records, list(columns)


def _resolve(column_map: dict[str, str], columns: list[str], records: list[_Record],
             nested: bool) -> tuple[dict[str, str], str | None]:
    """FIELD -> column: the user's map, plus columns named like a field; or the one error to report."""
    by_lower = {c.lower(): c for c in columns}
    mapping: dict[str, str] = {}
    for field_name in FIELDS:
        wanted = column_map.get(field_name)
        if wanted is None:
            if field_name.lower() in by_lower:
                mapping[field_name] = by_lower[field_name.lower()]
            continue
        found = wanted if wanted in columns else by_lower.get(wanted.lower())
        if found is None and nested and any(_get(r.values, wanted) is not None for r in records):
            found = wanted
        if found is None:
            return {}, (f"column {wanted!r} (mapped to {field_name}) is not in this file; "
                        f"columns found: {', '.join(columns) or '(none)'}")
        mapping[field_name] = found
    absent = [f for f in REQUIRED if f not in mapping]
    if absent:
        return {}, (f"no column for {', '.join(absent)}: map it with --map {absent[0]}=COLUMN; "
                    f"columns found: {', '.join(columns) or '(none)'}")
    return mapping, None


def _get(values: Any, column: str | None) -> Any:
    """A column's value; a dotted path walks into nested objects when no key has that exact name."""
    if column is None or not isinstance(values, dict):
        return None
    if column in values:
        return values[column]
    current: Any = values
    for part in column.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _day_order(values: list[Any], records: list[_Record]) -> tuple[str, str] | None:
    dates = []
    for value, record in zip(values, records, strict=False):
        found = _NUMERIC_DATE.match(value) if isinstance(value, str) else None
        if found and not re.match(r"^\d{4}", found.group(1)):
            dates.append((found.group(1), record.line, bool(re.search(r"[AaPp]\.?\s?[Mm]\b", value))))
    return decide_order(dates) if dates else None


class _Reader:
    """Turns one record into a Message with the file's decisions (map, zone, day order) applied."""

    def __init__(self, *, mapping: dict[str, str], zone: LocalZone, file_name: str, file_hash: str,
                 source_format: str, encoding_note: str | None, order: tuple[str, str] | None):
        self.mapping, self.zone, self.file_name = mapping, zone, file_name
        self.file_hash, self.source_format, self.encoding_note, self.order = file_hash, source_format, \
            encoding_note, order
        self.people: dict[str, str] = {}  # sender name -> sender id, for "@Name" mentions

    def learn_people(self, records: list[_Record]) -> None:
        for record in records:
            name = self.value(record, "sender_name") or self.value(record, "sender")
            if name:
                self.people.setdefault(name, self.value(record, "sender_id") or f"generic:{name}")

    def value(self, record: _Record, field_name: str) -> str | None:
        value = _get(record.values, self.mapping.get(field_name))
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    def message(self, record: _Record) -> Message | SourceError:
        locator = f"line {record.line}"
        raw_time = _get(record.values, self.mapping["sent_at"])
        try:
            sent_at, sent_raw, assumption = self.when(raw_time)
        except (ValueError, OverflowError, OSError, TypeError) as error:
            return SourceError(f"unreadable sent_at {raw_time!r} (column {self.mapping['sent_at']!r}): {error}",
                               locator, record.raw)
        notes = "; ".join(n for n in (assumption, self.encoding_note) if n) or None
        conversation_id = self.value(record, "conversation_id") or self.value(record, "conversation")
        native = self.value(record, "native_id")
        if native is None:
            native = locator if conversation_id is None else f"{self.file_hash[:12]}:{locator}"
        sender = self.value(record, "sender")
        sender_id = self.value(record, "sender_id") or (f"generic:{sender}" if sender else None)
        message = Message(
            native_id=native, source_format=self.source_format,
            conversation_id=f"generic:{conversation_id or self.file_hash[:16]}",
            conversation_name=self.value(record, "conversation_name") or self.value(record, "conversation")
            or (None if conversation_id else self.file_name),
            sent_at=sent_at, sent_at_raw=sent_raw, tz_assumption=notes,
            text=str(_get(record.values, self.mapping["text"]) or ""),
            thread_id=self.value(record, "thread_id"), reply_to=self.value(record, "reply_to"),
            sender_id=sender_id, sender_name=self.value(record, "sender_name") or sender,
            sender_kind="user" if sender_id else "unknown", raw=record.raw, locator=locator,
        )
        self.flags(record, message)
        message.mentions = [Mention(id=ident, name=name, key=f"@{name}") for name, ident in self.people.items()
                            if f"@{name}" in message.text]
        return message

    def flags(self, record: _Record, message: Message) -> None:
        """The optional columns: deletion and edit flags, attachment names, the row's kind."""
        message.deleted = (self.value(record, "deleted") or "").strip().lower() in _TRUE
        message.edited = (self.value(record, "edited") or "").strip().lower() in _TRUE
        if message.deleted:
            message.text = ""
        names = self.value(record, "attachment") or ""
        message.attachments = [Attachment(name=name.strip(), type="file") for name in names.split(";") if name.strip()]
        kind = (self.value(record, "kind") or "").strip().lower()
        if kind:
            message.kind = kind
        if kind in ("system", "service"):
            message.sender_id = message.sender_name = None
            message.sender_kind = "system"

    def when(self, value: Any) -> tuple[datetime, str, str | None]:
        if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("no time in this record")
        raw = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, int | float) or _EPOCH.match(raw):
            number = float(raw)
            if abs(number) >= 1e11:  # milliseconds (a seconds value this big is past the year 5000)
                return datetime.fromtimestamp(number / 1000, tz=UTC), raw, "UTC (epoch milliseconds)"
            return datetime.fromtimestamp(number, tz=UTC), raw, "UTC (epoch seconds)"
        dayfirst = bool(self.order and self.order[0] == "DD/MM")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parsed = date_parser.parse(raw, dayfirst=dayfirst)
        order_note = f"day/month order {self.order[0]} ({self.order[1]})" if self.order and \
            _NUMERIC_DATE.match(raw) else None
        extra = [str(w.message) for w in caught]
        if parsed.tzinfo is not None and parsed.utcoffset() is not None:
            notes = "; ".join(n for n in (order_note, *extra) if n) or None
            return parsed.astimezone(UTC), raw, notes
        moment, label = self.zone.to_utc(parsed.replace(tzinfo=None))
        return moment, raw, "; ".join(n for n in (label, order_note, *extra) if n)


ADAPTER = GenericAdapter()
