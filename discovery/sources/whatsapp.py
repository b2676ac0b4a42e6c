"""WhatsApp "Export chat" text files (Android and iOS), bare or zipped with their media.

A message starts on a line whose whole prefix is a timestamp header (formats.md §6.2); every
other line continues the message before it. Dates are locale-formatted with no zone, so two
things are decided once per file and written on every message's ``tz_assumption``: the zone
(``--timezone``, else UTC) and the day/month order (a field > 12, else dates running forward,
else which field changes more often, else a stated default). Placeholders ("This message was
deleted", "<Media omitted>") are flags and attachments, never searchable text.

The export has no message ids: the native id is the header's line number qualified by the
file's hash, so re-ingesting the same file adds nothing twice while two different exports of
one chat (whose line numbers differ) never overwrite each other's messages.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from discovery.model import Message, SourceError
from discovery.sources import _whatsapp_text as wt
from discovery.sources._dayorder import decide_order
from discovery.sources._localtime import LocalZone
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.encoding import decode, fallback_note, head_text
from discovery.sources.files import HEAD_BYTES, MAX_RATIO, SourceFile

_MAX_CHAT_BYTES = 256 * 1024**2  # a zip member larger than this is not read to find media references
_CHAT_SCORE = 50  # a text scoring at least this is a chat, not a media file of the export


@dataclass
class _Header:
    line: int  # 1-based
    style: str  # "android" | "ios"
    date: str
    time: str
    ampm: str | None
    stamp: str  # the exact timestamp text from the source line
    rest: str  # everything after the header, invisible marks kept
    lines: list[str] = field(default_factory=list)  # the exact source lines of this record


class WhatsAppAdapter:
    name = "whatsapp"
    source_format = "whatsapp_txt"
    description = "WhatsApp \"Export chat\" text (Android or iOS), bare or in a zip with its media"
    limits = (
        "No message ids, threads, replies or reactions; edits only as a marker and deletions only as a "
        "placeholder; times are the exporting phone's local time with no zone; system lines and media "
        "markers are localized; iPhone exports drop media captions; \"Without media\" exports carry only "
        "a placeholder for each attachment."
    )

    def sniff(self, file: SourceFile) -> int:
        try:
            score = _chat_score(head_text(file.head()))
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
            return 0
        if score:
            return score
        return 30 if _is_referenced_media(file) else 0  # a media file a chat in the same zip refers to

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        zone = LocalZone((options or ParseOptions()).timezone)
        media = {PurePosixPath(f.member).name: f for f in files if f.member}
        for file in files:
            try:
                yield from ((file, item) for item in _parse_file(file, zone, media))
            except Exception as error:  # noqa: BLE001 - the contract: a bad file is an item, never a crash
                yield file, SourceError(f"cannot read this WhatsApp export: {type(error).__name__}: {error}")


def _chat_score(text: str) -> int:
    """How chat-like TEXT is: header lines among its first lines, the very first line weighing most."""
    lines = [line for line in text.split("\n")[:60] if line.strip()]
    if not lines:
        return 0
    headers = [wt.match_header(line) for line in lines]
    hits = sum(1 for h in headers if h)
    if not hits:
        return 0
    score = 40 + (30 if headers[0] else 0) + min(hits, 10) * 2
    return min(score, 90)


def _is_referenced_media(file: SourceFile) -> bool:
    if not file.member:
        return False
    try:
        return PurePosixPath(file.member).name in _referenced_media(file.path, _stamp(file.path))
    except OSError:
        return False


def _stamp(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _referenced_media(zip_path: str, _stamp: tuple[int, int]) -> dict[str, str]:
    """Media names the WhatsApp chat(s) inside ZIP_PATH mention, to claim those members too."""
    names: dict[str, str] = {}
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                if info.is_dir() or info.file_size > _MAX_CHAT_BYTES or (
                        info.compress_size and info.file_size / info.compress_size > MAX_RATIO):
                    continue
                try:
                    with archive.open(info) as stream:
                        head = stream.read(HEAD_BYTES)
                        if _chat_score(head_text(head)) < _CHAT_SCORE:
                            continue
                        text = decode(head + stream.read())[0]
                except (OSError, zipfile.BadZipFile, zlib.error, EOFError):
                    continue  # an unreadable member mentions nothing; the others still count (it is recorded when read)
                for found in wt.MEDIA_NAME.finditer(wt.clean(text)):
                    names[next(n for n in found.groups() if n).strip()] = info.filename
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError, EOFError):
        return {}
    return names


def _parse_file(file: SourceFile, zone: LocalZone, media: dict[str, SourceFile]) -> Iterator[Message | SourceError]:
    with file.open() as stream:
        data = stream.read()
    text, encoding, fallback = decode(data)
    if _chat_score(text[:HEAD_BYTES]) < _CHAT_SCORE and _is_referenced_media(file):
        return  # one of the chat's media files: it is an attachment, not a chat
    if zone.error:
        yield SourceError(zone.error)
    records, leading = _split(text)
    if not records:
        yield SourceError("no WhatsApp message header lines found: not a WhatsApp chat export")
        return
    if leading:
        first = records[0].line
        yield SourceError(f"{first - 1} line(s) before the first message header were not part of any message",
                          "line 1", "\n".join(leading))
    order, reason = decide_order([(r.date, r.line, r.ampm is not None) for r in records])
    notes = "; ".join(n for n in (f"day/month order {order} ({reason})", fallback_note(encoding, fallback)) if n)
    file_hash = (file.sha256 or file.hash())[:12]
    name, named = _chat_name(file)
    # A chat named by its export file keeps one id across exports; an unnamed one is this file alone.
    conversation = "whatsapp:" + hashlib.sha256((name if named else f"file:{file_hash}").encode()).hexdigest()[:16]
    senders = {_split_author(r)[0] for r in records} - {None}
    group = len(senders) > 2 or any(_is_group_system(r) for r in records)
    ctype = "group" if group else "dm"
    for record in records:
        yield _build(record, order, zone, notes, media, senders, file_hash, conversation, name, ctype)


def _split(text: str) -> tuple[list[_Header], list[str]]:
    """Group TEXT's lines into records; lines before the first header are returned apart."""
    style = wt.first_header_style(text)
    records: list[_Header] = []
    leading: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        found = wt.parse_header(line, style) if style else None
        if found:
            records.append(_Header(line=number, style=style or "", lines=[line], **found))
        elif records:
            records[-1].lines.append(line)
        elif line.strip():
            leading.append(line)
    while records and records[-1].lines[-1] == "" and len(records[-1].lines) > 1:
        records[-1].lines.pop()  # the file's final newline is not part of the last message
    return records, leading


