"""Discord channels exported with DiscordChatExporter (DCE): its JSON (``dce_json``) and CSV (``dce_csv``).

DCE is the de-facto Discord export tool (Discord's own data package holds only the requester's
messages). JSON: ``{guild, channel, dateRange, exportedAt, messages: [...], messageCount}``,
streamed one message at a time. CSV (``AuthorID,Author,Date,Content,Attachments,Reactions``) is
read by :mod:`discovery.sources._discord_csv`.

Ids: ``native_id`` is the message snowflake; ``conversation_id`` is ``"discord:" + channel id``
(snowflakes are globally unique). Times carry the exporting machine's UTC offset unless DCE ran
with ``--utc``; both are exact instants, converted to UTC with the raw string kept. ``reply_to`` is
``reference.messageId`` of a reply (a forward's reference is not a reply: its content is folded
into the text and the kind is ``forward``). System notifications (member joins, pins, calls,
renames) have ``sender_kind = "system"``, with the actor's name put in front of DCE's fallback
text. DCE reads the live API, so deleted messages are simply absent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from discovery.model import Attachment, Mention, Message, Reaction, SourceError
from discovery.sources import _discord_csv
from discovery.sources._jsonio import head_keys, head_text, list_of, obj_of, raw_json, stream_json, text_of
from discovery.sources._times import iso_to_utc
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.files import SourceFile

SOURCE_FORMAT = "dce_json"
_SYSTEM = {
    "RecipientAdd", "RecipientRemove", "Call", "ChannelNameChange", "ChannelIconChange", "ChannelPinnedMessage",
    "GuildMemberJoin", "ThreadCreated", "GuildBoost", "GuildBoostTier1", "GuildBoostTier2", "GuildBoostTier3",
    "ChannelFollowAdd", "AutoModerationAction",
}
_CHANNEL_TYPES = {"DirectTextChat": "dm", "DirectGroupTextChat": "group", "GuildPublicThread": "thread",
                  "GuildPrivateThread": "thread", "GuildNewsThread": "thread"}
_RAW_USER = re.compile(r"<@!?(\d+)>")
_RAW_EMOJI = re.compile(r"<a?:(\w+):\d+>")
_MEDIA = {"png": "image", "jpg": "image", "jpeg": "image", "gif": "image", "webp": "image", "mp4": "video",
          "mov": "video", "webm": "video", "mp3": "audio", "ogg": "audio", "wav": "audio", "m4a": "audio"}


class _Bad(Exception):
    """A record that cannot become a message; reported as a SourceError."""


def _conversation(guild: dict[str, Any], channel: dict[str, Any]) -> tuple[str, str, str]:
    """(id, name, type) of the exported channel: ``("discord:1293...", "Guild / #channel", "channel")``."""
    channel_id = text_of(channel.get("id"))
    if not channel_id:
        raise _Bad("the export's channel object has no id")
    name = text_of(channel.get("name")) or channel_id
    kind = _CHANNEL_TYPES.get(text_of(channel.get("type")), "channel")
    guild_name = text_of(guild.get("name"))
    if kind == "channel" and guild_name and text_of(guild.get("id")) != "0":
        name = f"{guild_name} / #{name}"
    return "discord:" + channel_id, name, kind


def _message(obj: Any, conversation: tuple[str, str, str], locator: str) -> Message:
    if not isinstance(obj, dict):
        raise _Bad(f"message record is a JSON {type(obj).__name__}, not an object")
    native_id = obj.get("id")
    if not isinstance(native_id, str) or not native_id:
        raise _Bad(f"message has no id (got {native_id!r})")
    stamp = obj.get("timestamp")
    if not isinstance(stamp, str):
        raise _Bad(f"message {native_id} has no timestamp")
    try:
        sent_at = iso_to_utc(stamp)
    except ValueError as error:
        raise _Bad(f"message {native_id}: timestamp {error}") from None
    author = obj_of(obj.get("author"))
    author_name = text_of(author.get("nickname")) or text_of(author.get("name")) or None
    mentions = [_mention(user) for user in list_of(obj.get("mentions")) if isinstance(user, dict)]
    kind_name = text_of(obj.get("type")) or "Default"
    system = kind_name in _SYSTEM
    message = Message(
        native_id=native_id, source_format=SOURCE_FORMAT, conversation_id=conversation[0], sent_at=sent_at,
        sent_at_raw=stamp, conversation_name=conversation[1], conversation_type=conversation[2],
        kind="call" if kind_name == "Call" else "system" if system else "message",
        mentions=mentions, raw=raw_json(obj), locator=locator,
        reactions=[_reaction(item) for item in list_of(obj.get("reactions")) if isinstance(item, dict)],
    )
    content = _resolve(text_of(obj.get("content")), mentions)
    if system:
        message.sender_kind = "system"
        message.text = _system_text(author_name, content)
    else:
        message.sender_id = text_of(author.get("id")) or None
        message.sender_name = author_name
        message.sender_kind = "bot" if author.get("isBot") is True else "user"
        message.text = _join([content, *_embeds_text(obj.get("embeds"))])
    _add_media(message, obj)
    reference = obj_of(obj.get("reference"))
    forwarded = obj_of(obj.get("forwardedMessage"))
    if forwarded or reference.get("type") == "Forward":
        message.kind = "forward"
        message.text = _join([message.text, _resolve(text_of(forwarded.get("content")), mentions),
                              *_embeds_text(forwarded.get("embeds"))])
        _add_media(message, forwarded)
    elif kind_name == "Reply" or reference.get("type") in ("Default", "Reply"):
        message.reply_to = text_of(reference.get("messageId")) or None
    edited = obj.get("timestampEdited")
    if isinstance(edited, str) and edited:
        message.edited = True
        try:
            message.edited_at = iso_to_utc(edited)
        except ValueError:
            message.edited_at = None  # the edit is a fact even when its time is unreadable
    return message


def _mention(user: dict[str, Any]) -> Mention:
    user_id = text_of(user.get("id")) or None
    return Mention(id=user_id, name=text_of(user.get("nickname")) or text_of(user.get("name")) or None,
                   key=f"<@{user_id}>" if user_id else None)


def _resolve(content: str, mentions: list[Mention]) -> str:
    """Raw tokens left by ``--markdown false``: ``<@id>`` -> ``@Name``, ``<:emoji:id>`` -> ``:emoji:``."""
    names = {m.id: m.name for m in mentions if m.id and m.name}
    content = _RAW_USER.sub(lambda match: "@" + names.get(match.group(1), match.group(1)), content)
    return _RAW_EMOJI.sub(lambda match: f":{match.group(1)}:", content)


def _system_text(actor: str | None, fallback: str) -> str:
    """``"Tom Becker joined the server."`` from DCE's actor-less fallback ``"Joined the server."``."""
    if not actor:
        return fallback
    if fallback[:1].isupper() and fallback[1:2].islower():
        fallback = fallback[0].lower() + fallback[1:]
    return f"{actor} {fallback}".strip()


