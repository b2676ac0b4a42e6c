"""Lark / Feishu exports made through the Open Platform IM API (``source_format = "lark_api"``).

Lark has no bulk chat-archive file; an export is whatever a bot saved from the API, so this
adapter accepts the API's own shapes, recognised by content (never by file name):

- ``GET /im/v1/messages`` list responses and ``GET /im/v1/messages/:id`` get responses
  (``{code, msg, data: {has_more, page_token, items: [Message]}}``); a merged-forward GET is the
  bundle followed by its sub-messages, each naming its bundle in ``upper_message_id``;
- a bare JSON array of message objects, or JSONL with one message object per line;
- ``im.message.receive_v1`` events (``{schema, header, event: {sender, message}}``), one per
  file, in an array, or one per JSONL line;
- directory responses from the same export, which yield no messages but give names:
  chat list (``data.items`` of ``{chat_id, name, ...}``), chat get (``data`` with ``chat_mode``),
  chat member lists (``data.items`` of ``{member_id_type, member_id, name}``), contact users
  (``data.user`` or ``data.items`` with ``open_id``/``name``);
- reactions pages. The reactions endpoint's items do not name their message, so we accept the
  page wrapped with the id the exporter asked for: ``{"message_id": "om_...", "code": 0,
  "data": {"items": [{reaction_id, operator, action_time, reaction_type: {emoji_type}}]}}``.
  A chat get response likewise needs ``"chat_id"`` beside ``data`` (or inside it), because the
  API only puts the id in the URL. In a streamed ``data.items`` file such a wrapper key must sit
  in the first 64 KiB (exporters write it first); wrappers inside arrays/JSONL have no limit.

``parse`` reads every file twice: the first pass only learns names (directory files, mention
names, chat types from events, reactions, which chat each bundle lives in), the second yields
messages, so a sender's name is found whichever file it is in. Memory stays bounded: JSONL is
read line by line and JSON through ``ijson``, one record at a time. Only a single top-level object
that is neither an array nor a ``data.items`` page (one event, one chat get) is loaded whole.

Locators: ``"line N"`` (1-based) for JSONL, a JSON pointer (``/data/items/3``, ``/5``; ``""`` is the
whole document) for JSON, both combined for a page written on one JSONL line
(``"line 2 /data/items/0"``). ``raw`` is the exact JSONL line, or the record re-serialized compactly.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import json
import os
import pickle
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson

from discovery.analysis import remember_tokens
from discovery.model import Attachment, Mention, Message, Reaction, SourceError, epoch_ms_to_utc
from discovery.processes import may_fork
from discovery.sources import _jsonio as jsonio
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.files import SourceFile

SOURCE_FORMAT = "lark_api"
TZ_ASSUMPTION = "UTC (epoch milliseconds)"
BOM = b"\xef\xbb\xbf"

# ----------------------------------------------------------------------------- reading files


class _Bad(Exception):
    """A record we recognise as a message but cannot turn into one; becomes a SourceError."""


@dataclass
class _Record:
    """One JSON object found in a file, with where it was and what wrapped it."""

    obj: Any
    locator: str
    envelope: dict[str, Any] = field(default_factory=dict)  # the wrapper's other keys (message_id, chat_id)
    line: str | None = None  # the exact JSONL line, when the record is that whole line

    @property
    def raw(self) -> str:
        if self.line is not None:
            return self.line
        return _COMPACT.encode(self.obj)


# What json.dumps(obj, ensure_ascii=False, separators=(",", ":")) builds on every call, built once.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class _CountingReader:
    """Counts the bytes ijson has pulled, so a parse error can say how far into the file it was."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._pending = stream.read(len(BOM))
        self.count = len(self._pending)
        self._pending = self._pending.removeprefix(BOM)  # ijson does not skip a byte-order mark

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to learn bytes vs str: must not consume anything
            return b""
        chunk = self._stream.read(size)
        self.count += len(chunk)
        if self._pending:
            chunk, self._pending = self._pending + chunk, b""
        return chunk


def _read(file: SourceFile) -> Iterator[_Record | SourceError]:
    """Every record of FILE, streaming; problems come back as SourceError items."""
    try:
        head = file.head()
    except OSError as error:
        yield SourceError(f"{file.display}: cannot be read ({error})")
        return
    layout = _layout(head)
    try:
        if layout == "jsonl":
            yield from _read_jsonl(file)
        elif layout == "json":
            yield from _read_json(file, head)
        else:
            yield SourceError(f"{file.display}: neither JSON nor JSONL, so not part of a Lark API export")
    except OSError as error:  # removed or unreadable since it was listed: this file only; the others go on
        yield SourceError(f"{file.display}: cannot be read ({error}); records after this point were not read")


def _layout(head: bytes) -> str:
    """ "jsonl", "json" or "unknown", from the first bytes.

    A pretty-printed JSON document starts with a line holding only "{" or "["; a JSONL file
    starts with a whole object on its first line (or, if that line is broken, the next line
    starts another object).
    """
    text = head.removeprefix(BOM).lstrip()
    if text[:1] not in (b"{", b"["):
        # a damaged first line followed by objects, one per line, is still JSONL
        return "jsonl" if b"\n{" in text else "unknown"
    first, newline, rest = text.partition(b"\n")
    if not (text[:1] == b"{" and newline and rest.strip()):
        return "json"  # (without parsing the first line: it could not change the answer)
    if rest.lstrip()[:1] == b"{" or _is_json_object(first):
        return "jsonl"
    return "json"


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _read_jsonl(file: SourceFile) -> Iterator[_Record | SourceError]:
    """One record per line (read by ``_jsonio.iter_jsonl``, as every JSONL adapter does); a bad line
    is reported and skipped, never the whole file."""
    for item in jsonio.iter_jsonl(file):
        if isinstance(item, SourceError):
            yield item
            continue
        number, line, obj = item
        locator = f"line {number}"
        for record in _unwrap(obj, ""):
            if record.locator:
                record.locator = f"{locator} {record.locator}"
            else:
                record.locator, record.line = locator, line
            yield record


