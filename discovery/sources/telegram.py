"""Telegram Desktop "Export chat history" / "Export Telegram data" (`result.json`).

Two shapes: one chat (`{name, type, id, messages}`) or the whole account (`chats.list[]` and
`left_chats.list[]`, each such a chat). The file can be hundreds of megabytes, so it is
streamed with ijson one message at a time, through a filter that repairs the invalid `\\xHH`
escapes Telegram's own JSON writer emits for control bytes (formats.md §5.2); a message that
needed the repair says so in its ``tz_assumption`` notes. Times come from `date_unixtime` (UTC)
when present; older exports only have `date`, the exporting PC's local time without an offset,
which is read in ``--timezone`` (else UTC) and that assumption recorded.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ijson

from discovery.model import Attachment, Mention, Message, Reaction, SourceError
from discovery.sources import _telegram_media as media
from discovery.sources._localtime import LocalZone
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.encoding import detect, head_text
from discovery.sources.files import SourceFile

CHAT_TYPES = {
    "saved_messages": "dm", "replies": "dm", "personal_chat": "dm", "bot_chat": "dm",
    "private_group": "group", "private_supergroup": "group", "public_supergroup": "group",
    "private_channel": "channel", "public_channel": "channel",
}
# Where chats live: the root itself (single-chat export) or the whole-account lists.
_CHAT_PREFIXES = {"": "", "chats.list.item": "/chats/list", "left_chats.list.item": "/left_chats/list"}
# What Telegram writes instead of a media path when the file was not exported: not content.
_PLACEHOLDERS = ("(File not included.", "(File exceeds maximum size.", "(File unavailable")
_MEDIA_KINDS = {
    "sticker": "sticker", "voice_message": "audio", "audio_file": "audio", "video_file": "video",
    "video_message": "video", "animation": "video",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_REPAIR_NOTE = "repaired Telegram's invalid \\xHH escape(s) for control bytes before reading the JSON"


class _EscapeRepair:
    """A byte stream that rewrites Telegram's `\\xHH` escapes as JSON's `\\u00HH`, chunk by chunk.

    Only a backslash that is itself unescaped (an even run of backslashes before it) starts an
    escape, so `\\\\x41` (an escaped backslash, then "x41") is left alone. A chunk that ends
    inside a possible escape keeps that tail for the next read.
    """

    _ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\x([0-9A-Fa-f]{2})")
    _TAIL = re.compile(rb"\\+(?:x[0-9A-Fa-f]?)?\Z")

    def __init__(self, stream: Any, skip: int = 0):
        self.stream = stream
        self.carry = b""
        self.repairs = 0
        if skip:
            stream.read(skip)

    def read(self, size: int = 65536) -> bytes:
        if size == 0:
            return b""  # ijson probes with read(0) to learn whether the stream gives bytes or text
        while True:
            chunk = self.stream.read(max(size, 4096))
            data = self.carry + chunk
            if not chunk:
                self.carry = b""
                return self._fix(data)
            tail = self._TAIL.search(data)
            cut = tail.start() if tail else len(data)
            self.carry = data[cut:]
            if cut:
                return self._fix(data[:cut])

    def _fix(self, data: bytes) -> bytes:
        fixed, count = self._ESCAPE.subn(rb"\1\\u00\2", data)
        self.repairs += count
        return fixed


@dataclass
class _Chat:
    pointer: str
    meta: dict[str, Any] = field(default_factory=dict)
    count: int = 0  # messages seen so far, for the JSON pointer
    waiting: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # until the chat's id is known
    topics: set[int] = field(default_factory=set)  # forum topic roots (topic_created service messages)


class TelegramAdapter:
    name = "telegram"
    source_format = "telegram_json"
    description = "Telegram Desktop JSON export (result.json): one chat or the whole account"
    limits = (
        "Only what Telegram Desktop exported: no deleted messages, no edit history (only the last edit "
        "time), media present only if the export settings included them (otherwise a placeholder), "
        "no reactions in older exports; `date` is the exporting PC's local time (`date_unixtime` is UTC)."
    )

    def sniff(self, file: SourceFile) -> int:
        try:
            text = head_text(file.head()).lstrip()
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
            return 0
        if not text.startswith("{"):
            return 30 if _is_media(file) else 0  # a photo or file that the export's result.json names
        score = 0
        if re.search(r'"personal_information"\s*:\s*\{', text) and '"about"' in text:
            score = 85
        if re.search(r'"type"\s*:\s*"(?:' + "|".join(CHAT_TYPES) + r')"', text):
            score = max(score, 50) + (25 if re.search(r'"messages"\s*:\s*\[', text) else 0)
        if score:
            score += 10 * bool(re.search(r'"date_unixtime"\s*:\s*"\d+"', text))
            score += 5 * ('"text_entities"' in text)
        return min(score, 95)

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        zone = LocalZone((options or ParseOptions()).timezone)
        media_files = [f for f in files if _is_media(f)]
        sizes = {found[2]: f.size for f in media_files if (found := media.relative_path(f))}
        skip = {id(f) for f in media_files}
        for file in files:
            if id(file) in skip:
                continue  # read through result.json, which names it: its size goes on the attachment
            if zone.error:
                yield file, SourceError(zone.error)
            try:
                for item in _parse_file(file, zone):
                    if isinstance(item, Message):
                        for attachment in item.attachments:
                            if attachment.size is None and attachment.key in sizes:
                                attachment.size = sizes[attachment.key]
                    yield file, item
            except Exception as error:  # noqa: BLE001 - the contract: a bad file is an item, never a crash
                yield file, SourceError(f"cannot read this Telegram export: {type(error).__name__}: {error}")


def _is_media(file: SourceFile) -> bool:
    try:
        return not head_text(file.head()).lstrip().startswith("{") and media.is_referenced_media(file)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
        return False


def _parse_file(file: SourceFile, zone: LocalZone) -> Iterator[Message | SourceError]:
    encoding, bom = detect(file.head())
    if encoding != "utf-8":
        yield SourceError(f"Telegram writes UTF-8 JSON; this file looks like {encoding}")
        return
    found = 0
    with file.open() as raw_stream:
        stream = _EscapeRepair(raw_stream, skip=bom)
        try:
            for item in _walk(ijson.parse(stream, use_float=True), zone):
                found += isinstance(item, Message)
                yield item
        except ijson.JSONError as error:
            yield SourceError(f"invalid JSON after {found} messages were read: {_short(error)}")
            return
    if not found:
        yield SourceError("no Telegram chat messages found in this file")


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:300]


def _walk(events: Iterator[tuple[str, str, Any]], zone: LocalZone) -> Iterator[Message | SourceError]:
    """Follow ijson's event stream: chat metadata first, then each message as a whole object."""
    chats: dict[str, _Chat] = {}
    counters: dict[str, int] = {}
    for prefix, event, value in events:
        if prefix in _CHAT_PREFIXES and event == "start_map":
            index = counters.get(prefix, 0)
            counters[prefix] = index + 1
            base = _CHAT_PREFIXES[prefix]
            chats[prefix] = _Chat(pointer=f"{base}/{index}" if base else "")
        elif event in ("string", "number", "null") and prefix.rpartition(".")[0] in chats:
            parent, _, key = prefix.rpartition(".")
            chats[parent].meta[key] = value
        elif event == "start_map" and prefix.endswith("messages.item") \
                and prefix[: -len("messages.item")].rstrip(".") in chats:
            chat = chats[prefix[: -len("messages.item")].rstrip(".")]
            record = _build(events)
            pointer = f"{chat.pointer}/messages/{chat.count}"
            chat.count += 1
            if "id" not in chat.meta:
                chat.waiting.append((pointer, record))
                continue
            yield _convert(record, chat, pointer, zone)
        elif event == "end_map" and prefix in chats:
            chat = chats.pop(prefix)
            for pointer, record in chat.waiting:
                yield _convert(record, chat, pointer, zone)