def _embeds_text(embeds: Any) -> list[str]:
    parts: list[str] = []
    for embed in list_of(embeds):
        embed = obj_of(embed)
        parts += [text_of(obj_of(embed.get("author")).get("name")), text_of(embed.get("title")),
                  text_of(embed.get("description"))]
        for field in list_of(embed.get("fields")):
            field = obj_of(field)
            parts.append(_join([text_of(field.get("name")), text_of(field.get("value"))], ": "))
        parts.append(text_of(obj_of(embed.get("footer")).get("text")))
    return parts


def _add_media(message: Message, obj: dict[str, Any]) -> None:
    for item in list_of(obj.get("attachments")):
        item = obj_of(item)
        name = text_of(item.get("fileName")) or None
        size = item.get("fileSizeBytes")
        extension = (name or "").rsplit(".", 1)[-1].lower()
        message.attachments.append(Attachment(
            name=name, type=_MEDIA.get(extension, "file"),
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            key=text_of(item.get("url")) or text_of(item.get("id")) or None,
        ))
    for sticker in list_of(obj.get("stickers")):
        sticker = obj_of(sticker)
        message.attachments.append(Attachment(name=text_of(sticker.get("name")) or None, type="sticker",
                                              key=text_of(sticker.get("sourceUrl")) or None))
        if message.kind == "message" and not message.text:
            message.kind = "sticker"


def _reaction(item: dict[str, Any]) -> Reaction:
    emoji = obj_of(item.get("emoji"))
    count = item.get("count")
    users = [text_of(obj_of(user).get("id")) for user in list_of(item.get("users"))]
    return Reaction(emoji=text_of(emoji.get("name")) or text_of(emoji.get("code")),
                    count=count if isinstance(count, int) else len(users), users=[u for u in users if u])


def _join(parts: list[str], sep: str = "\n") -> str:
    return sep.join(part.strip() for part in parts if part and part.strip())


# ----------------------------------------------------------------------------- the adapter


class DiscordAdapter:
    """DiscordChatExporter JSON and CSV exports of Discord channels, DMs and threads."""

    name = "discord"
    source_format = SOURCE_FORMAT
    description = "Discord via DiscordChatExporter: JSON (full) and CSV (author, date, content, files, reactions)"
    limits = (
        "DCE reads the live API with the exporting account's access: deleted messages are absent, and only "
        "channels that account could read are present. Edits keep only the latest text and edit time. "
        "Attachments are CDN URLs (or local paths with --media), not bytes; CDN links expire. Times carry the "
        "exporting machine's offset unless --utc was used. The CSV variant has no message ids, replies, "
        "embeds or mentions; its ids are synthesized from author id and time."
    )

    def sniff(self, file: SourceFile) -> int:
        """Score by content: the DCE JSON root keys, or the DCE CSV header line."""
        text = head_text(file)
        if _discord_csv.is_dce_csv(text):
            return 95
        body = text.lstrip()
        if body.startswith("{") and {"guild", "channel"} <= head_keys(body) and '"messages"' in body:
            return 95
        return 0

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        """Each file is one channel: CSV files row by row, JSON files message by message."""
        for file in files:
            if _discord_csv.is_dce_csv(head_text(file)):
                for item in _discord_csv.parse_csv(file, options or ParseOptions()):
                    yield file, item
            else:
                yield from self._parse_json(file)

    def _parse_json(self, file: SourceFile) -> Iterator[Parsed]:
        guild: dict[str, Any] = {}
        channel: dict[str, Any] = {}
        conversation: tuple[str, str, str] | None = None
        for item in stream_json(file, {"messages": "/messages"}, ("guild", "channel")):
            if isinstance(item, SourceError):
                yield file, item
                continue
            locator, obj = item
            if locator == "header:guild":
                guild = obj_of(obj)
                continue
            if locator == "header:channel":
                channel = obj_of(obj)
                continue
            try:
                conversation = conversation or _conversation(guild, channel)
                yield file, _message(obj, conversation, locator)
            except _Bad as error:
                yield file, SourceError(str(error), locator, raw_json(obj))
            except (TypeError, ValueError, AttributeError, KeyError) as error:
                yield file, SourceError(f"malformed message ({type(error).__name__}: {error})", locator, raw_json(obj))


ADAPTER = DiscordAdapter()