def _read_json(file: SourceFile, head: bytes) -> Iterator[_Record | SourceError]:
    """Stream the records of one JSON document with ijson; a broken document ends in one error."""
    shape, envelope = _json_shape(head)
    if shape == "object":
        yield from _read_single_object(file)
        return
    if file.size <= WHOLE_JSON_LIMIT:
        records = _whole_document_records(file, shape, envelope)
        if records is not None:
            yield from records
            return
    prefix = "item" if shape == "array" else "data.items.item"
    last = None
    with file.open() as raw_stream:
        stream = _CountingReader(raw_stream)
        try:
            for index, obj in enumerate(ijson.items(stream, prefix, use_float=True)):
                if shape == "items":
                    yield _Record(obj, f"/data/items/{index}", envelope)
                    last = f"/data/items/{index}"
                else:
                    yield from _unwrap(obj, f"/{index}")
                    last = f"/{index}"
        except (ijson.JSONError, ValueError) as error:
            yield SourceError(_json_problem(file, error, last, stream.count), f"byte {stream.count}")


# A page or array this small is decoded whole by json.loads (C, several times faster than ijson's
# item building) when that gives exactly what streaming it would; else it is streamed (below).
WHOLE_JSON_LIMIT = 8 * 1024 * 1024
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error)  # a zip member fails with these too


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads takes NaN and Infinity, ijson does not