def _build(events: Iterator[tuple[str, str, Any]]) -> dict[str, Any]:
    """The rest of one JSON object (its start_map already consumed), as a dict."""
    builder = ijson.ObjectBuilder()
    builder.event("start_map", None)
    depth = 1
    for _prefix, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
    return builder.value


def _convert(record: dict[str, Any], chat: _Chat, pointer: str, zone: LocalZone) -> Message | SourceError:
    raw = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return _message(record, chat, pointer, zone, raw)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError) as error:
        return SourceError(f"unreadable Telegram message: {type(error).__name__}: {error}", pointer, raw)


def _message(record: dict[str, Any], chat: _Chat, pointer: str, zone: LocalZone, raw: str) -> Message:
    if not isinstance(record, dict) or "id" not in record:
        raise ValueError("a message without an id")
    if record.get("type") == "unsupported":
        raise ValueError("Telegram marked this message unsupported: it exported only its id")
    sent_at, sent_raw, assumption = _when(record, "date_unixtime", "date", zone)
    if _has_control(record):
        assumption += "; " + _REPAIR_NOTE
    chat_id = chat.meta["id"]
    message = Message(
        native_id=str(record["id"]),
        source_format=TelegramAdapter.source_format,
        conversation_id=f"telegram:{chat_id}",
        conversation_name=chat.meta.get("name") or ("Saved Messages" if chat.meta.get("type") == "saved_messages"
                                                     else None),
        conversation_type=CHAT_TYPES.get(str(chat.meta.get("type"))),
        sent_at=sent_at,
        sent_at_raw=sent_raw,
        tz_assumption=assumption,
        raw=raw,
        locator=pointer,
    )
    if record.get("edited_unixtime") or record.get("edited"):
        message.edited = True
        message.edited_at = _when(record, "edited_unixtime", "edited", zone)[0]
    reply = record.get("reply_to_message_id")
    if reply is not None:
        if reply in chat.topics and "reply_to_peer_id" not in record:
            message.thread_id = str(reply)  # a forum topic's messages "reply" to the topic's creation
        else:
            message.reply_to = str(reply)
    if record.get("type") == "service":
        _service(record, message, chat)
    else:
        _authored(record, message, chat)
    return message


