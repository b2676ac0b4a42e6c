"""Slack workspace exports (``source_format = "slack_export"``): the admin export ZIP or its folder.

Layout: users.json, channels.json, groups.json, dms.json, mpims.json at the top, then one folder
per conversation holding one ``YYYY-MM-DD.json`` array of messages per day. Channel folders are
named by channel name, DM folders by id, group-DM folders by their ``mpdm-...`` name; the folder
decides a message's conversation, looked up in the directory files of the same export root.

Ids: ``native_id`` is the message ``ts`` kept as the exact string (never a float: the last digits
are the per-channel sequence). ``conversation_id`` is ``"slack:" + channel id`` (``slack:C07M2K4R8TZ``);
Slack ids are unique within an org, the prefix keeps them apart from other formats. A folder with
no directory entry keeps its folder name as the id (``slack:general``). Times come only from
``ts``/``edited.ts`` (epoch seconds, UTC). Threads: ``thread_id`` is the root's ``ts`` for the
root and every reply, wherever the reply's day file is; Slack has no quote-reply, so ``reply_to``
stays empty. Names: ``sender_name`` is the name at send time (``user_profile``) when the record
has one, else the export-time name from users.json; mentions use export-time names. ``raw`` is
the record verbatim (re-serialized compactly); users.json itself stays in the case as a source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from discovery.model import Attachment, Message, Reaction, SourceError
from discovery.sources._jsonio import head_keys, head_text, list_of, load_json, obj_of, pointer, raw_json, text_of
from discovery.sources._slack_text import Renderer
from discovery.sources._times import epoch_seconds_to_utc
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.files import SourceFile

SOURCE_FORMAT = "slack_export"
TZ_ASSUMPTION = "UTC (epoch seconds)"
_DAY_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.json")
_DIRECTORY_FILES = {"users.json", "org_users.json", "channels.json", "groups.json", "dms.json", "mpims.json"}
_SYSTEM = {
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name", "channel_archive",
    "channel_unarchive", "group_join", "group_leave", "group_topic", "group_purpose", "group_name",
    "group_archive", "group_unarchive", "bot_add", "bot_remove", "pinned_item", "unpinned_item",
    "channel_convert_to_private", "channel_convert_to_public", "reminder_add",
}
_DELETED_PLACEHOLDER = "This message was deleted."


class _Bad(Exception):
    """A record that cannot become a message; reported as a SourceError, the rest goes on."""


@dataclass
class _Conversation:
    id: str
    name: str
    type: str


@dataclass
class _Export:
    """The directory files of one export root: who is who, which folder is which conversation."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, _Conversation] = field(default_factory=dict)  # folder name -> conversation
    channel_names: dict[str, str] = field(default_factory=dict)  # channel id -> name
    dm_members: dict[str, list[str]] = field(default_factory=dict)  # DM / group-DM folder -> member ids

    def user_name(self, user_id: str) -> str | None:
        return _display_name(self.users.get(user_id))

    def learn(self, name: str, data: Any) -> None:
        for entry in list_of(data):
            entry = obj_of(entry)
            entry_id = text_of(entry.get("id"))
            if not entry_id:
                continue
            if name in ("users.json", "org_users.json"):
                self.users[entry_id] = entry
            elif name in ("channels.json", "groups.json"):
                conv_name = text_of(entry.get("name")) or entry_id
                self.folders[conv_name] = _Conversation(entry_id, conv_name, "channel")
                self.channel_names[entry_id] = conv_name
            elif name in ("dms.json", "mpims.json"):
                self._learn_dm(name, entry, entry_id)

    def _learn_dm(self, name: str, entry: dict[str, Any], entry_id: str) -> None:
        members = [m for m in list_of(entry.get("members")) if isinstance(m, str)]
        folder = text_of(entry.get("name")) or entry_id
        kind = "group" if name == "mpims.json" else "dm"
        self.folders[folder] = _Conversation(entry_id, "", kind)
        self.dm_members[folder] = members

    def conversation(self, folder: str) -> _Conversation:
        """The conversation a day-file folder holds; DM names are built from users.json at lookup time."""
        if folder in self.dm_members:
            conv = self.folders[folder]
            names = ", ".join(self.user_name(m) or m for m in self.dm_members[folder])
            label = "Group DM: " if conv.type == "group" else "DM: "
            return _Conversation(conv.id, label + names if names else folder, conv.type)
        if folder in self.folders:
            return self.folders[folder]
        kind = "group" if folder.startswith("mpdm-") else "dm" if re.fullmatch(r"D[A-Z0-9]{6,}", folder) else "channel"
        return _Conversation(folder, folder, kind)