def _whole_document_records(file: SourceFile, shape: str, envelope: dict[str, Any]) -> list[_Record] | None:
    """The records ``_read_json`` streams from FILE, from one ``json.loads``; None when the streamed
    reading could differ, so the caller streams it instead: the bytes are not strict UTF-8, hold a
    ``\\uD8xx``-style escape (a lone surrogate: the two decoders treat it differently), are not
    valid JSON to ``json.loads`` (the stream then says where it breaks, and yields what comes
    before), or could repeat the ``data`` or ``items`` key (the stream reads every copy, json.loads
    keeps the last)."""
    try:
        with file.open() as stream:
            data = stream.read(WHOLE_JSON_LIMIT + 1)
    except _READ_ERRORS:
        return None
    if len(data) > WHOLE_JSON_LIMIT or b"\\ud" in data or b"\\uD" in data:
        return None
    try:
        document = json.loads(data.removeprefix(BOM).decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if shape == "array":
        if not isinstance(document, list):
            return None
        return [record for index, obj in enumerate(document) for record in _unwrap(obj, f"/{index}")]
    body = document.get("data") if isinstance(document, dict) else None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or data.count(b'"data"') != 1 or data.count(b'"items"') != 1:
        return None
    return [_Record(obj, f"/data/items/{index}", envelope) for index, obj in enumerate(items)]


# What every record able to teach the directory something holds, unless written with \\u escapes:
# one of these keys, or the string "merge_forward" (msg_type's). (Substring test first: fast.)
_TEACHING = tuple((b'"' + key + b'"', re.compile(rb'"' + key + rb'"\s*:'))
                  for key in (b"event", b"mentions", b"member_id", b"open_id", b"union_id", b"name", b"chat_mode",
                              b"reaction_type")) + ((b'"merge_forward"', re.compile(b'"merge_forward"')),)


def _teaches_nothing(file: SourceFile) -> bool:
    """True when no record of FILE can teach the directory anything (see ``_Directory.learn``):
    the first pass skips it. False when unsure (a large file, an escape, an unreadable file)."""
    if file.size > WHOLE_JSON_LIMIT:
        return False
    try:
        with file.open() as stream:
            data = stream.read(WHOLE_JSON_LIMIT + 1)
    except _READ_ERRORS:
        return False
    if len(data) > WHOLE_JSON_LIMIT or b"\\u" in data:
        return False
    return not any(quoted in data and pattern.search(data) for quoted, pattern in _TEACHING)


def _read_single_object(file: SourceFile) -> Iterator[_Record | SourceError]:
    """A document that is one object (an event, a chat get): small, so it is read whole.

    If more values follow the first, the file is really JSONL whose first line outgrew the
    sniffing head, and it is read line by line instead.
    """
    with file.open() as raw_stream:
        stream = _CountingReader(raw_stream)
        try:
            documents = list(ijson.items(stream, "", use_float=True))
        except (ijson.JSONError, ValueError) as error:
            if "trailing garbage" not in str(error):
                yield SourceError(_json_problem(file, error, None, stream.count), f"byte {stream.count}")
                return
            documents = None
    if documents is None:
        yield from _read_jsonl(file)
        return
    for document in documents:
        yield from _unwrap(document, "")


def _json_problem(file: SourceFile, error: Exception, last: str | None, position: int) -> str:
    """Say what broke, where (ijson reads in chunks, so: at or before a byte), and what still stands."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if "premature EOF" in reason and position >= file.size:
        where = f"the file ends ({file.size} bytes) before the JSON document is complete"
    else:
        where = f"the error is at or before byte {position} of {file.size}"
    kept = f"records up to {last} were read" if last else "no record could be read"
    return f"{file.display}: invalid or truncated JSON ({reason}); {where}; {kept}"


def _json_shape(head: bytes) -> tuple[str, dict[str, Any]]:
    """Where a JSON document keeps its records: a top-level array, ``data.items``, or itself.

    Also returns the top-level scalars seen before ``data.items`` (the wrapper's message_id).
    """
    envelope: dict[str, Any] = {}
    try:
        # Small reads: the answer is usually in the first few hundred bytes, and ijson turns a whole
        # read buffer into events before yielding the first (the events are the same either way).
        events = ijson.parse(io.BytesIO(head.removeprefix(BOM)), use_float=True, buf_size=2048)
        for prefix, event, value in events:
            if prefix == "" and event == "start_array":
                return "array", envelope
            if prefix == "data.items" and event == "start_array":
                return "items", envelope
            if prefix and "." not in prefix and event in ("string", "number", "boolean"):
                envelope[prefix] = value
    except (ijson.JSONError, ValueError):
        pass  # the head is cut mid-document, or the document is broken: the full read will say so
    return "object", envelope


def _unwrap(obj: Any, pointer: str) -> Iterator[_Record]:
    """A response wrapper's records (``data.items``, ``data.user``, chat get ``data``), or OBJ itself."""
    data = obj.get("data") if isinstance(obj, dict) else None
    if isinstance(data, dict):
        envelope = {key: value for key, value in obj.items() if key != "data"}
        if isinstance(data.get("items"), list):
            for index, item in enumerate(data["items"]):
                yield _Record(item, f"{pointer}/data/items/{index}", envelope)
            return
        if isinstance(data.get("user"), dict):
            yield _Record(data["user"], f"{pointer}/data/user", envelope)
            return
        if "chat_mode" in data or "name" in data:
            yield _Record(data, f"{pointer}/data", envelope)
            return
    yield _Record(obj, pointer)


def _record_kind(obj: Any) -> str:
    """What a record is, by its keys: message, event, a directory entry, or unknown."""
    if not isinstance(obj, dict):
        return "invalid"
    event = obj.get("event")
    if isinstance(event, dict):
        return "event" if isinstance(event.get("message"), dict) else "other_event"
    if "message_id" in obj and ("msg_type" in obj or "body" in obj or "create_time" in obj):
        return "message"
    if "reaction_type" in obj:
        return "reaction"
    if "member_id" in obj:
        return "member"
    if "chat_mode" in obj:
        return "chat_get"
    if "open_id" in obj or "union_id" in obj:
        return "user"
    if "chat_id" in obj and "name" in obj:
        return "chat"
    if any(key in obj for key in ("msg_type", "create_time", "body", "sender", "message_id")):
        return "message"  # a broken message: it will be reported with what is missing
    return "unknown"


# ----------------------------------------------------------------------------- names


@dataclass
class _Directory:
    """Everything learned in the first pass that messages in other files need."""

    users: dict[str, str] = field(default_factory=dict)  # contact API: authoritative
    members: dict[str, str] = field(default_factory=dict)  # chat member lists
    mentioned: dict[str, str] = field(default_factory=dict)  # mentions[] of any message
    chats: dict[str, str] = field(default_factory=dict)  # chat_id -> name
    chat_types: dict[str, str] = field(default_factory=dict)  # chat_id -> "dm" | "group"
    bundle_chats: dict[str, str] = field(default_factory=dict)  # merge_forward id -> its chat_id
    # message_id -> emoji -> {reaction_id: operator_id}; keyed by reaction_id so overlapping pages count once
    reactions: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def name(self, some_id: Any) -> str | None:
        if not isinstance(some_id, str) or not some_id:
            return None
        return self.users.get(some_id) or self.members.get(some_id) or self.mentioned.get(some_id)

    def learn(self, record: _Record) -> None:
        obj = record.obj
        kind = _record_kind(obj)
        if kind == "event":
            message = _from_event(obj)
            chat_type = obj["event"]["message"].get("chat_type")
            if isinstance(message.get("chat_id"), str) and chat_type in ("p2p", "group"):
                self.chat_types[message["chat_id"]] = "dm" if chat_type == "p2p" else "group"
            self._learn_message(message)
        elif kind == "message":
            self._learn_message(obj)
        elif kind == "member":
            _put(self.members, obj.get("member_id"), obj.get("name"))
        elif kind == "user":
            name = obj.get("name") or obj.get("en_name")
            for key in ("open_id", "union_id", "user_id"):
                _put(self.users, obj.get(key), name)
        elif kind == "chat":
            _put(self.chats, obj.get("chat_id"), obj.get("name"))
            self.chat_types.setdefault(obj["chat_id"], "group")  # the chat list only lists groups
        elif kind == "chat_get":
            self._learn_chat_get(obj, record.envelope)
        elif kind == "reaction":
            self._learn_reaction(obj, record.envelope.get("message_id"))

    def _learn_message(self, message: dict[str, Any]) -> None:
        for mention in _as_list(message.get("mentions")):
            if isinstance(mention, dict):
                _put(self.mentioned, mention.get("id"), mention.get("name"))
        if message.get("msg_type") == "merge_forward":
            _put(self.bundle_chats, message.get("message_id"), message.get("chat_id"))

    def _learn_chat_get(self, data: dict[str, Any], envelope: dict[str, Any]) -> None:
        chat_id = data.get("chat_id") or envelope.get("chat_id")
        if not isinstance(chat_id, str):
            return  # a chat get without the id it was asked for cannot be tied to messages
        _put(self.chats, chat_id, data.get("name"))
        if data.get("chat_mode") in ("p2p", "group", "topic"):
            self.chat_types[chat_id] = "dm" if data["chat_mode"] == "p2p" else "group"

    def _learn_reaction(self, item: dict[str, Any], message_id: Any) -> None:
        emoji = (item.get("reaction_type") or {}).get("emoji_type")
        operator = (item.get("operator") or {}).get("operator_id")
        if isinstance(message_id, str) and isinstance(emoji, str):
            by_emoji = self.reactions.setdefault(message_id, {}).setdefault(emoji, {})
            by_emoji[str(item.get("reaction_id") or len(by_emoji))] = str(operator or "")

    def reactions_of(self, message_id: str) -> list[Reaction]:
        emojis = self.reactions.get(message_id, {})
        return [
            Reaction(emoji, count=len(users), users=[u for u in users.values() if u])
            for emoji, users in emojis.items()
        ]


def _put(table: dict[str, str], key: Any, value: Any) -> None:
    """Record a non-empty name; the first source seen wins within one table."""
    if isinstance(key, str) and key and isinstance(value, str) and value:
        table.setdefault(key, value)


def _from_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """An im.message.receive_v1 event rewritten into the REST message shape."""
    event = envelope["event"]
    message = event["message"]
    sender = event.get("sender") if isinstance(event.get("sender"), dict) else {}
    sender_ids = sender.get("sender_id") if isinstance(sender.get("sender_id"), dict) else {}
    result = {key: message[key] for key in _EVENT_KEYS if key in message}
    result["msg_type"] = message.get("message_type")
    result["body"] = {"content": message.get("content")}
    result["sender"] = {"id": _event_id(sender_ids), "sender_type": sender.get("sender_type")}
    result["mentions"] = [
        {"key": m.get("key"), "id": _event_id(m.get("id")), "name": m.get("name")}
        for m in _as_list(message.get("mentions"))
        if isinstance(m, dict)
    ]
    return result


_EVENT_KEYS = ("message_id", "root_id", "parent_id", "thread_id", "create_time", "update_time", "chat_id")


def _event_id(ids: Any) -> str | None:
    """Events give ids as {open_id, union_id, user_id}; REST messages use the open_id."""
    if isinstance(ids, str):
        return ids
    if isinstance(ids, dict):
        return ids.get("open_id") or ids.get("user_id") or ids.get("union_id")
    return None


# ----------------------------------------------------------------------------- text of a message


@dataclass
class _Content:
    text: str
    kind: str
    attachments: list[Attachment] = field(default_factory=list)


_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\s]+)\)")
_ALL_ONLY = re.compile(r"(?:@_all)(?!\d)")  # the placeholder pattern of a message without mention keys


