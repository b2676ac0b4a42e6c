"""Microsoft Teams messages: Graph ``chatMessage`` pages and the Teams data export tool's files.

Two shapes, one adapter, recognised by content:

- Graph (``source_format = "teams_graph"``): pages ``{"@odata.context", "value": [chatMessage...]}``
  from ``/chats/{id}/messages``, ``/teams/{id}/channels/{id}/messages`` (+ ``/replies``) or the
  ``getAllMessages`` export APIs; also a chat GET (``{id, topic, chatType}``) or member pages,
  which only give names.
- The Teams data export tool (``source_format = "teams_export_tool"``): the same objects with
  PascalCase keys and ``\\u003C``-escaped HTML: ``messages_<id>.json`` arrays, plus
  ``teamsList.json``, ``channels_<teamId>.json`` and ``usersList.json`` for names.

Ids: ``native_id`` is the message ``id``; ``conversation_id`` is ``"teams:" + chatId`` or
``"teams:" + channelId`` (``19:...@thread.v2`` / ``@thread.tacv2`` ids are tenant-global; the
prefix keeps formats apart). Threads exist only in channels: ``thread_id`` is the root post's id
for the root and its replies (``replyToId``). ``reply_to`` is the quoted message of a
``messageReference`` attachment. Times are ISO 8601 UTC with 0-7 fraction digits, kept raw.
A deleted message (``deletedDateTime``) has empty text; system events are rendered from
``eventDetail``. ``parse`` reads every file twice: names first, then messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from discovery.model import Attachment, Mention, Message, SourceError
from discovery.sources._html import html_to_text
from discovery.sources._jsonio import head_keys, head_text, list_of, load_json, obj_of, raw_json, stream_json, text_of
from discovery.sources._teams_parts import (
    camel,
    card_text,
    identity_name,
    is_pascal,
    json_object,
    mentions_of,
    reactions_of,
    render_event,
)
from discovery.sources._times import iso_to_utc
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.files import SourceFile

GRAPH, EXPORT_TOOL = "teams_graph", "teams_export_tool"
_CONTEXT_CHAT = re.compile(r"chats\('([^']+)'\)")
_CONTEXT_CHANNEL = re.compile(r"channels\('([^']+)'\)")
_CARD = "application/vnd.microsoft.card"


class _Bad(Exception):
    """A record that cannot become a message; reported as a SourceError."""


@dataclass
class _Directory:
    """Names learned from every file before any message is built."""

    users: dict[str, str] = field(default_factory=dict)
    chats: dict[str, tuple[str, str]] = field(default_factory=dict)  # chat id -> (topic, chatType)
    channels: dict[str, str] = field(default_factory=dict)  # channel id -> display name
    teams: dict[str, str] = field(default_factory=dict)  # team id -> display name

    def name(self, some_id: str) -> str:
        return self.users.get(some_id, "")

    def learn(self, record: dict[str, Any]) -> None:
        kind = _record_kind(record)
        record_id = text_of(record.get("id"))
        if kind == "message":
            mentioned = [obj_of(m).get("mentioned") for m in list_of(record.get("mentions"))]
            for identity in [record.get("from"), *mentioned]:
                some_id, name = identity_name(identity, lambda _: "")
                if some_id and name and name != some_id:
                    self.users.setdefault(some_id, name)
        elif kind == "user":
            some_id = text_of(record.get("userId")) or record_id
            name = text_of(record.get("displayName"))
            if some_id and name:
                self.users[some_id] = name
        elif kind == "chat":
            self.chats[record_id] = (text_of(record.get("topic")), text_of(record.get("chatType")))
        elif kind == "channel":
            self.channels[record_id] = text_of(record.get("displayName"))
        elif kind == "team":
            self.teams[record_id] = text_of(record.get("displayName"))


def _record_kind(record: dict[str, Any]) -> str:
    keys = record.keys()
    if "messageType" in keys or ({"createdDateTime", "body"} <= keys):
        return "message"
    record_id = text_of(record.get("id"))
    if "chatType" in keys:
        return "chat"
    if "membershipType" in keys or ("displayName" in keys and "@thread" in record_id):
        return "channel"
    if keys & {"userPrincipalName", "userId", "mail", "email"} and "displayName" in keys:
        return "user"
    if "displayName" in keys and keys & {"visibility", "isArchived", "memberSettings"}:
        return "team"
    return "other"


# ----------------------------------------------------------------------------- reading


def _records(file: SourceFile) -> Iterator[tuple[str, Any] | SourceError]:
    """(locator, record) for each object in FILE, streaming pages and arrays; ("context", url) first."""
    text = head_text(file).lstrip()
    keys = head_keys(text[:4096])
    if text.startswith("[") or (text.startswith("{") and keys & {"value", "Value"}):
        for item in stream_json(file, {"": "", "value": "/value", "Value": "/Value"}, ("@odata.context",)):
            if isinstance(item, tuple) and item[0] == "header:@odata.context":
                yield "context", item[1]
            else:
                yield item
        return
    data, error = load_json(file)
    if error is not None:
        yield error
    elif isinstance(data, dict):
        yield "context", data.get("@odata.context")
        yield "", data


def _conversation(record: dict[str, Any], context: str, directory: _Directory) -> tuple[str, str | None, str]:
    """(conversation id, name, type) from chatId / channelIdentity, else the page's @odata.context."""
    chat_id = text_of(record.get("chatId"))
    channel = obj_of(record.get("channelIdentity"))
    channel_id = text_of(channel.get("channelId"))
    if not chat_id and not channel_id:
        found = _CONTEXT_CHANNEL.search(context) or _CONTEXT_CHAT.search(context)
        if found and found.re is _CONTEXT_CHANNEL:
            channel_id = unquote(found.group(1))
        elif found:
            chat_id = unquote(found.group(1))
    if channel_id:
        team = directory.teams.get(text_of(channel.get("teamId")))
        name = directory.channels.get(channel_id)
        return "teams:" + channel_id, f"{team} / {name}" if team and name else name or None, "channel"
    if not chat_id:
        raise _Bad("message names neither chatId nor channelIdentity, and the page's @odata.context has no id")
    topic, chat_type = directory.chats.get(chat_id, ("", ""))
    one_on_one = chat_type == "oneOnOne" or chat_id.endswith("@unq.gbl.spaces")
    return "teams:" + chat_id, topic or None, "dm" if one_on_one else "group"