def _has_control(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_CONTROL.search(value))
    if isinstance(value, dict):
        return any(_has_control(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_control(v) for v in value)
    return False


def _when(record: dict[str, Any], unix_key: str, local_key: str, zone: LocalZone) -> tuple[datetime, str, str]:
    unix, local = record.get(unix_key), record.get(local_key)
    if unix not in (None, ""):
        moment = datetime.fromtimestamp(int(str(unix)), tz=UTC)
        local_note = f"; {local_key} {local!r} is the exporting PC's local time" if local else ""
        return moment, str(unix), f"UTC ({unix_key}, epoch seconds{local_note})"
    if not isinstance(local, str):
        raise ValueError(f"no {unix_key} and no usable {local_key}")
    parsed = datetime.fromisoformat(local)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC), local, f"offset in the source ({local_key})"
    moment, label = zone.to_utc(parsed)
    return moment, local, f"{label}; Telegram {local_key} has no offset"


def _sender_id(value: Any) -> str | None:
    if value is None:
        return None
    return f"user{value}" if isinstance(value, int) else str(value)


def _authored(record: dict[str, Any], message: Message, chat: _Chat) -> None:
    message.sender_id = _sender_id(record.get("from_id"))
    message.sender_name = record.get("from") or record.get("author")
    if message.sender_id and message.sender_id.startswith("user"):
        bot_id = f"user{chat.meta.get('id')}"
        message.sender_kind = "bot" if chat.meta.get("type") == "bot_chat" and message.sender_id == bot_id else "user"
    text, mentions = _text(record)
    extra = _extra_text(record)
    message.text = "\n".join(part for part in (text, extra) if part)
    message.mentions = mentions
    attachment = _attachment(record)
    if attachment:
        message.attachments.append(attachment)
    message.reactions = _reactions(record.get("reactions"))
    message.kind = _kind(record)


def _text(record: dict[str, Any]) -> tuple[str, list[Mention]]:
    """Flat searchable text: mentions as @Name, text links as "label (url)", markup dropped."""
    parts = record.get("text_entities")
    if not isinstance(parts, list) or (not parts and record.get("text")):
        parts = record.get("text", "")
    if isinstance(parts, str):
        return parts, []
    out: list[str] = []
    mentions: list[Mention] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        kind, text = part.get("type"), str(part.get("text", ""))
        if kind == "mention":
            mentions.append(Mention(id=None, name=text.lstrip("@"), key=text))
        elif kind == "mention_name":
            user = part.get("user_id")
            mentions.append(Mention(id=_sender_id(user), name=text, key=text))
            text = text if text.startswith("@") else "@" + text
        elif kind == "text_link" and part.get("href") and part["href"] != text:
            text = f"{text} ({part['href']})"
        out.append(text)
    return "".join(out), mentions