def _link(label: str, href: str) -> str:
    """``label (url)``; a bare URL or mail address stays as it is rather than doubled."""
    if not label or label == href or f"mailto:{label}" == href:
        return label or href
    return f"{label} ({href})"


class _Context:
    """How one message's placeholders resolve: its mentions first, then the directory."""

    def __init__(self, mentions: list[Mention], directory: _Directory):
        self.directory = directory
        self.by_key = {m.key: m for m in mentions if m.key}
        keys = sorted((k for k in self.by_key if k != "@_all"), key=len, reverse=True) + ["@_all"]
        # Longest key first, and never a key followed by a digit: @_user_1 must not eat @_user_10.
        self._placeholder = (
            _ALL_ONLY if len(keys) == 1 else re.compile("(?:" + "|".join(map(re.escape, keys)) + r")(?!\d)")
        )

    def at(self, key: Any, fallback_name: Any = None) -> str:
        """``@Name`` for a placeholder, an id, or "all"; unknown ones keep their key or id."""
        if key in ("@_all", "all"):
            return "@all"
        mention = self.by_key.get(key)
        if mention is not None:
            return "@" + (mention.name or mention.id or str(key))
        return "@" + (self.directory.name(key) or (fallback_name or "") or str(key or ""))

    def render(self, text: str) -> str:
        """Resolve @-placeholders and turn ``[label](url)`` into ``label (url)``."""
        if self._placeholder is not _ALL_ONLY or "@_all" in text:  # (else nothing can match)
            text = self._placeholder.sub(lambda match: self.at(match.group(0)), text)
        if "](" not in text:  # every link has one
            return text
        return _LINK.sub(lambda match: _link(match.group(1), match.group(2)), text)

    def name_of(self, value: Any) -> str:
        """A user's or chat's name for an id; a value that is already a name passes through."""
        if not isinstance(value, str):
            return ""
        return self.directory.name(value) or self.directory.chats.get(value) or value


def _object(content: Any) -> dict[str, Any]:
    if not isinstance(content, dict):
        raise _Bad(f"content is {type(content).__name__}, expected a JSON object")
    return content


def _str(content: dict[str, Any], key: str) -> str:
    value = content.get(key)
    return value if isinstance(value, str) else ""


def _text_content(content: Any, ctx: _Context) -> _Content:
    return _Content(ctx.render(_str(_object(content), "text")), "message")


def _post_content(content: Any, ctx: _Context) -> _Content:
    attachments: list[Attachment] = []
    text = _post_text(_object(content), ctx, attachments)
    return _Content(text, "message", attachments)