def _chat_name(file: SourceFile) -> tuple[str, bool]:
    """(name, found): the chat's name from the export's file name ("WhatsApp Chat with X.txt"), else the
    file's own name (found False).

    The name is metadata, not format detection: iOS calls the text `_chat.txt` inside a zip (or
    a folder) named "WhatsApp Chat - X", so that container's name is used instead.
    """
    if file.member:
        candidates = [PurePosixPath(file.member).stem, Path(file.path).stem]
    else:
        candidates = [Path(file.path).stem, Path(file.path).resolve().parent.name]
    for candidate in candidates:
        found = wt.CHAT_FILE_NAME.match(candidate)
        if found:
            return found.group("name").strip(), True
    return candidates[0], False


def _split_author(record: _Header) -> tuple[str | None, str]:
    """(author, body) with invisible marks kept in the body; author None for a system line."""
    rest = record.rest
    clean_rest = wt.clean(rest)
    if record.style == "android":
        author, sep, _ = clean_rest.partition(": ")
        if not sep or (wt.is_system(clean_rest) and (len(author) > 60 or any(q in author for q in "\"\u201c\u201e"))):
            return None, rest
    head, sep, body = rest.partition(": ")
    if not sep:
        return None, rest
    author = wt.clean(head).strip()
    if record.style == "ios" and wt.is_ios_system(body):
        return None, body
    return wt.display_name(author), body


def _is_group_system(record: _Header) -> bool:
    author, body = _split_author(record)
    return author is None and wt.is_group_event(wt.clean(body))


def _build(record: _Header, order: str, zone: LocalZone, notes: str, media: dict[str, SourceFile],
           senders: set[str | None], file_hash: str, conversation: str, name: str, ctype: str
           ) -> Message | SourceError:
    raw = "\n".join(record.lines)
    locator = f"line {record.line}"
    try:
        naive = wt.to_datetime(record.date, record.time, record.ampm, order)
    except ValueError as error:
        return SourceError(f"unreadable date or time {record.stamp!r} (read as {order}): {error}", locator, raw)
    sent_at, label = zone.to_utc(naive)
    message = Message(
        native_id=f"{file_hash}:{locator}", source_format=WhatsAppAdapter.source_format, conversation_id=conversation,
        conversation_name=name, conversation_type=ctype, sent_at=sent_at, sent_at_raw=record.stamp,
        tz_assumption=f"{label}; {notes}", raw=raw, locator=locator,
    )
    author, first_body = _split_author(record)
    body_lines = [first_body, *record.lines[1:]]
    if author is None:
        text = wt.clean("\n".join(body_lines)).strip()
        message.kind = "call" if wt.is_call(text) else "system"
        message.sender_kind = "system"
        message.text = text
        return message
    message.sender_id = f"whatsapp:{author}"
    message.sender_name = author
    message.sender_kind = "user"
    _content(message, body_lines, media, senders)
    return message


def _content(message: Message, body_lines: list[str], media: dict[str, SourceFile], senders: set[str | None]) -> None:
    """Flags, attachments, mentions and the searchable text of an authored message."""
    body = "\n".join(body_lines)
    text, mentions = wt.mentions(body, {s for s in senders if s})
    text = wt.clean(text).strip()
    text, edited = wt.strip_edited(text)
    message.edited = edited
    if wt.is_call(text):
        message.kind, message.text = "call", text
        return
    if wt.DELETED.match(text):
        message.deleted = True  # the placeholder is not content: text stays empty
        return
    attachment, text = wt.attachment(text)
    if attachment:
        member = media.get(attachment.name or "")
        if member is not None:
            attachment.size = member.size
            attachment.key = member.member
        message.attachments.append(attachment)
        message.kind = attachment.type or "file"
    message.text = text
    message.mentions = mentions


ADAPTER = WhatsAppAdapter()