def _display_name(profile: Any) -> str | None:
    """Slack's order: profile.display_name, profile.real_name, then the top-level real_name/name."""
    profile = obj_of(profile)
    inner = obj_of(profile.get("profile")) or profile
    for value in (inner.get("display_name"), inner.get("real_name"), profile.get("real_name"), profile.get("name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _location(file: SourceFile) -> tuple[str, tuple[str, ...]]:
    """(container, path parts) of a file: the zip + member parts, or "" + the filesystem parts."""
    if file.member is not None:
        return file.path, PurePosixPath(file.member.replace("\\", "/")).parts
    return "", Path(file.path).parts


# ----------------------------------------------------------------------------- messages


def _message(obj: Any, export: _Export, conv: _Conversation, locator: str) -> Message:
    if not isinstance(obj, dict):
        raise _Bad(f"message record is a JSON {type(obj).__name__}, not an object")
    ts = obj.get("ts")
    if not isinstance(ts, str):
        raise _Bad("message has no ts string" if ts is None else f"message ts is not a string: {ts!r}")
    try:
        sent_at = epoch_seconds_to_utc(ts)
    except ValueError as error:
        raise _Bad(f"message ts {error}") from None
    subtype = text_of(obj.get("subtype"))
    renderer = Renderer(export.user_name, export.channel_names.get)
    raw_text = text_of(obj.get("text"))
    deleted = subtype == "tombstone" or (obj.get("hidden") is True and raw_text == _DELETED_PLACEHOLDER)
    text = "" if deleted else _text(obj, raw_text, renderer)
    files = [obj_of(f) for f in list_of(obj.get("files")) or [obj.get("file")] if isinstance(f, dict)]
    message = Message(
        native_id=ts,
        source_format=SOURCE_FORMAT,
        conversation_id="slack:" + conv.id,
        sent_at=sent_at,
        sent_at_raw=ts,
        text=text,
        conversation_name=conv.name,
        conversation_type=conv.type,
        thread_id=text_of(obj.get("thread_ts")) or None,
        tz_assumption=TZ_ASSUMPTION,
        deleted=deleted,
        kind=_kind(subtype, bool(files), bool(text)),
        mentions=renderer.mentions,
        attachments=[_attachment(f) for f in files],
        reactions=[_reaction(r) for r in list_of(obj.get("reactions")) if isinstance(r, dict)],
        raw=raw_json(obj),
        locator=locator,
    )
    _set_sender(message, obj, subtype, export)
    edited_ts = obj_of(obj.get("edited")).get("ts")
    if isinstance(edited_ts, str):
        message.edited = True
        try:
            message.edited_at = epoch_seconds_to_utc(edited_ts)
        except ValueError:
            message.edited_at = None  # the edit is a fact even when its time is unreadable
    return message


def _kind(subtype: str, has_files: bool, has_text: bool) -> str:
    if subtype in _SYSTEM:
        return "system"
    if subtype == "huddle_thread":
        return "call"
    return "file" if subtype == "file_share" or (has_files and not has_text) else "message"


def _text(obj: dict[str, Any], raw_text: str, renderer: Renderer) -> str:
    """Main text (or the blocks when the text is empty), then any legacy attachments' words."""
    main = renderer.mrkdwn(raw_text).strip() or renderer.blocks(obj.get("blocks"))
    extra = renderer.attachments(obj.get("attachments"))
    return "\n".join(part for part in (main, extra) if part)


def _set_sender(message: Message, obj: dict[str, Any], subtype: str, export: _Export) -> None:
    if message.kind == "system" or subtype == "tombstone":
        message.sender_kind = "system"  # the actor is named in the text (join/leave) or unknown (tombstone)
        return
    user_id = text_of(obj.get("user"))
    directory_entry = obj_of(export.users.get(user_id))
    bot_name = text_of(obj.get("username")) or text_of(obj_of(obj.get("bot_profile")).get("name"))
    if subtype == "bot_message" or (not user_id and obj.get("bot_id")):
        message.sender_id = text_of(obj.get("bot_id")) or user_id or None
        message.sender_name = bot_name or _display_name(directory_entry) or None
        message.sender_kind = "bot"
        return
    message.sender_id = user_id or None
    message.sender_name = _display_name(obj.get("user_profile")) or export.user_name(user_id) or bot_name or None
    is_bot = directory_entry.get("is_bot") is True or obj.get("bot_id") is not None
    message.sender_kind = "bot" if is_bot else "user" if user_id else "unknown"


def _attachment(item: dict[str, Any]) -> Attachment:
    mimetype = text_of(item.get("mimetype"))
    kind = mimetype.split("/")[0] if mimetype.split("/")[0] in ("image", "audio", "video") else "file"
    size = item.get("size")
    return Attachment(
        name=text_of(item.get("name")) or text_of(item.get("title")) or None,
        type=kind,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        key=text_of(item.get("id")) or None,
    )


def _reaction(item: dict[str, Any]) -> Reaction:
    users = [user for user in list_of(item.get("users")) if isinstance(user, str)]
    count = item.get("count")  # old exports have no count; users may be truncated in new ones
    return Reaction(emoji=text_of(item.get("name")), count=count if isinstance(count, int) else len(users),
                    users=users)


# ----------------------------------------------------------------------------- sniffing


def _score(text: str) -> int:
    """Day files score highest; the directory files a little lower, so they route here too."""
    body = text.lstrip()
    if body.startswith("{"):
        keys = head_keys(body)
        return 80 if {"logs", "change_type"} <= keys else 0  # integration_logs.json
    if not body.startswith("["):
        return 0
    keys = head_keys(body)
    if re.search(r'"ts"\s*:\s*"\d{9,10}\.\d{6}"', body):
        return 90 if re.search(r'"type"\s*:\s*"message"', body) else 70
    if re.search(r'"name"\s*:\s*"mpdm-', body) and "members" in keys:
        return 85
    if {"id", "team_id", "name"} <= keys and keys & {"real_name", "profile"}:
        return 85
    if {"id", "name", "created", "creator"} <= keys and keys & {"is_general", "is_archived", "members"}:
        return 85
    if {"id", "created", "members"} <= keys and re.search(r'"id"\s*:\s*"D[A-Z0-9]{6,}"', body):
        return 80
    return 0


# ----------------------------------------------------------------------------- the adapter


class SlackAdapter:
    """Slack workspace export, current and old shapes, zipped or unpacked."""

    name = "slack"
    source_format = SOURCE_FORMAT
    description = "Slack workspace export (ZIP or folder): channels, private channels, DMs, group DMs"
    limits = (
        "A 'public channels only' export omits private channels, DMs and group DMs; only full or "
        "single-user exports hold those. Deleted messages are absent (a deleted thread root with "
        "replies survives only as a 'tombstone' with no text). Only the final text of edited messages "
        "is exported, with the edit time. Files are links (url_private), not bytes, and may have expired. "
        "Reaction user lists can be truncated. Names in users.json are as at export time; the send-time "
        "name is only on messages that carry user_profile."
    )

    def sniff(self, file: SourceFile) -> int:
        """Score by content: message arrays with string ``ts``, and the export's directory files."""
        return _score(head_text(file))

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        """Read every export root's directory files first, then its day files in date order."""
        exports: dict[tuple[str, tuple[str, ...]], _Export] = {}
        day_files: list[tuple[tuple[str, ...], SourceFile]] = []
        for file in files:
            container, parts = _location(file)
            root = (container, parts[:-1])
            if parts and parts[-1] in _DIRECTORY_FILES:
                data, error = load_json(file)
                if error is not None:
                    yield file, error
                    continue
                exports.setdefault(root, _Export()).learn(parts[-1], data)
            else:
                day_files.append(((container, *parts), file))
        for _, file in sorted(day_files, key=lambda item: item[0]):
            yield from self._parse_day(file, exports)

    def _parse_day(self, file: SourceFile, exports: dict[tuple[str, tuple[str, ...]], _Export]) -> Iterator[Parsed]:
        container, parts = _location(file)
        if len(parts) < 2 or not _DAY_FILE.fullmatch(parts[-1]):
            return  # integration_logs.json, canvases.json, ...: claimed so they are kept, but no messages
        export = exports.get((container, parts[:-2]), _Export())
        conv = export.conversation(parts[-2])
        data, error = load_json(file)
        if error is not None:
            yield file, error
            return
        if not isinstance(data, list):
            yield file, SourceError(f"a Slack day file is a JSON array of messages, this is a {type(data).__name__}",
                                    "", raw_json(data))
            return
        for index, obj in enumerate(data):
            locator = pointer(index)
            try:
                yield file, _message(obj, export, conv, locator)
            except _Bad as error:
                yield file, SourceError(str(error), locator, raw_json(obj))
            except (TypeError, ValueError, AttributeError, KeyError) as error:
                yield file, SourceError(f"malformed message ({type(error).__name__}: {error})", locator, raw_json(obj))


ADAPTER = SlackAdapter()