def _post_text(post: dict[str, Any], ctx: _Context, attachments: list[Attachment]) -> str:
    """Title, then one line per paragraph; a send-style locale wrapper ({"zh_cn": {...}}) is unwrapped."""
    if "content" not in post and "title" not in post:
        locales = [value for value in post.values() if isinstance(value, dict)]
        return "\n".join(_post_text(locale, ctx, attachments) for locale in locales)
    lines = [_str(post, "title")]
    for paragraph in post.get("content") or []:
        if isinstance(paragraph, list):
            elements = (el for el in paragraph if isinstance(el, dict))
            lines.append("".join(_post_element(el, ctx, attachments) for el in elements).rstrip())
    return "\n".join(line for line in lines if line.strip())


def _post_element(element: dict[str, Any], ctx: _Context, attachments: list[Attachment]) -> str:
    tag = element.get("tag")
    if tag == "a":
        return _link(_str(element, "text"), _str(element, "href"))
    if tag == "at":
        return ctx.at(element.get("user_id"), element.get("user_name"))
    if tag == "emotion":
        return f":{_str(element, 'emoji_type')}:" if element.get("emoji_type") else ""
    if tag in ("img", "media"):
        kind = "image" if tag == "img" else "video"
        attachments.append(Attachment(type=kind, key=element.get("file_key") or element.get("image_key")))
        return ""
    return _str(element, "text")  # text, code_block, code, and any tag we do not know yet


def _file_content(kind: str) -> Callable[[Any, _Context], _Content]:
    """file / folder / media: the file name is both searchable text and an attachment."""

    def handler(content: Any, ctx: _Context) -> _Content:
        content = _object(content)
        name = _str(content, "file_name")
        key = _str(content, "file_key") or None
        return _Content(name, "file", [Attachment(name=name or None, type=kind, key=key)])

    return handler


def _keyed_attachment(kind: str, key_field: str) -> Callable[[Any, _Context], _Content]:
    """image / audio / sticker: no words at all, so a search can never hit a made-up placeholder."""

    def handler(content: Any, ctx: _Context) -> _Content:
        key = _str(_object(content), key_field) or None
        return _Content("", kind, [Attachment(type=kind, key=key)])

    return handler


def _card_content(content: Any, ctx: _Context) -> _Content:
    """A card's title and every text leaf, including i18n variants, in document order."""
    found: list[str] = []
    _card_strings(_object(content), ctx, found, everything=False)
    return _Content("\n".join(_unique(found)), "card")


_CARD_TEXT_KEYS = ("title", "text", "content")


def _card_strings(node: Any, ctx: _Context, found: list[str], everything: bool) -> None:
    if isinstance(node, list):
        for child in node:
            _card_strings(child, ctx, found, everything)
        return
    if not isinstance(node, dict):
        return
    if node.get("tag") == "a" and isinstance(node.get("text"), str):
        found.append(_link(node["text"], _str(node, "href")))
        return
    if node.get("tag") == "at":
        found.append(ctx.at(node.get("user_id"), node.get("user_name")))
        return
    for key, value in node.items():
        wanted = everything or key in _CARD_TEXT_KEYS or "i18n" in key
        if isinstance(value, str):
            if wanted and value.strip():
                found.append(ctx.render(value.strip()))
        else:
            _card_strings(value, ctx, found, everything or "i18n" in key)


def _unique(strings: list[str]) -> list[str]:
    return list(dict.fromkeys(strings))


_TEMPLATE_VAR = re.compile(r"\{(\w+)\}")


def _system_content(content: Any, ctx: _Context) -> _Content:
    """Fill the template's ``{var}``s with joined names (ids resolved through the directory)."""
    content = _object(content)
    template = _str(content, "template")
    if not template:
        return _Content("\n".join(_string_leaves(content)), "system")
    text = _TEMPLATE_VAR.sub(lambda match: _template_value(content.get(match.group(1)), ctx), template)
    return _Content(text.strip(), "system")


def _template_value(value: Any, ctx: _Context) -> str:
    if isinstance(value, list):
        return ", ".join(ctx.name_of(item) for item in value if isinstance(item, str))
    if isinstance(value, dict):  # divider_text: {"text", "i18n_text": {locale: text}}
        i18n = value.get("i18n_text") if isinstance(value.get("i18n_text"), dict) else {}
        texts = [value.get("text"), *i18n.values()]
        return "\n".join(_unique([t for t in texts if isinstance(t, str) and t]))
    return ctx.name_of(value)


def _field_content(key: str, kind: str) -> Callable[[Any, _Context], _Content]:
    """Types whose searchable text is one string field: calendar summary, location name, ..."""

    def handler(content: Any, ctx: _Context) -> _Content:
        return _Content(_str(_object(content), key), kind)

    return handler


def _share_chat_content(content: Any, ctx: _Context) -> _Content:
    chat_id = _str(_object(content), "chat_id")
    return _Content(ctx.directory.chats.get(chat_id) or chat_id, "share")


def _share_user_content(content: Any, ctx: _Context) -> _Content:
    return _Content(ctx.name_of(_str(_object(content), "user_id")), "share")


def _todo_content(content: Any, ctx: _Context) -> _Content:
    summary = _object(content).get("summary")
    if isinstance(summary, dict):
        return _Content(_post_text(summary, ctx, []), "todo")
    return _Content(summary if isinstance(summary, str) else "", "todo")


def _vote_content(content: Any, ctx: _Context) -> _Content:
    content = _object(content)
    options = [option for option in content.get("options") or [] if isinstance(option, str)]
    return _Content("\n".join([_str(content, "topic"), *options]).strip(), "poll")