# ----------------------------------------------------------------------------- messages


def _message(record: dict[str, Any], context: str, directory: _Directory, locator: str, raw: str,
             source_format: str) -> Message:
    native_id = record.get("id")
    if not isinstance(native_id, str) or not native_id:
        raise _Bad(f"message has no id (got {native_id!r})")
    created = record.get("createdDateTime")
    try:
        sent_at = iso_to_utc(created) if isinstance(created, str) else None
    except ValueError as error:
        raise _Bad(f"message {native_id}: createdDateTime {error}") from None
    if sent_at is None:
        raise _Bad(f"message {native_id} has no createdDateTime")
    conversation_id, conversation_name, conversation_type = _conversation(record, context, directory)
    message = Message(
        native_id=native_id, source_format=source_format, conversation_id=conversation_id,
        sent_at=sent_at, sent_at_raw=created, conversation_name=conversation_name,
        conversation_type=conversation_type, raw=raw, locator=locator,
    )
    if conversation_type == "channel" and record.get("messageType", "message") == "message":
        message.thread_id = text_of(record.get("replyToId")) or native_id
    _fill_sender(message, record, directory)
    _fill_content(message, record, directory)
    message.reactions = reactions_of(record)
    edited = record.get("lastEditedDateTime")
    if isinstance(edited, str) and edited and not message.deleted:
        message.edited = True
        try:
            message.edited_at = iso_to_utc(edited)
        except ValueError:
            message.edited_at = None  # the edit is a fact even when its time is unreadable
    return message


def _fill_sender(message: Message, record: dict[str, Any], directory: _Directory) -> None:
    sender = obj_of(record.get("from"))
    if record.get("messageType") == "systemEventMessage" or record.get("eventDetail"):
        message.sender_kind = "system"
        return
    if not sender:
        return  # a message with no sender (deleted account, some migrations): kept as "unknown"
    message.sender_id, message.sender_name = identity_name(sender, directory.name)
    if isinstance(sender.get("user"), dict):
        message.sender_kind = "user"
    elif isinstance(sender.get("application"), dict):
        app_type = text_of(sender["application"].get("applicationIdentityType"))
        message.sender_kind = "bot" if app_type == "bot" else "app"


def _fill_content(message: Message, record: dict[str, Any], directory: _Directory) -> None:
    detail = record.get("eventDetail")
    if record.get("messageType") in ("systemEventMessage", "unknownFutureValue", "chatEvent") and detail:
        message.kind = "system"
        message.text, people = render_event(detail, directory.name)
        message.mentions = [Mention(id=some_id, name=name) for some_id, name in people]
        return
    body = obj_of(record.get("body"))
    content = text_of(body.get("content"))
    html = text_of(body.get("contentType")).lower() == "html"
    rendered = html_to_text(content) if html else None
    message.mentions = mentions_of(record, rendered.mentions if rendered else {})
    if record.get("deletedDateTime"):
        message.deleted = True  # the body is gone or a placeholder: never searchable
        return
    body_text = rendered.text if rendered else content.strip()
    parts = [body_text]
    for item in list_of(record.get("attachments")):
        parts.append(_attachment(message, obj_of(item)))
    if not body_text and message.kind == "message" and any(
        text_of(obj_of(item).get("contentType")).startswith(_CARD) for item in list_of(record.get("attachments"))
    ):
        message.kind = "card"
    if rendered:
        message.attachments += [Attachment(type="image", key=src) for src in rendered.images if src]
    message.text = "\n".join(part for part in parts if part)


