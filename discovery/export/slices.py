"""Documents and Bates numbers: how the exported messages are cut into review documents.

Bates scheme (what the DAT, the RSMF files and every message row carry):

- Every exported message gets its own Bates number, PREFIX + zero-padded sequence, in export order
  (conversation, time, id), starting at ``bates_start``; numbers are unique and gap-free.
- A document is one RSMF file: the exported messages of one conversation in one time slice (a
  calendar day, or half or third of one, in the export's time zone; or the whole conversation),
  split further so no document exceeds MAX_EVENTS messages (Relativity's recommended maximum).
  A slice's messages are consecutive in export order, so a document's messages hold a contiguous
  Bates range: BEGBATES is its first message's number and ENDBATES its last's, and the documents'
  ranges tile the production without gaps, like the pages of an image production.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SLICES = {"24h": 24, "12h": 12, "8h": 8, "conversation": None}
MAX_EVENTS = 10_000
BATES_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
BATES_WIDTH = 7
# How discovery.model.iso_utc writes a time from the year 1000 on: already the UTC local_iso wants.
_UTC_MS = re.compile(r"[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def zone(name: str) -> ZoneInfo:
    """The IANA zone NAME (``UTC`` included); ValueError naming the problem otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai or UTC)") from error


def parse_utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def local_text(value: str | None, tz: ZoneInfo) -> str:
    """An ISO UTC time shown in TZ with its offset and zone name, e.g. ``2024-03-01 17:45:00.123 +08:00``."""
    if not value:
        return ""
    moment = parse_utc(value).astimezone(tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} " + _offset(moment)


def shown_time(local: str) -> str:
    """A ``local_iso`` value as people read it: ``2024-03-01T17:45:00.123+08:00`` becomes
    ``2024-03-01 17:45:00.123 +08:00``."""
    return local[:10] + " " + local[11:23] + " " + local[23:] if local else ""


def local_iso(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return ""
    if tz.key == "UTC" and _UTC_MS.fullmatch(value):  # the default zone: no date arithmetic per message
        return value[:23] + "+00:00"
    moment = parse_utc(value).astimezone(tz)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + _offset(moment)


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class Bates:
    """PREFIX + zero-padded number; the width is fixed for the whole production."""

    def __init__(self, prefix: str, start: int, count: int):
        if not BATES_PREFIX.match(prefix):
            raise ValueError(f"Bates prefix {prefix!r} must be 1-20 letters, digits, '-' or '_'")
        if start < 1:
            raise ValueError(f"Bates start must be 1 or more, not {start}")
        self.prefix = prefix
        self.start = start
        self.width = max(BATES_WIDTH, len(str(start + max(count, 1) - 1)))

    def __call__(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}d}"


@dataclass
class Document:
    """One RSMF document: consecutive exported messages of one conversation slice."""

    number: int  # 1-based position among the bundle's documents
    conversation_id: str
    conversation_name: str
    conversation_type: str | None
    slice: str  # "24h", "12h", "8h" or "conversation"
    slice_label: str  # e.g. "2024-03-01 (Asia/Shanghai)" or "whole conversation"
    slice_start: str | None  # ISO UTC bounds of the slice window; None for whole conversations
    slice_end: str | None
    part: int  # 1 unless the slice held more than MAX_EVENTS messages
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def begbates(self) -> str:
        return self.messages[0]["export"]["bates"]

    @property
    def endbates(self) -> str:
        return self.messages[-1]["export"]["bates"]

    @property
    def hits(self) -> int:
        return sum(1 for m in self.messages if m["hit"])


def slice_window(sent_at: str, slice_name: str, tz: ZoneInfo) -> tuple[str, str | None, str | None]:
    """(label, start, end) of the slice holding SENT_AT: local calendar periods in TZ, ISO UTC bounds."""
    hours = SLICES[slice_name]
    if hours is None:
        return "whole conversation", None, None
    local = parse_utc(sent_at).astimezone(tz)
    first_hour = (local.hour // hours) * hours
    start = _local_hour(local.date(), first_hour, tz)
    end_date, end_hour = (local.date() + timedelta(days=1), 0) if first_hour + hours >= 24 else (
        local.date(), first_hour + hours)
    end = _local_hour(end_date, end_hour, tz)
    label = local.date().isoformat()
    if hours != 24:
        label += f" {first_hour:02d}:00-{first_hour + hours:02d}:00"
    return f"{label} ({tz.key})", _iso(start), _iso(end)


def _local_hour(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz)


def _iso(moment: datetime) -> str:
    from discovery.model import iso_utc

    return iso_utc(moment)


def documents(messages: Iterable[dict[str, Any]], *, slice_name: str, tz: ZoneInfo, bates: Bates,
              max_events: int = MAX_EVENTS) -> Iterator[Document]:
    """Number MESSAGES (in export order) and group them into documents, one document at a time.

    Each message gains ``export = {"bates", "document", "role", "sent_at_local"}``; a document is yielded once it is
    complete, so at most MAX_EVENTS messages are held at once.
    """
    current: Document | None = None
    key: tuple[str, str] | None = None
    number = bates.start
    count = 0
    for message in messages:
        label, start, end = slice_window(message["sent_at"], slice_name, tz)
        this_key = (message["conversation_id"], label)
        if current is None or this_key != key or len(current.messages) >= max_events:
            if current is not None:
                yield current
            part = current.part + 1 if current is not None and this_key == key else 1
            count += 1
            current = Document(
                number=count, conversation_id=message["conversation_id"],
                conversation_name=message["conversation_name"], conversation_type=message["conversation_type"],
                slice=slice_name, slice_label=label, slice_start=start, slice_end=end, part=part,
            )
            key = this_key
        message["export"] = {
            "bates": bates(number),
            "document": bates(number) if not current.messages else current.begbates,
            "role": "hit" if message["hit"] else "context",
            "sent_at_local": local_iso(message["sent_at"], tz),
        }
        current.messages.append(message)
        number += 1
    if current is not None:
        yield current