def _forward_content(content: Any, ctx: _Context) -> _Content:
    """The bundle carries only a placeholder; its words are in the sub-messages, indexed on their own."""
    return _Content("", "forward")


def _string_leaves(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node] if node.strip() else []
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        return [leaf for child in node for leaf in _string_leaves(child)]
    return []


_HANDLERS: dict[str, Callable[[Any, _Context], _Content]] = {
    "text": _text_content,
    "post": _post_content,
    "file": _file_content("file"),
    "folder": _file_content("folder"),
    "media": _file_content("video"),
    "image": _keyed_attachment("image", "image_key"),
    "audio": _keyed_attachment("audio", "file_key"),
    "sticker": _keyed_attachment("sticker", "file_key"),
    "interactive": _card_content,
    "card": _card_content,
    "system": _system_content,
    "share_chat": _share_chat_content,
    "share_user": _share_user_content,
    "calendar": _field_content("summary", "calendar"),
    "share_calendar_event": _field_content("summary", "calendar"),
    "general_calendar": _field_content("summary", "calendar"),
    "location": _field_content("name", "location"),
    "video_chat": _field_content("topic", "call"),
    "hongbao": _field_content("text", "hongbao"),
    "todo": _todo_content,
    "vote": _vote_content,
    "merge_forward": _forward_content,
}
_KINDS = {"text": "message", "post": "message", "folder": "file", "media": "file", "interactive": "card"}
_KINDS |= {"card": "card", "share_chat": "share", "share_user": "share", "calendar": "calendar"}
_KINDS |= {"share_calendar_event": "calendar", "general_calendar": "calendar", "video_chat": "call"}
_KINDS |= {"vote": "poll", "merge_forward": "forward"}


def _kind_of(msg_type: str) -> str:
    """The kind a message of this type gets, even when recalled and its content is gone."""
    return _KINDS.get(msg_type, msg_type)


def _content_of(msg_type: str, body: str, ctx: _Context) -> _Content:
    """Decode the double-encoded ``body.content`` and hand it to the msg_type's handler."""
    try:
        content: Any = json.loads(body)
    except ValueError:
        if msg_type == "merge_forward":
            return _forward_content(body, ctx)  # documented: may be the bare string
        if msg_type in _HANDLERS:
            raise _Bad(f"{msg_type} body.content is not JSON: {body[:80]!r}") from None
        content = body
    handler = _HANDLERS.get(msg_type)
    if handler is None:  # a type we do not know: keep every word it carries
        return _Content("\n".join(_string_leaves(content)), msg_type)
    try:
        return handler(content, ctx)
    except _Bad as error:
        raise _Bad(f"{msg_type} {error}") from None


# ----------------------------------------------------------------------------- messages


def _as_list(value: Any) -> list[Any]:
    """A JSON list as given, anything else (absent, null, a wrong type) as empty."""
    return value if isinstance(value, list) else []


def _to_message(record: _Record, directory: _Directory) -> Message | SourceError | None:
    """The Message for a message/event record, a SourceError for a broken one, None for directory entries."""
    kind = _record_kind(record.obj)
    if kind in ("member", "user", "chat", "chat_get", "reaction"):
        return None
    if kind in ("invalid", "unknown"):
        what = type(record.obj).__name__ if kind == "invalid" else "object with keys " + ", ".join(record.obj)
        problem = f"not a Lark message, event or directory record ({what})"
        return SourceError(problem, record.locator, record.raw)
    if kind == "other_event":
        event_type = (record.obj.get("header") or {}).get("event_type", "unknown")
        return SourceError(f"event {event_type!r} carries no message", record.locator, record.raw)
    try:
        message = _from_event(record.obj) if kind == "event" else record.obj
        return _build(message, record, directory)
    except _Bad as error:
        return SourceError(str(error), record.locator, record.raw)
    except (TypeError, AttributeError, KeyError, ValueError) as error:
        # a field of the wrong JSON type somewhere we did not check one by one
        return SourceError(f"malformed message record: a field has the wrong type ({type(error).__name__}: "
                           f"{error})", record.locator, record.raw)


def _build(obj: dict[str, Any], record: _Record, directory: _Directory) -> Message:
    native_id = obj.get("message_id")
    if not isinstance(native_id, str) or not native_id:
        raise _Bad("message record has no message_id")
    sent_raw = _epoch_ms(obj.get("create_time"), native_id, "create_time")
    chat_id = obj.get("chat_id") or directory.bundle_chats.get(obj.get("upper_message_id") or "")
    if not isinstance(chat_id, str) or not chat_id:
        raise _Bad(f"message {native_id} has no chat_id")
    msg_type = obj.get("msg_type")
    if not isinstance(msg_type, str) or not msg_type:
        raise _Bad(f"message {native_id} has no msg_type")
    mentions = _mentions(obj, directory)
    ctx = _Context(mentions, directory)
    deleted = obj.get("deleted") is True
    # A recalled body is the "This message was recalled" placeholder, which must never produce a hit.
    content = _Content("", _kind_of(msg_type)) if deleted else _content_of(msg_type, _body(obj), ctx)
    sender = obj.get("sender") if isinstance(obj.get("sender"), dict) else {}
    sender_id = sender.get("id") or None
    thread_id = obj.get("thread_id") or (obj.get("root_id") if obj.get("root_id") != native_id else None)
    message = Message(
        native_id=native_id,
        source_format=SOURCE_FORMAT,
        conversation_id=chat_id,
        sent_at=epoch_ms_to_utc(sent_raw),
        sent_at_raw=sent_raw,
        text=content.text,
        conversation_name=directory.chats.get(chat_id),
        conversation_type=directory.chat_types.get(chat_id) or ("group" if obj.get("thread_id") else None),
        thread_id=thread_id or None,
        reply_to=obj.get("parent_id") or None,
        bundle_id=obj.get("upper_message_id") or None,
        sender_id=sender_id,
        sender_name=directory.name(sender_id),
        sender_kind=_sender_kind(msg_type, sender.get("sender_type")),
        tz_assumption=TZ_ASSUMPTION,
        deleted=deleted,
        kind=content.kind,
        mentions=mentions,
        attachments=content.attachments,
        reactions=directory.reactions_of(native_id),
        raw=record.raw,
        locator=record.locator,
    )
    if obj.get("updated") is True and not deleted:
        message.edited = True
        update_time = obj.get("update_time")
        if _is_epoch_ms(update_time):
            message.edited_at = epoch_ms_to_utc(str(update_time))
    return message


