"""Reading zone-less local times (WhatsApp headers, Telegram `date`, CSV columns) as UTC.

The source does not say which zone its clock was in, so the zone is an assumption: the
user's ``--timezone`` when given, else UTC. Either way the assumption is written on every
message (``tz_assumption``), together with any daylight-saving oddity met on the way, because
a reviewer must be able to see how a time in the evidence was derived.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class LocalZone:
    """The zone for naive times, from ParseOptions.timezone, and how to describe it."""

    def __init__(self, name: str | None):
        self.name = name
        self.error: str | None = None
        self.zone: tzinfo = UTC
        if name:
            try:
                self.zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                from dateutil import tz as dateutil_tz  # accepts a few non-IANA spellings the CLI allows

                found = dateutil_tz.gettz(name)
                if found is None:
                    self.error = f"unknown time zone {name!r}; times without an offset were read as UTC"
                else:
                    self.zone = found
        if self.error or not name:
            self.label = "UTC (assumed: no --timezone given)" if not name else f"UTC (assumed: {self.error})"
        else:
            self.label = f"{name} (from --timezone)"

    def to_utc(self, naive: datetime) -> tuple[datetime, str]:
        """NAIVE read in this zone, as aware UTC, and the assumption text (with any DST note)."""
        if self.zone is UTC:
            return naive.replace(tzinfo=UTC), self.label
        first = naive.replace(tzinfo=self.zone, fold=0)
        second = naive.replace(tzinfo=self.zone, fold=1)
        note = ""
        if first.utcoffset() != second.utcoffset():
            # Either the clock went back (the time happened twice) or forward (it never happened).
            if _round_trips(first):
                note = "; ambiguous local time (clocks went back), read as the first occurrence"
            else:
                note = "; local time does not exist (clocks went forward), read with the earlier offset"
        return first.astimezone(UTC), self.label + note


def _round_trips(moment: datetime) -> bool:
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None)
