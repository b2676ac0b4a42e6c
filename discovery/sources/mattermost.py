"""Mattermost bulk export (``source_format = "mattermost_jsonl"``): the JSONL of ``mmctl export create``.

One object per line, ``{"type": kind, kind: {...}}``, in the order ``version``, ``team``, ``channel``,
``user``, ``bot``, ``post``, ``direct_channel``, ``direct_post``, ``emoji``: users come before posts, so
one streaming pass resolves names. Posts name their team, channel and user by name; replies are
nested in their root's ``replies[]``; times are epoch milliseconds (UTC).

Ids: the bulk export has no post ids at all, so ``native_id`` is synthesized as
``"<create_at>:<username>"`` within the conversation (``#2``, ``#3`` added for a repeat in the same
conversation). Line numbers are deliberately left out so the same post gets the same id in a later,
longer export. ``conversation_id`` is ``"mattermost:<team>/<channel>"`` for channels and
``"mattermost:dm/<user>+<user>..."`` (sorted) for direct and group messages. A reply's
``thread_id`` is its root's id (the root has it too); Mattermost has no quote-reply. Locators are
``"line N"`` (``raw`` = that exact line) and ``"line N /post/replies/K"`` for a nested reply
(``raw`` = the reply object). ``@username`` mentions are shown as ``@Display Name``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from discovery.model import Attachment, Mention, Message, Reaction, SourceError
from discovery.sources._jsonio import (
    READ_ERRORS,
    head_text,
    iter_jsonl,
    list_of,
    obj_of,
    raw_json,
    sniff_loads,
    text_of,
)
from discovery.sources._times import epoch_ms_to_utc_checked
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.files import SourceFile

SOURCE_FORMAT = "mattermost_jsonl"
TZ_ASSUMPTION = "UTC (epoch milliseconds)"
_LINE_TYPES = {"version", "role", "scheme", "team", "channel", "user", "bot", "post", "direct_channel",
               "direct_post", "emoji"}
_MENTION = re.compile(r"(?<![\w.@/])@([a-z0-9][a-z0-9._-]*)")
_MEDIA = {"png": "image", "jpg": "image", "jpeg": "image", "gif": "image", "mp4": "video", "mov": "video",
          "mp3": "audio", "m4a": "audio"}


class _Bad(Exception):
    """A record that cannot become a message; reported as a SourceError."""


@dataclass
class _State:
    """What earlier lines said: display names of users, channels and teams, and ids already given."""

    users: dict[str, str] = field(default_factory=dict)
    bots: set[str] = field(default_factory=set)
    channels: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (team, name) -> (display, type)
    teams: dict[str, str] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # conversation + synthesized id -> occurrences

    def learn(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "user":
            username = text_of(data.get("username"))
            full = f"{text_of(data.get('first_name'))} {text_of(data.get('last_name'))}".strip()
            self.users[username] = text_of(data.get("nickname")) or full or username
        elif kind == "bot":
            username = text_of(data.get("username"))
            self.users[username] = text_of(data.get("display_name")) or username
            self.bots.add(username)
        elif kind == "team":
            self.teams[text_of(data.get("name"))] = text_of(data.get("display_name"))
        elif kind == "channel":
            key = (text_of(data.get("team")), text_of(data.get("name")))
            self.channels[key] = (text_of(data.get("display_name")), text_of(data.get("type")))

    def native_id(self, conversation: str, create_at: int, user: str) -> str:
        base = f"{create_at}:{user}"
        count = self.seen[conversation + "\x1f" + base] = self.seen.get(conversation + "\x1f" + base, 0) + 1
        return base if count == 1 else f"{base}#{count}"

    def name(self, username: str) -> str:
        return self.users.get(username, username)


@dataclass
class _Conversation:
    id: str
    name: str | None
    type: str


def _conversation(kind: str, post: dict[str, Any], state: _State) -> _Conversation:
    if kind == "direct_post":
        members = sorted(m for m in list_of(post.get("channel_members")) if isinstance(m, str))
        if not members:
            raise _Bad("direct_post has no channel_members")
        names = ", ".join(state.name(m) for m in members)
        kind_of_dm = "dm" if len(members) <= 2 else "group"
        return _Conversation("mattermost:dm/" + "+".join(members), "DM: " + names, kind_of_dm)
    team, channel = text_of(post.get("team")), text_of(post.get("channel"))
    if not team or not channel:
        raise _Bad("post names no team or channel")
    display, _ = state.channels.get((team, channel), ("", ""))
    return _Conversation(f"mattermost:{team}/{channel}", display or channel, "channel")


def _posts(kind: str, post: dict[str, Any], line: str, number: int, state: _State) -> Iterator[Message | SourceError]:
    """The root post of one line, then its nested replies; a bad reply does not lose the others."""
    locator = f"line {number}"
    conversation = _conversation(kind, post, state)
    replies = list_of(post.get("replies"))
    root = _message(post, conversation, state, locator, line)
    if replies:
        root.thread_id = root.native_id
    yield root
    for index, reply in enumerate(replies):
        reply_locator = f"{locator} /{kind}/replies/{index}"
        try:
            message = _message(obj_of(reply), conversation, state, reply_locator, raw_json(reply))
        except _Bad as error:
            yield SourceError(str(error), reply_locator, raw_json(reply))
            continue
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            yield SourceError(f"malformed reply ({type(error).__name__}: {error})", reply_locator, raw_json(reply))
            continue
        message.thread_id = root.native_id
        yield message


def _message(post: dict[str, Any], conversation: _Conversation, state: _State, locator: str, raw: str) -> Message:
    user = text_of(post.get("user"))
    try:
        sent_at = epoch_ms_to_utc_checked(post.get("create_at"))
    except ValueError as error:
        raise _Bad(f"create_at: {error}") from None
    post_type = text_of(post.get("type"))
    props = obj_of(post.get("props"))
    mentions: list[Mention] = []
    text = _resolve(text_of(post.get("message")), state, mentions)
    text = "\n".join(part for part in (text.strip(), _props_text(props)) if part)
    message = Message(
        native_id=state.native_id(conversation.id, post["create_at"], user), source_format=SOURCE_FORMAT,
        conversation_id=conversation.id, conversation_name=conversation.name, conversation_type=conversation.type,
        sent_at=sent_at, sent_at_raw=str(post["create_at"]), tz_assumption=TZ_ASSUMPTION, text=text,
        mentions=mentions, raw=raw, locator=locator,
        attachments=[_attachment(obj_of(item)) for item in list_of(post.get("attachments"))],
        reactions=_reactions(post.get("reactions")),
    )
    if post_type.startswith("system_"):
        message.kind, message.sender_kind = "system", "system"
        if user and not any(m.id == user for m in mentions):
            mentions.append(Mention(id=user, name=state.name(user)))  # the person the event is about
    else:
        webhook = props.get("from_webhook") == "true"
        override = text_of(props.get("override_username"))
        # A webhook posts under its creator's username: give it its own id so the person is not made a bot.
        message.sender_id = f"webhook:{override or user}" if webhook else user or None
        message.sender_name = override or state.name(user) or None
        bot = webhook or props.get("from_bot") == "true" or user in state.bots
        message.sender_kind = "bot" if bot else "user" if user else "unknown"
        if message.attachments and not text:
            message.kind = "file"
    if _nonzero(post.get("delete_at")):
        message.deleted, message.text = True, ""
    if _nonzero(post.get("edit_at")):
        message.edited = True
        try:
            message.edited_at = epoch_ms_to_utc_checked(post["edit_at"])
        except ValueError:
            message.edited_at = None  # the edit is a fact even when its time is unreadable
    return message


def _nonzero(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _resolve(text: str, state: _State, mentions: list[Mention]) -> str:
    """``@tom.becker`` -> ``@Tom Becker`` for known users (a trailing sentence dot is not a name)."""

    def replace(match: re.Match[str]) -> str:
        username = match.group(1)
        trail = ""
        while username not in state.users and username.endswith((".", "-", "_")):
            username, trail = username[:-1], username[-1] + trail
        if username not in state.users:
            return match.group(0)
        if not any(m.id == username for m in mentions):
            mentions.append(Mention(id=username, name=state.users[username], key="@" + username))
        return "@" + state.users[username] + trail

    return _MENTION.sub(replace, text)


def _props_text(props: dict[str, Any]) -> str:
    """Integration message attachments (Slack-compatible ``props.attachments``): their words."""
    parts: list[str] = []
    for item in list_of(props.get("attachments")):
        item = obj_of(item)
        parts += [text_of(item.get(key)).strip() for key in ("pretext", "author_name", "title", "text")]
        for fld in list_of(item.get("fields")):
            fld = obj_of(fld)
            parts.append(": ".join(p for p in (text_of(fld.get("title")), text_of(fld.get("value"))) if p))
    return "\n".join(part for part in parts if part)


def _attachment(item: dict[str, Any]) -> Attachment:
    path = text_of(item.get("path"))
    name = PurePosixPath(path).name or None
    return Attachment(name=name, type=_MEDIA.get((name or "").rsplit(".", 1)[-1].lower(), "file"), key=path or None)


def _reactions(items: Any) -> list[Reaction]:
    by_emoji: dict[str, Reaction] = {}
    for item in list_of(items):
        item = obj_of(item)
        emoji = text_of(item.get("emoji_name"))
        reaction = by_emoji.setdefault(emoji, Reaction(emoji=emoji, count=0))
        reaction.count += 1
        if text_of(item.get("user")):
            reaction.users.append(text_of(item.get("user")))
    return list(by_emoji.values())


def _score(text: str) -> int:
    """A bulk-export line: ``{"type": kind, kind: {...}}`` (the first line is normally the version)."""
    for line in text.splitlines()[:5]:
        if '"type"' not in line and "\\u" not in line:
            continue  # no object in it can have a "type" key (spelt plainly or with \u escapes)
        try:
            obj = sniff_loads(line)
        except (ValueError, RecursionError):
            continue
        kind = obj.get("type") if isinstance(obj, dict) else None
        if not isinstance(kind, str):
            continue
        if kind == "version" and isinstance(obj.get("version"), int):
            return 95
        if kind in _LINE_TYPES and isinstance(obj.get(kind), dict):
            return 90
    return 0


class MattermostAdapter:
    """Mattermost bulk export JSONL (mmctl export)."""

    name = "mattermost"
    source_format = SOURCE_FORMAT
    description = "Mattermost bulk export (mmctl export create): JSONL of teams, channels, users, posts, DMs"
    limits = (
        "The bulk export has no post ids (ids here are synthesized from time and author), omits deleted "
        "posts and objects on stock servers, and keeps only the final text of edited posts. File "
        "attachments are present only if the export was made with attachments (data/ paths). Names are "
        "usernames; display names come from the user lines. Compliance exports (CSV, Actiance, GlobalRelay) "
        "are different formats."
    )

    def sniff(self, file: SourceFile) -> int:
        """Score by content: the first lines' ``{"type": ..., <type>: {...}}`` shape."""
        try:
            head = file.head()
        except READ_ERRORS:
            return 0
        if b'"type"' not in head and b"\\u" not in head:
            return 0  # no line can hold a "type" key (decoding the head never makes ASCII bytes up)
        return _score(head_text(file))

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        """Stream each file line by line; posts resolve names from the lines before them."""
        for file in files:
            state = _State()
            for item in iter_jsonl(file):
                if isinstance(item, SourceError):
                    yield file, item
                    continue
                number, line, obj = item
                yield from ((file, result) for result in self._line(number, line, obj, state))

    def _line(self, number: int, line: str, obj: Any, state: _State) -> Iterator[Message | SourceError]:
        locator = f"line {number}"
        kind = obj.get("type") if isinstance(obj, dict) else None
        if not isinstance(kind, str) or (kind != "version" and not isinstance(obj.get(kind), dict)):
            yield SourceError('not a bulk-export line ({"type": kind, kind: {...}})', locator, line)
            return
        if kind not in ("post", "direct_post"):
            if kind != "version":
                state.learn(kind, obj[kind])
            return
        try:
            yield from _posts(kind, obj[kind], line, number, state)
        except _Bad as error:
            yield SourceError(str(error), locator, line)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            yield SourceError(f"malformed {kind} ({type(error).__name__}: {error})", locator, line)


ADAPTER = MattermostAdapter()