def _epoch_ms(value: Any, native_id: str, name: str) -> str:
    """The exact epoch-ms string (the SDK types it int, the wire sends a string: accept both)."""
    if value is None or value == "":
        raise _Bad(f"message {native_id} has no {name}")
    if not _is_epoch_ms(value):
        raise _Bad(f"message {native_id} has a non-numeric {name}: {value!r}")
    return str(value)


def _is_epoch_ms(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())


def _body(obj: dict[str, Any]) -> str:
    body = obj.get("body")
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, str):
        raise _Bad(f"message {obj['message_id']} ({obj.get('msg_type')}) has no body.content string")
    return content


def _mentions(obj: dict[str, Any], directory: _Directory) -> list[Mention]:
    result = []
    for item in _as_list(obj.get("mentions")):
        if isinstance(item, dict):
            mention_id = item.get("id") if isinstance(item.get("id"), str) else None
            if item.get("key") == "@_all" or mention_id == "all":
                mention_id = None  # @all names everyone, not a participant with an id
            name = item.get("name") or directory.name(mention_id) or None
            result.append(Mention(id=mention_id, name=name, key=item.get("key")))
    return result


def _sender_kind(msg_type: str, sender_type: Any) -> str:
    if msg_type == "system":
        return "system"
    return {"user": "user", "app": "app"}.get(sender_type, "unknown")


# ----------------------------------------------------------------------------- sniffing

_SCORED_KEYS = (
    "message_type", "message_id", "chat_type", "msg_type", "create_time", "body", "chat_id", "reaction_type",
    "emoji_type", "member_id_type", "member_id", "chat_mode", "name", "owner_id_type", "chat_status", "items",
    "open_id", "en_name", "union_id",
)
# The JSON keys _score looks at, as they occur as keys ("key" then optional blanks then a colon).
# Matching only these finds exactly the members of {every key in the head} & set(_SCORED_KEYS):
# a key token starts at a quote and no such token can start inside another one.
_JSON_KEY = re.compile(rb'"(' + b"|".join(k.encode() for k in _SCORED_KEYS) + rb')"\s*:')


# Each scored key alone, for _scored_keys.
_KEY_PATTERNS = {key: re.compile(rb'"' + key.encode() + rb'"\s*:') for key in _SCORED_KEYS}


def _scored_keys(text: bytes, text_keys: frozenset[str] | None) -> set[str]:
    """``{key.decode() for key in _JSON_KEY.findall(text)}``.

    TEXT_KEYS, when given, is ``head_keys`` of the decoded head TEXT was cut from (the other
    sniffers have it already): a scored key found in TEXT is always among them (decoding keeps
    ASCII bytes as they are, and ``head_keys``' pattern meets every ``"key"<blanks>:`` of this
    shape), so only those few are looked for, each on its own (no two matches of _JSON_KEY can
    overlap, so findall finds exactly the keys whose own pattern matches somewhere).
    """
    if text_keys is None:
        return {key.decode("ascii") for key in set(_JSON_KEY.findall(text))}
    return {key for key in text_keys if key in _KEY_PATTERNS and _KEY_PATTERNS[key].search(text)}


def _score(head: bytes, head_keys: frozenset[str] | None = None) -> int:
    """Score a file's first bytes: message and event files highest, directory files a little lower.

    HEAD_KEYS: ``_jsonio.head_keys`` of HEAD's text, if known (a shortcut, see _scored_keys)."""
    text = head.removeprefix(BOM).lstrip()
    if text[:1] not in (b"{", b"["):
        # JSONL whose first line is damaged: judge by the lines that follow, a little less sure
        later = text.find(b"\n{")
        return max(0, _score(text[later + 1 :]) - 20) if later >= 0 else 0
    keys = _scored_keys(text, head_keys)
    if b"im.message.receive_v1" in text or {"message_type", "message_id", "chat_type"} <= keys:
        return 95
    if {"message_id", "msg_type"} <= keys and keys & {"create_time", "body", "chat_id"}:
        return 95
    if {"reaction_type", "emoji_type"} <= keys:
        return 90
    if {"member_id_type", "member_id"} <= keys:
        return 90
    if "chat_mode" in keys or ({"chat_id", "name"} <= keys and keys & {"owner_id_type", "chat_status"}):
        return 85
    if {"chat_id", "name", "items"} <= keys:  # a chat list page stripped to the essentials
        return 70
    if "open_id" in keys and "name" in keys and keys & {"en_name", "union_id"}:
        return 80
    return 0