def _extra_text(record: dict[str, Any]) -> str:
    """Searchable text that lives outside `text`: polls, shared contacts and places."""
    lines: list[str] = []
    poll = record.get("poll")
    if isinstance(poll, dict):
        lines.append(str(poll.get("question", "")))
        lines += [str(answer.get("text", "")) for answer in poll.get("answers") or [] if isinstance(answer, dict)]
    contact = record.get("contact_information")
    if isinstance(contact, dict):
        lines.append(" ".join(str(contact.get(k) or "") for k in ("first_name", "last_name", "phone_number")).strip())
    lines += [str(record[key]) for key in ("performer", "title", "place_name", "address") if record.get(key)]
    location = record.get("location_information")
    if isinstance(location, dict):
        lines.append(f"{location.get('latitude')}, {location.get('longitude')}")
    return "\n".join(line for line in lines if line)


def _attachment(record: dict[str, Any]) -> Attachment | None:
    if "photo" in record:
        path, kind, size = record["photo"], "image", record.get("photo_file_size")
    elif "file" in record:
        path, size = record["file"], record.get("file_size")
        kind = _MEDIA_KINDS.get(record.get("media_type", ""), "file")
    else:
        return None
    missing = not isinstance(path, str) or path.startswith(_PLACEHOLDERS)
    name = record.get("file_name") or (None if missing else path.rsplit("/", 1)[-1])
    if kind == "sticker" and not name:
        name = record.get("sticker_emoji")
    return Attachment(name=name, type=kind, size=size if isinstance(size, int) else None,
                      key=None if missing else path)


def _kind(record: dict[str, Any]) -> str:
    if "photo" in record:
        return "image"
    if "file" in record:
        return _MEDIA_KINDS.get(record.get("media_type", ""), "file")
    for key, kind in (("poll", "poll"), ("contact_information", "contact"), ("location_information", "location")):
        if key in record:
            return kind
    return "forward" if record.get("forwarded_from") else "message"


def _reactions(items: Any) -> list[Reaction]:
    reactions = []
    for item in items if isinstance(items, list) else []:
        emoji = item.get("emoji") or (f"custom:{item['document_id']}" if item.get("document_id") else "?")
        users = [_sender_id(r.get("from_id")) or str(r.get("from")) for r in item.get("recent") or []]
        reactions.append(Reaction(emoji=emoji, count=int(item.get("count", len(users) or 1)), users=users))
    return reactions


def _service(record: dict[str, Any], message: Message, chat: _Chat) -> None:
    """Service messages ("X added Y") are the system's voice: the actor goes in the text, not the sender."""
    message.kind = "call" if record.get("action") in ("phone_call", "group_call") else "service"
    message.sender_kind = "system"
    message.text = _service_text(record)
    if record.get("action") == "topic_created":
        chat.topics.add(record["id"])


def _service_text(record: dict[str, Any]) -> str:
    actor = record.get("actor") or "Someone"
    action = str(record.get("action", "service message"))
    members = ", ".join(str(m) for m in record.get("members") or [] if m)
    title = record.get("title")
    templates = {
        "create_group": f"{actor} created group \u201c{title}\u201d" + (f" with {members}" if members else ""),
        "create_channel": f"{actor} created channel \u201c{title}\u201d",
        "invite_members": f"{actor} added {members}",
        "remove_members": f"{actor} removed {members}",
        "join_group_by_link": f"{actor} joined the group via invite link",
        "edit_group_title": f"{actor} changed the group name to \u201c{title}\u201d",
        "pin_message": f"{actor} pinned message {record.get('message_id')}",
        "topic_created": f"{actor} created topic \u201c{title}\u201d",
        "migrate_to_supergroup": f"{actor} converted this group to a supergroup",
        "clear_history": f"{actor} cleared the history",
    }
    if action in ("phone_call", "group_call"):
        details = [f"{record['duration_seconds']} s" if "duration_seconds" in record else "",
                   str(record.get("discard_reason") or "")]
        text = f"{actor} {action.replace('_', ' ')}" + (f" ({', '.join(d for d in details if d)})"
                                                       if any(details) else "")
    else:
        text = templates.get(action) or " ".join(
            part for part in (f"{actor}:", action.replace("_", " "), f"\u201c{title}\u201d" if title else "", members)
            if part)
    own, _ = _text(record)
    return f"{text}\n{own}" if own else text


ADAPTER = TelegramAdapter()
