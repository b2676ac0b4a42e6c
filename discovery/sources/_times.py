"""Exact timestamp parsing for the chat exports whose times are strings (ISO 8601, epoch strings).

``datetime.fromisoformat`` accepts at most 6 fraction digits on Python 3.11, but Teams and
DiscordChatExporter write 7 (.NET ticks) and Teams also writes none; float epochs lose the last
digits of Slack's ``ts``. So the digits are split by regex and built into a datetime by integer
arithmetic. Each function raises ValueError with a readable reason; adapters turn that into a
SourceError for the one record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH = re.compile(r"(\d{1,12})(?:\.(\d{1,9}))?")


def parse_iso(value: str) -> tuple[datetime, bool]:
    """(datetime, True) for a time with an offset (aware, in UTC); (naive datetime, False) without one.

    Fractions beyond microseconds (the 7th digit of a .NET tick) are truncated, never rounded, so
    a time is never moved into the next microsecond.
    """
    match = _ISO.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not an ISO 8601 date-time: {value!r}")
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups()[:6])
    fraction = (match.group(7) or "")[:6].ljust(6, "0")
    moment = datetime(year, month, day, hour, minute, second, int(fraction))
    zone = match.group(8)
    if zone is None:
        return moment, False
    try:
        return moment.replace(tzinfo=_offset(zone)).astimezone(UTC), True
    except OverflowError as error:  # year 1 or 9999 pushed past the calendar by the offset
        raise ValueError(f"date-time out of range in UTC: {value!r}") from error


def iso_to_utc(value: str) -> datetime:
    """An ISO 8601 time that must carry an offset (``Z``, ``+00:00``, ``+0800``) as aware UTC."""
    moment, zoned = parse_iso(value)
    if not zoned:
        raise ValueError(f"date-time has no UTC offset: {value!r}")
    return moment


def _offset(zone: str) -> timezone:
    if zone in ("Z", "z"):
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"impossible UTC offset {zone!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def epoch_seconds_to_utc(value: str) -> datetime:
    """A decimal epoch-seconds string (Slack ``ts`` ``"1700000000.000200"``) to UTC, exactly."""
    match = _EPOCH.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not an epoch-seconds string: {value!r}")
    micros = int((match.group(2) or "")[:6].ljust(6, "0"))
    try:
        return datetime.fromtimestamp(int(match.group(1)), tz=UTC) + timedelta(microseconds=micros)
    except (OverflowError, OSError, ValueError) as error:
        raise ValueError(f"epoch seconds out of range: {value!r}") from error


def epoch_ms_to_utc_checked(value: object) -> datetime:
    """An epoch-milliseconds int (Mattermost ``create_at``) to UTC; rejects bools, floats and junk."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer epoch-milliseconds value: {value!r}")
    try:
        return datetime.fromtimestamp(value // 1000, tz=UTC) + timedelta(milliseconds=value % 1000)
    except (OverflowError, OSError, ValueError) as error:
        raise ValueError(f"epoch milliseconds out of range: {value!r}") from error