# ----------------------------------------------------------------------------- the adapter


class LarkAdapter:
    """Lark / Feishu IM API responses and events."""

    name = "lark"
    source_format = SOURCE_FORMAT
    description = "Lark / Feishu Open Platform IM API: message pages, events, chat/member/user lookups"
    limits = (
        "Only what the exporting bot could read: p2p history needs im:message(.history):readonly, group "
        "history also im:message.group_msg, and the bot must be a member of each group. Topic-group "
        "replies are only present if each thread was exported (container_id_type=thread); merged-forward "
        "contents only if each bundle was fetched by message id. Recalled messages keep only the "
        "'This message was recalled' placeholder (original content is not recoverable); edited messages "
        "have only their latest version and edit time. Reactions only if the reactions endpoint was "
        "exported; attachments are keys and names, not bytes. Names need the member/contact lookups; "
        "open_ids are per app, so ids from another app's export do not match. Interactive cards come back "
        "simplified, and JSON 2.0 card content is not returned at all."
    )

    def sniff(self, file: SourceFile) -> int:
        """Score by content only: the JSON keys the Lark API uses, never the file name."""
        try:
            head = file.head()
        except OSError:
            return 0
        return _score(head, jsonio.head_keys(jsonio.head_text(file)))

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        """Learn names from every file first, then yield messages and problems file by file.

        OPTIONS are not needed: Lark times are epoch milliseconds (UTC) and the shapes are fixed.
        """
        directory = _Directory()
        for file in files:
            if _teaches_nothing(file):
                continue
            for item in _read(file):
                if isinstance(item, _Record):
                    # a record with wrong types teaches nothing; the second pass reports it
                    with contextlib.suppress(TypeError, AttributeError, KeyError, ValueError):
                        directory.learn(item)
        if _parallel(files):
            yield from _messages_in_parallel(files, directory)
            return
        for file in files:
            for result in _file_messages(file, directory):
                yield file, result


def _file_messages(file: SourceFile, directory: _Directory) -> Iterator[Message | SourceError]:
    """The second pass over one file: its messages and problems, in order."""
    for item in _read(file):
        result = item if isinstance(item, SourceError) else _to_message(item, directory)
        if result is not None:
            yield result


# ----------------------------------------------------------------------------- the second pass in parallel

# The second pass turns each file into messages on its own, given the directory: with this many
# files and bytes or more, worker processes (forked once the directory is complete, so they hold
# it) parse runs of PARALLEL_CHUNK files while this process writes what they return, in file order.
PARALLEL_MIN_FILES = 16
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
PARALLEL_CHUNK = 8
_WORK: tuple[list[SourceFile], _Directory] | None = None  # what forked workers parse


def _parallel(files: list[SourceFile]) -> bool:
    return (len(files) >= PARALLEL_MIN_FILES and sum(f.size for f in files) >= PARALLEL_MIN_BYTES
            and (os.cpu_count() or 1) >= 2 and may_fork())


def _parse_chunk(indices: list[int]) -> tuple[list[tuple[int, Message | SourceError]], BaseException | None]:
    """In a worker: the second pass over the files at INDICES, and the error that stopped it (if one did)."""
    assert _WORK is not None
    files, directory = _WORK
    out: list[tuple[int, Message | SourceError]] = []
    try:
        for index in indices:
            for result in _file_messages(files[index], directory):
                if isinstance(result, Message):
                    remember_tokens(result, result.text)  # so the indexing process need not
                out.append((index, result))
    except Exception as error:  # noqa: BLE001 - raised again in the parent, after what came before it
        try:
            pickle.dumps(error)
        except Exception:  # noqa: BLE001 - an exception that cannot travel: its type and text can
            error = RuntimeError(f"{type(error).__name__}: {error}")
        return out, error
    return out, None


def _messages_in_parallel(files: list[SourceFile], directory: _Directory) -> Iterator[Parsed]:
    """Exactly what the serial second pass yields, in the same order, parsed by worker processes.

    At most two runs per worker are in flight, so memory stays bounded when this process (writing
    case.db and the index) is slower than the workers. A run no worker could take (none could be
    started, or one died: killed, out of memory) is parsed here instead, when its turn comes.
    """
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from discovery.sources.files import close_archives

    global _WORK  # noqa: PLW0603 - handed to the forked workers (and read here, for runs parsed here)
    workers = max(1, min((os.cpu_count() or 1) - 1, 4))
    chunks = iter([list(range(start, min(start + PARALLEL_CHUNK, len(files))))
                   for start in range(0, len(files), PARALLEL_CHUNK)])
    broken = False
    _WORK = (files, directory)
    try:
        # Each worker starts with no zip open (forked, it would share this process's file offsets).
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=close_archives) as pool:

            def submit(chunk: list[int]) -> Future | None:
                if broken:
                    return None
                try:
                    return pool.submit(_parse_chunk, chunk)
                except (OSError, BrokenProcessPool):
                    return None

            pending = collections.deque((chunk, submit(chunk)) for chunk in itertools.islice(chunks, 2 * workers))
            while pending:
                chunk, future = pending.popleft()
                outcome = None
                if future is not None:
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                if outcome is None:
                    outcome = _parse_chunk(chunk)
                for more in itertools.islice(chunks, 1):
                    pending.append((more, submit(more)))
                results, error = outcome
                for index, result in results:
                    yield files[index], result
                if error is not None:
                    raise error
    finally:
        _WORK = None


ADAPTER = LarkAdapter()
