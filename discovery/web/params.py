"""Search page parameters: read from the query string, checked, turned into query AST filters.

A bad value raises :class:`BadParam` (a 400 naming the parameter and what it accepts); the
filters are built as nodes of ``discovery.query.ast`` and ANDed onto the parsed query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from discovery.query import ast as q
from discovery.search import MAX_CONTEXT
from discovery.web import zones

SORTS = ("relevance", "time_desc", "time_asc")
SORT_LABELS = {"relevance": "Relevance", "time_desc": "Newest first", "time_asc": "Oldest first"}
INTERVALS = ("auto", "day", "week", "month", "year")
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20
DEFAULT_CONTEXT = 3
MAX_QUERY = 2000
# filter parameter -> query field (values as the user or a facet gave them)
TEXT_FILTERS = {
    "sender": "sender",
    "participant": "participant",
    "conversation": "conversation",
    "type": "type",
    "format": "format",
    "custodian": "custodian",
}
FLAG_FILTERS = {"has_attachment": ("has", "attachment"), "edited": ("is", "edited"), "deleted": ("is", "deleted")}
FILTER_PARAMS = ("from", "to", *TEXT_FILTERS, *FLAG_FILTERS)


class BadParam(BadRequest):
    """A request parameter with a value we cannot use: a 400 that names it."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def integer(args: MultiDict[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    raw = args.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(name, f"must be a whole number, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadParam(name, f"must be {limits}, not {value}")
    return value


def choice(args: MultiDict[str, str], name: str, options: tuple[str, ...]) -> str:
    value = args.get(name, "").strip() or options[0]
    if value not in options:
        raise BadParam(name, f"must be one of {', '.join(options)}, not {value!r}")
    return value


@dataclass
class SearchParams:
    q: str = ""
    context: int = DEFAULT_CONTEXT
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    sort: str = "relevance"
    interval: str = "auto"
    first_day: date | None = None
    last_day: date | None = None
    text_filters: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> SearchParams:
        query = args.get("q", "")
        if len(query) > MAX_QUERY:
            raise BadParam("q", f"the query is longer than {MAX_QUERY} characters")
        params = cls(
            q=query,
            context=integer(args, "context", DEFAULT_CONTEXT, 0, MAX_CONTEXT),
            page=integer(args, "page", 1, 1, 100_000),
            per_page=integer(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
            sort=choice(args, "sort", SORTS),
            interval=choice(args, "interval", INTERVALS),
            first_day=_day(args, "from"),
            last_day=_day(args, "to"),
        )
        if params.first_day and params.last_day and params.first_day > params.last_day:
            raise BadParam("to", f"the date range ends ({params.last_day}) before it starts ({params.first_day})")
        for name in TEXT_FILTERS:
            value = args.get(name, "").strip()
            if len(value) > 500:
                raise BadParam(name, "the value is too long")
            if value:
                params.text_filters[name] = value
        for name in FLAG_FILTERS:
            raw = args.get(name, "").strip().lower()
            if raw in ("1", "on", "true", "yes"):
                params.flags.append(name)
            elif raw not in ("", "0", "off", "false", "no"):
                raise BadParam(name, f"must be 1 or 0, not {raw!r}")
        return params

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def has_filters(self) -> bool:
        return bool(self.first_day or self.last_day or self.text_filters or self.flags)

    @property
    def is_empty(self) -> bool:
        """No query and no filter: the page shows the case overview instead of every message."""
        return not self.q.strip() and not self.has_filters

    def filter_nodes(self, where: tzinfo) -> list[q.Node]:
        """The form's filters as query nodes; dates are whole local days in the display zone WHERE."""
        nodes: list[q.Node] = []
        if self.first_day or self.last_day:
            start, end = zones.day_bounds(self.first_day, self.last_day, where)
            nodes.append(q.DateRange(start, end))
        nodes.extend(q.Field(TEXT_FILTERS[name], value) for name, value in self.text_filters.items())
        nodes.extend(q.Field(*FLAG_FILTERS[name]) for name in self.flags)
        return nodes

    def to_dict(self) -> dict[str, Any]:
        return {
            "q": self.q, "context": self.context, "page": self.page, "per_page": self.per_page, "sort": self.sort,
            "interval": self.interval,
            "from": self.first_day.isoformat() if self.first_day else None,
            "to": self.last_day.isoformat() if self.last_day else None,
            **self.text_filters, **dict.fromkeys(self.flags, True),
        }


def _day(args: MultiDict[str, str], name: str) -> date | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        return zones.parse_day(raw)
    except ValueError as error:
        raise BadParam(name, str(error)) from None