def _attachment(message: Message, item: dict[str, Any]) -> str:
    """Record one attachment on MESSAGE; return the words it adds to the text (cards, forwards)."""
    content_type = text_of(item.get("contentType"))
    content = item.get("content")
    if content_type == "messageReference":
        quoted = json_object(content)
        message.reply_to = text_of(quoted.get("messageId")) or text_of(item.get("id")) or None
        return ""  # the quoted message is its own record; its preview would double every hit
    if content_type == "forwardedMessageReference":
        message.kind = "forward"
        forwarded = json_object(content)
        return text_of(forwarded.get("messagePreview")) or text_of(forwarded.get("content"))
    if content_type.startswith(_CARD):
        return card_text(content)
    message.attachments.append(Attachment(
        name=text_of(item.get("name")) or None,
        type="file" if content_type == "reference" else content_type or None,
        key=text_of(item.get("contentUrl")) or text_of(item.get("id")) or None,
    ))
    return ""


# ----------------------------------------------------------------------------- sniffing


def _score(text: str) -> int:
    body = text.lstrip()
    if body[:1] not in ("{", "["):
        return 0
    keys = head_keys(body)
    if keys & {"messageType", "MessageType"} and keys & {"createdDateTime", "CreatedDateTime"}:
        return 95
    if "@odata.context" in keys and "chatMessage" in body:
        return 90
    if "@odata.context" in keys and keys & {"chatType", "userId", "membershipType"}:
        return 75
    if {"Id", "DisplayName"} <= keys and keys & {"MembershipType", "UserPrincipalName", "Visibility", "IsArchived"}:
        return 75  # the export tool's channels_*.json, usersList.json, teamsList.json
    return 0


# ----------------------------------------------------------------------------- the adapter


class TeamsAdapter:
    """Microsoft Teams via Graph chatMessage pages or the Teams data export tool."""

    name = "teams"
    source_format = GRAPH
    description = "Microsoft Teams: Graph chatMessage pages (chats, channels, export APIs) and the data export tool"
    limits = (
        "Graph returns only what the app's permissions and the export API's licensing model allow; channel "
        "replies are only present if /replies (or getAllMessages) was exported. Deleted messages keep no "
        "content, only deletedDateTime. Only the latest text of an edited message is present (messageHistory "
        "records reactions, not old text). Files are SharePoint/OneDrive links, not bytes; inline images are "
        "hostedContents URLs. System events in chats may arrive as unknownFutureValue. The data export tool "
        "covers tenants of at most 500 users and is a one-time snapshot."
    )

    def sniff(self, file: SourceFile) -> int:
        """Score by content: chatMessage keys in either casing, and the export tool's directory lists."""
        return _score(head_text(file))

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        """Learn names from every file, then yield each file's messages in source order."""
        directory = _Directory()
        for file in files:
            for item in _records(file):
                if not isinstance(item, SourceError) and item[0] != "context" and isinstance(item[1], dict):
                    directory.learn(camel(item[1]))
        for file in files:
            yield from self._parse_file(file, directory)

    def _parse_file(self, file: SourceFile, directory: _Directory) -> Iterator[Parsed]:
        context = ""
        for item in _records(file):
            if isinstance(item, SourceError):
                yield file, item
                continue
            locator, obj = item
            if locator == "context":
                context = text_of(obj)
                continue
            raw = raw_json(obj)
            if not isinstance(obj, dict):
                yield file, SourceError(f"record is a JSON {type(obj).__name__}, not an object", locator, raw)
                continue
            record = camel(obj)
            if _record_kind(record) != "message":
                continue  # directory records (chats, channels, members) were used for names
            source_format = EXPORT_TOOL if is_pascal(obj) else GRAPH
            try:
                yield file, _message(record, context, directory, locator, raw, source_format)
            except _Bad as error:
                yield file, SourceError(str(error), locator, raw)
            except (TypeError, ValueError, AttributeError, KeyError) as error:
                yield file, SourceError(f"malformed message ({type(error).__name__}: {error})", locator, raw)


ADAPTER = TeamsAdapter()
