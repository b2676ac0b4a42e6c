"""DiscordChatExporter CSV (``source_format = "dce_csv"``): one row per message, no ids at all.

DCE writes the header ``AuthorID,Author,Date,Content,Attachments,Reactions`` unquoted, then every
field double-quoted; ``Date`` is .NET round-trip ``o`` (``2024-10-10T09:02:11.4890000+08:00``) in
current versions, a culture-formatted local time in old ones. Attachments are comma-joined URLs,
reactions ``name (count)`` comma-joined. The channel id is only in DCE's file name
(``Guild - Category - channel [1293850012345678901].csv``).

Ids are synthesized, stably across re-exports: ``"<AuthorID>:<UTC time to the microsecond>"``,
with ``#2``, ``#3`` for the rare repeat inside one file. The message snowflake cannot be rebuilt
(its low bits are not in the file), so a CSV and a JSON export of the same channel do not
deduplicate against each other.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as date_parser

from discovery.model import Attachment, Message, Reaction, SourceError
from discovery.sources._jsonio import READ_ERRORS
from discovery.sources._times import parse_iso
from discovery.sources.base import ParseOptions
from discovery.sources.files import SourceFile

SOURCE_FORMAT = "dce_csv"
HEADER = ["AuthorID", "Author", "Date", "Content", "Attachments", "Reactions"]
_HEADER_LINE = ",".join(HEADER)
_CHANNEL_ID = re.compile(r"\[(\d{15,22})\]")
_REACTION = re.compile(r"(.+?) \((\d+)\)(?:,|$)")
_URL_START = re.compile(r",(?=[A-Za-z][\w+.-]*://)")


def is_dce_csv(text: str) -> bool:
    """True when TEXT starts with DCE's CSV header (quoted or not)."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if len(first) - first.count('"') != len(_HEADER_LINE):
        return False  # (the length it has without its quotes: a long first line is never the header)
    return first.replace('"', "") == _HEADER_LINE


def _conversation(file: SourceFile) -> tuple[str, str]:
    """("discord:<channel id>", name) from DCE's file name; the file stem when it has no ``[id]``."""
    stem = PurePosixPath(file.name).stem
    found = _CHANNEL_ID.search(stem)
    name = _CHANNEL_ID.sub("", stem).strip() or stem
    return "discord:" + (found.group(1) if found else stem), name


def _rows(file: SourceFile) -> Iterator[tuple[int, list[str]] | SourceError]:
    """(first line number, fields) per CSV record; decoding problems end the file with one error."""
    try:
        with file.open() as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            reader = csv.reader(text)
            line = 1
            try:
                for row in reader:
                    yield line, row
                    line = reader.line_num + 1
            except (csv.Error, UnicodeDecodeError) as error:
                yield SourceError(f"unreadable CSV ({type(error).__name__}: {error})", f"line {line}")
    except READ_ERRORS as error:
        yield SourceError(f"cannot read this file ({type(error).__name__}: {error})")


def _raw(row: list[str]) -> str:
    """The record as DCE wrote it: every field quoted, quotes doubled."""
    return ",".join('"' + field.replace('"', '""') + '"' for field in row)


def _time(value: str, options: ParseOptions) -> tuple[datetime, str | None]:
    """(UTC time, tz assumption): ISO with offset is exact; an old culture-formatted date is local."""
    try:
        moment, zoned = parse_iso(value)
    except ValueError:
        try:
            moment, zoned = date_parser.parse(value), False
        except (ValueError, OverflowError) as error:
            raise ValueError("neither ISO 8601 nor a date DCE's culture formats produce") from error
        if moment.tzinfo is not None:
            return moment.astimezone(UTC), None
    if zoned:
        return moment, None
    if options.timezone:
        try:
            zone = ZoneInfo(options.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {options.timezone!r}") from error
        return moment.replace(tzinfo=zone).astimezone(UTC), f"{options.timezone} (given at ingest)"
    return moment.replace(tzinfo=UTC), "UTC (no offset in the file and no time zone given)"


def _attachments(value: str) -> list[Attachment]:
    parts = _URL_START.split(value) if "://" in value else value.split(",")
    result = []
    for url in (part.strip() for part in parts):
        if url:
            name = unquote(PurePosixPath(url.split("?", 1)[0]).name) or None
            result.append(Attachment(name=name, type="file", key=url))
    return result


def _reactions(value: str) -> list[Reaction]:
    return [Reaction(emoji=emoji.strip(), count=int(count)) for emoji, count in _REACTION.findall(value)]


def parse_csv(file: SourceFile, options: ParseOptions) -> Iterator[Message | SourceError]:
    """Every row of a DCE CSV as a Message; a short or undatable row becomes a SourceError."""
    conversation_id, conversation_name = _conversation(file)
    seen: dict[str, int] = {}
    for item in _rows(file):
        if isinstance(item, SourceError):
            yield item
            return
        line, row = item
        locator = f"line {line}"
        if line == 1:
            if [field.strip() for field in row] != HEADER:
                yield SourceError(f"not a DiscordChatExporter CSV header: {row!r}", locator, _raw(row))
                return
            continue
        if len(row) != len(HEADER):
            yield SourceError(f"row has {len(row)} fields, a DCE CSV row has {len(HEADER)}", locator, _raw(row))
            continue
        author_id, author, date, content, attachments, reactions = row
        try:
            sent_at, assumption = _time(date, options)
        except (ValueError, OverflowError) as error:
            yield SourceError(f"unreadable Date {date!r} ({error})", locator, _raw(row))
            continue
        native_id = f"{author_id}:{sent_at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
        seen[native_id] = seen.get(native_id, 0) + 1
        if seen[native_id] > 1:
            native_id += f"#{seen[native_id]}"
        files = _attachments(attachments)
        yield Message(
            native_id=native_id, source_format=SOURCE_FORMAT, conversation_id=conversation_id,
            conversation_name=conversation_name, conversation_type="channel", sent_at=sent_at, sent_at_raw=date,
            tz_assumption=assumption, text=content.strip(), sender_id=author_id or None, sender_name=author or None,
            sender_kind="user" if author_id else "unknown", kind="file" if files and not content.strip() else "message",
            attachments=files, reactions=_reactions(reactions), raw=_raw(row), locator=locator,
        )
