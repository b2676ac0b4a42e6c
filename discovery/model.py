"""The one message model every source format is parsed into.

Adapters yield :class:`Message` objects; nothing downstream of an adapter knows which chat
platform a message came from. Times are timezone-aware UTC, with the raw source value kept
beside them, because evidence must show what the source actually said.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

CONVERSATION_TYPES = ("group", "channel", "dm", "thread")
SENDER_KINDS = ("user", "bot", "app", "system", "unknown")


@dataclass
class Attachment:
    name: str | None = None
    type: str | None = None  # "file", "image", "audio", "video", "folder", "sticker", ...
    size: int | None = None
    key: str | None = None  # platform key (Lark file_key / image_key, Slack file id, ...)


@dataclass
class Mention:
    id: str | None
    name: str | None
    key: str | None = None  # the placeholder in the source text, e.g. "@_user_1"


@dataclass
class Reaction:
    emoji: str
    count: int = 1
    users: list[str] = field(default_factory=list)


@dataclass
class Message:
    native_id: str
    source_format: str  # e.g. "lark_api"
    conversation_id: str
    sent_at: datetime  # aware, UTC
    sent_at_raw: str  # the exact source value, e.g. "1700000000123"
    text: str = ""  # plain text for search: mentions resolved, links "label (url)", rich text flat
    conversation_name: str | None = None
    conversation_type: str | None = None  # one of CONVERSATION_TYPES when known
    thread_id: str | None = None  # the thread/topic this message belongs to
    reply_to: str | None = None  # the message this one directly replies to / quotes
    bundle_id: str | None = None  # native id of the merged-forward bundle that contains this message
    sender_id: str | None = None
    sender_name: str | None = None
    sender_kind: str = "unknown"
    tz_assumption: str | None = None  # how a zone-less raw time was read, e.g. "UTC (epoch ms)"
    edited: bool = False
    edited_at: datetime | None = None
    deleted: bool = False
    kind: str = "message"  # message / system / file / image / card / forward / call / ...
    mentions: list[Mention] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    raw: str = ""  # the source record verbatim (or as exactly as the container allows)
    locator: str = ""  # where in its source file: "line 12", or a JSON pointer "/data/items/3"

    def key(self) -> str:
        """The stable case-wide id: the same source message always gets the same id."""
        return stable_id(self.source_format, self.conversation_id, self.native_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sent_at"] = iso_utc(self.sent_at)
        data["edited_at"] = iso_utc(self.edited_at) if self.edited_at else None
        return data


def stable_id(source_format: str, conversation_id: str, native_id: str) -> str:
    """Derive a short, URL-safe id that is the same whenever the same message is ingested."""
    digest = hashlib.sha256(
        "\x1f".join((source_format, conversation_id, native_id)).encode("utf-8")
    ).hexdigest()
    return "m" + digest[:19]


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, millisecond precision: the one way times leave us."""
    moment = moment.astimezone(UTC)
    if moment.year >= 1000:  # isoformat pads years to 4 digits, strftime does not: the same from 1000
        return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # truncated to ms, as below
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms_to_utc(value: str | int) -> datetime:
    """Lark, Mattermost and others send epoch milliseconds, often as strings."""
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


class SourceError(Exception):
    """A data problem in one record or file; carries where it happened so it can be reported."""

    def __init__(self, message: str, locator: str = "", raw: str | None = None, path: str | None = None):
        super().__init__(message)
        self.locator = locator
        self.raw = raw
        self.path = path  # the file it concerns, when that is not the one being parsed (e.g. a zip in a folder)
