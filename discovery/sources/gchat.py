"""Google Chat from Google Takeout (``source_format = "gchat_takeout"``).

Layout: ``Google Chat/Groups/{Space <id>|DM <id>}/messages.json`` (``{"messages": [...]}``) with a
``group_info.json`` (space name, members) beside it, and ``Google Chat/Users/User <id>/user_info.json``.
A message belongs to the group of its folder; ``messages.json`` is streamed twice (first only the
``topic_id``s, to know which topics are threads, then the messages).

Ids: ``native_id`` is ``message_id`` (``"<group>/<topic>/<message>"``; very old exports have none,
then ``topic_id@created_date`` stands in). ``conversation_id`` is ``"gchat:" + group id`` from the
folder name (``Space AAAAr3fQx9E`` -> ``gchat:AAAAr3fQx9E``). Threads: messages sharing a ``topic_id``
with at least one other message get ``thread_id`` = the topic's first message. ``reply_to`` is the
quoted message's id when ``quoted_message_metadata`` names it; the quoted text is searchable.
Times: English prose ``"Tuesday, March 5, 2024 at 9:15:03\\u202fAM UTC"`` (or day-first
``"Tuesday, 5 March 2024 at 09:15:03 UTC"``), parsed exactly; a missing zone is read as UTC and
says so in ``tz_assumption``. Senders are keyed by email (absent for deleted users: then no id).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import ijson

from discovery.model import Attachment, Mention, Message, Reaction, SourceError
from discovery.sources._jsonio import (
    READ_ERRORS,
    head_keys,
    head_text,
    list_of,
    load_json,
    obj_of,
    raw_json,
    stream_json,
    text_of,
)
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.files import SourceFile

SOURCE_FORMAT = "gchat_takeout"
_MONTHS = {name: number for number, names in enumerate(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
     ("december", "dec")], 1) for name in names}
_DATE = re.compile(
    r"(?:[A-Za-z]+,\s*)?(?:(?P<mon>[A-Za-z]+)\.?\s+(?P<day>\d{1,2}),?|(?P<day2>\d{1,2})\s+(?P<mon2>[A-Za-z]+)\.?,?)"
    r"\s+(?P<year>\d{4}),?\s+(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"[\s\u202f\u00a0]*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*(?P<zone>UTC|GMT|Z)?"
)
_MEDIA = {"png": "image", "jpg": "image", "jpeg": "image", "gif": "image", "heic": "image", "mp4": "video",
          "mov": "video", "mp3": "audio", "m4a": "audio", "wav": "audio"}


class _Bad(Exception):
    """A record that cannot become a message; reported as a SourceError."""


def parse_date(value: str) -> tuple[datetime, str | None]:
    """(UTC datetime, tz assumption) for a Takeout date string; ValueError naming the problem."""
    match = _DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a Google Chat date: {value!r}")
    month_name = (match.group("mon") or match.group("mon2")).lower()
    if month_name not in _MONTHS:
        raise ValueError(f"unknown month {month_name!r} in {value!r}")
    hour, minute, second = int(match.group("h")), int(match.group("m")), int(match.group("s") or 0)
    ampm = (match.group("ampm") or "").replace(".", "").upper()
    if ampm:
        if not 1 <= hour <= 12:
            raise ValueError(f"hour {hour} with {ampm} in {value!r}")
        hour = hour % 12 + (12 if ampm == "PM" else 0)
    day = int(match.group("day") or match.group("day2"))
    moment = datetime(int(match.group("year")), _MONTHS[month_name], day, hour, minute, second, tzinfo=UTC)
    return moment, None if match.group("zone") else "UTC (the date has no zone; Takeout writes UTC)"


@dataclass
class _Group:
    id: str
    name: str | None
    type: str


def _folder(file: SourceFile) -> tuple[str, tuple[str, ...]]:
    if file.member is not None:
        return file.path, PurePosixPath(file.member.replace("\\", "/")).parts[:-1]
    return "", Path(file.path).parts[:-1]


def _group(folder: tuple[str, ...], info: dict[str, Any]) -> _Group:
    """The conversation of a group folder: ``Space <id>`` / ``DM <id>``, named from group_info.json."""
    folder_name = folder[-1] if folder else "unknown"
    kind, _, group_id = folder_name.partition(" ")
    group_id = group_id or folder_name
    members = [text_of(obj_of(m).get("name")) or text_of(obj_of(m).get("email")) for m in list_of(info.get("members"))]
    if kind == "DM":
        names = ", ".join(name for name in members if name)
        return _Group("gchat:" + group_id, "DM: " + names if names else None, "dm" if len(members) <= 2 else "group")
    return _Group("gchat:" + group_id, text_of(info.get("name")) or None, "channel")


def _topics(file: SourceFile) -> dict[str, tuple[int, str]]:
    """topic_id -> (number of messages, the thread root's id) from a first, cheap streaming pass."""
    topics: dict[str, tuple[int, str]] = {}
    try:
        with file.open() as stream:
            for message in ijson.items(stream, "messages.item", use_float=True):
                message = obj_of(message)
                topic, native_id = text_of(message.get("topic_id")), text_of(message.get("message_id"))
                if topic:
                    count, root = topics.get(topic, (0, native_id))
                    if native_id.rsplit("/", 1)[-1] == topic:
                        root = native_id  # the root's own id ends in its topic id
                    topics[topic] = (count + 1, root)
    except (ijson.JSONError, ValueError, RecursionError, *READ_ERRORS):
        pass  # the second pass reports the problem with its position
    return topics


def _message(obj: Any, group: _Group, topics: dict[str, tuple[int, str]], locator: str) -> Message:
    if not isinstance(obj, dict):
        raise _Bad(f"message record is a JSON {type(obj).__name__}, not an object")
    created = obj.get("created_date")
    if not isinstance(created, str):
        raise _Bad("message has no created_date")
    try:
        sent_at, assumption = parse_date(created)
    except ValueError as error:
        raise _Bad(f"created_date: {error}") from None
    topic = text_of(obj.get("topic_id"))
    native_id = text_of(obj.get("message_id")) or f"{topic}@{created}"
    creator = obj_of(obj.get("creator"))
    deleted = obj.get("message_state") == "DELETED" or bool(obj.get("deleted_date") or obj.get("deletion_metadata"))
    text = text_of(obj.get("text"))
    message = Message(
        native_id=native_id, source_format=SOURCE_FORMAT, conversation_id=group.id, conversation_name=group.name,
        conversation_type=group.type, sent_at=sent_at, sent_at_raw=created, tz_assumption=assumption,
        sender_id=text_of(creator.get("email")) or None, sender_name=text_of(creator.get("name")) or None,
        sender_kind="bot" if creator.get("user_type") == "Bot" else "user" if creator else "unknown",
        deleted=deleted, mentions=_mentions(text, obj.get("annotations")), raw=raw_json(obj), locator=locator,
        attachments=[_attachment(obj_of(item)) for item in list_of(obj.get("attached_files"))],
        reactions=[_reaction(obj_of(item)) for item in list_of(obj.get("reactions"))],
    )
    count, root = topics.get(topic, (0, ""))
    if count > 1:
        message.thread_id = root or topic
    quoted = obj_of(obj.get("quoted_message_metadata"))
    message.reply_to = text_of(quoted.get("message_id")) or None
    if not deleted:
        message.text = "\n".join(part.strip() for part in (text, text_of(quoted.get("text"))) if part.strip())
    if message.attachments and not message.text and not deleted:
        message.kind = "file"
    _set_edit(message, obj)
    return message


def _set_edit(message: Message, obj: dict[str, Any]) -> None:
    updated = obj.get("updated_date")
    versions = list_of(obj.get("previous_message_versions"))
    if not updated and not versions:
        return
    message.edited = True
    for candidate in [updated, *(obj_of(v).get("updated_date") for v in reversed(versions))]:
        if isinstance(candidate, str):
            try:
                message.edited_at = parse_date(candidate)[0]
                return
            except ValueError:
                continue


def _mentions(text: str, annotations: Any) -> list[Mention]:
    """User mentions from ``annotations`` (``user_mention_metadata``); the name is the span in the text."""
    result = []
    for item in list_of(annotations):
        item = obj_of(item)
        meta = obj_of(item.get("user_mention_metadata"))
        if not meta:
            continue
        start, length = item.get("start_index"), item.get("length")
        span = text[start : start + length] if isinstance(start, int) and isinstance(length, int) else ""
        user = obj_of(meta.get("id"))
        result.append(Mention(id=text_of(user.get("id")) or None, name=span.lstrip("@") or None, key=span or None))
    return result


def _attachment(item: dict[str, Any]) -> Attachment:
    name = text_of(item.get("original_name")) or text_of(item.get("export_name")) or None
    extension = (name or "").rsplit(".", 1)[-1].lower()
    return Attachment(name=name, type=_MEDIA.get(extension, "file"), key=text_of(item.get("export_name")) or None)


def _reaction(item: dict[str, Any]) -> Reaction:
    emails = [email for email in list_of(item.get("reactor_emails")) if isinstance(email, str)]
    return Reaction(emoji=text_of(obj_of(item.get("emoji")).get("unicode")), count=len(emails), users=emails)


def _score(text: str) -> int:
    body = text.lstrip()
    if not body.startswith("{"):
        return 0
    keys = head_keys(body)
    if "messages" in keys and {"created_date", "creator"} & keys:
        return 95
    if {"user", "membership_info"} <= keys:
        return 75
    if "members" in keys and "user_type" in keys and not keys - {"name", "members", "email", "user_type"}:
        return 70  # group_info.json
    return 0


class GoogleChatAdapter:
    """Google Chat spaces and DMs from a Google Takeout archive."""

    name = "gchat"
    source_format = SOURCE_FORMAT
    description = "Google Chat via Google Takeout: spaces and DMs (messages.json + group_info.json)"
    limits = (
        "Takeout holds only the exporting user's spaces and DMs, as that user saw them. Deleted messages keep "
        "no text. Edits keep the final text; previous_message_versions (when present) is kept only in raw. "
        "Attached files are the copies Takeout saved beside messages.json (names map '?' to '_'); Drive links "
        "are links. Deleted users have no email. Google publishes no spec for this format; Vault exports are "
        "a different format."
    )

    def sniff(self, file: SourceFile) -> int:
        """Score by content: messages.json, group_info.json and user_info.json shapes."""
        return _score(head_text(file))

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        """Read each group's group_info.json first, then stream its messages.json."""
        infos: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        message_files = []
        for file in files:
            keys = head_keys(head_text(file))
            if "messages" in keys:
                message_files.append(file)
            elif "members" in keys and "membership_info" not in keys:
                data, error = load_json(file)
                if error is not None:
                    yield file, error
                else:
                    infos[_folder(file)] = obj_of(data)
        for file in message_files:
            container, folder = _folder(file)
            group = _group(folder, infos.get((container, folder), {}))
            yield from self._parse_messages(file, group)

    def _parse_messages(self, file: SourceFile, group: _Group) -> Iterator[Parsed]:
        topics = _topics(file)
        for item in stream_json(file, {"messages": "/messages"}):
            if isinstance(item, SourceError):
                yield file, item
                continue
            locator, obj = item
            try:
                yield file, _message(obj, group, topics, locator)
            except _Bad as error:
                yield file, SourceError(str(error), locator, raw_json(obj))
            except (TypeError, ValueError, AttributeError, KeyError) as error:
                yield file, SourceError(f"malformed message ({type(error).__name__}: {error})", locator, raw_json(obj))


ADAPTER = GoogleChatAdapter()
