"""The display time zone: a per-session setting, defaulting to the case's zone, else UTC.

Every time shown says its zone, with the UTC time on hover. Date inputs (YYYY-MM-DD) are read as
whole local days in the display zone and turned into inclusive UTC bounds for the query.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from dateutil import tz as dateutil_tz
from flask import session

CASE_META_KEYS = ("display_timezone", "timezone")
_ONE_MICRO = timedelta(microseconds=1)


@functools.lru_cache(maxsize=256)
def zone(name: str) -> tzinfo | None:
    """The tzinfo for an IANA zone name (or "UTC"); None when it is not one."""
    if name == "UTC":
        return UTC
    if name not in _zone_set():
        return None  # also refuses POSIX TZ strings ("EST5EDT,M3.2.0") that gettz would invent
    return dateutil_tz.gettz(name)


@functools.lru_cache(maxsize=1)
def known_zones() -> list[str]:
    """IANA zone names for the settings form, UTC first."""
    from zoneinfo import available_timezones

    names = {name for name in available_timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/"))}
    return ["UTC", *sorted(names)]


@functools.lru_cache(maxsize=1)
def _zone_set() -> frozenset[str]:
    return frozenset(known_zones())


def case_default(case_meta: str | None) -> str:
    return case_meta if case_meta and zone(case_meta) is not None else "UTC"


def current_name(case_default_name: str) -> str:
    """The session's display zone name, else the case default."""
    name = session.get("tz")
    if isinstance(name, str) and zone(name) is not None:
        return name
    return case_default_name


def parse_utc(iso: str) -> datetime:
    """An ISO UTC time as the case stores it ("2024-03-05T06:03:22.123Z")."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)


def local(iso: str, where: tzinfo) -> datetime:
    return parse_utc(iso).astimezone(where)


def label(moment: datetime) -> str:
    """The zone's abbreviation at MOMENT, falling back to its UTC offset."""
    name = moment.tzname() or ""
    if not name or name[0] in "+-":
        return offset_text(moment)
    return name


def offset_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_local(iso: str | None, where: tzinfo, seconds: bool = True) -> str:
    if not iso:
        return ""
    moment = local(iso, where)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {label(moment)}"


def format_both(iso: str, where: tzinfo, seconds: bool = True) -> tuple[str, str]:
    """(format_utc(ISO), format_local(ISO, WHERE, SECONDS)), reading ISO once (a page shows hundreds)."""
    moment = parse_utc(iso)
    there = moment if where is UTC else moment.astimezone(where)
    if moment.year < 1000 or there.year < 1000:  # strftime's %Y does not pad these: leave them to it
        return format_utc(iso), format_local(iso, where, seconds)
    stamp = moment.isoformat(" ", "milliseconds")  # "YYYY-MM-DD HH:MM:SS.mmm+00:00"
    if there is moment:
        text = stamp[:19] if seconds else stamp[:16]
    else:  # (without its zone: isoformat would ask the zone for the offset again)
        text = there.replace(tzinfo=None).isoformat(" ", "seconds" if seconds else "minutes")
    return stamp[:23] + " UTC", f"{text} {label(there)}"


def format_utc(iso: str | None) -> str:
    if not iso:
        return ""
    return parse_utc(iso).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def parse_day(text: str) -> date:
    """YYYY-MM-DD, else ValueError with a message for the user."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date: {text!r}; use YYYY-MM-DD") from None


def day_start(day: date, where: tzinfo) -> datetime:
    """The first instant of local DAY in zone WHERE, as aware UTC (handles DST gaps)."""
    naive = datetime.combine(day, time(0))
    moment = naive.replace(tzinfo=where)
    if dateutil_tz.datetime_exists(moment) is False:  # midnight skipped by a DST jump
        moment = dateutil_tz.resolve_imaginary(moment)
    moment = dateutil_tz.enfold(moment, fold=0)
    return moment.astimezone(UTC)


def day_bounds(first: date | None, last: date | None, where: tzinfo) -> tuple[datetime | None, datetime | None]:
    """Inclusive UTC bounds covering local days FIRST..LAST in zone WHERE."""
    start = day_start(first, where) if first else None
    end = day_start(last + timedelta(days=1), where) - _ONE_MICRO if last else None
    return start, end
