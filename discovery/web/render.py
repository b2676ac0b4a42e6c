"""Markup helpers and the HTML-or-JSON response every view goes through.

Message-derived text is never trusted: :func:`highlight` escapes each segment itself and wraps
only the matched spans in ``<mark>``; the templates use autoescaping and no ``|safe``. A link is
built from message data only after :func:`safe_href` has checked its scheme.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, quote_plus, urlencode, urlsplit

from flask import Flask, current_app, g, jsonify, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.routing import BuildError
from werkzeug.routing.converters import BaseConverter

from discovery.web import zones

ALLOWED_SCHEMES = ("http", "https")


def highlight(text: str | None, spans: Iterable[Sequence[int]] | None) -> Markup:
    """TEXT escaped, with each [start, end) span wrapped in <mark>; bad or overlapping spans are clipped."""
    text = text or ""
    if not spans:
        return escape(text)
    size = len(text)
    merged: list[list[int]] = []
    for start, end in sorted((max(0, int(s[0])), min(size, int(s[1]))) for s in spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[str] = []
    last = 0
    for start, end in merged:
        parts += (escape(text[last:start]), "<mark>", escape(text[start:end]), "</mark>")
        last = end
    parts.append(escape(text[last:]))
    return Markup("".join(parts))


def safe_href(url: str | None) -> str | None:
    """URL when it is an absolute http(s) link, else None (javascript:, data:, relative ...)."""
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ALLOWED_SCHEMES and parts.netloc else None


def filesize(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def pretty_json(raw: str | None) -> str:
    """The raw source record, indented when it is JSON, verbatim otherwise."""
    if not raw:
        return ""
    try:
        return json.dumps(json.loads(raw), ensure_ascii=False, indent=2)
    except ValueError:
        return raw


def wants_json(fmt: str | None = None) -> bool:
    """The .json twin was asked for, by suffix or by an Accept header preferring JSON."""
    if fmt == "json":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def respond(template: str, data: dict[str, Any], *, fmt: str | None = None, status: int = 200,
            **page: Any) -> Any:
    """DATA as JSON for the twin, else TEMPLATE rendered with data= DATA and the PAGE extras."""
    if wants_json(fmt):
        response = jsonify(data)
        response.status_code = status
        return response
    return render_template(template, data=data, **page), status


def display_zone_name() -> str:
    """The zone this request shows times in (the session's, else the case's, else UTC); read once per request."""
    cached = g.get("zone_name")
    if cached is None:
        from discovery.web import get_case

        default = current_app.config.get("DEFAULT_TIMEZONE") or zones.case_default(
            next((v for k in zones.CASE_META_KEYS if (v := get_case().get_meta(k))), None)
        )
        cached = g.zone_name = zones.current_name(default)
    return str(cached)


def display_zone() -> Any:
    """The tzinfo of :func:`display_zone_name` (read once per request)."""
    cached = g.get("display_zone")
    if cached is None:
        cached = g.display_zone = zones.zone(display_zone_name()) or zones.UTC
    return cached


_NO_TIME = Markup('<span class="muted">time unknown</span>')


def time_tag(iso: str | None, seconds: bool = True) -> Markup:
    """``<time>`` for an ISO UTC time: the display zone's time, UTC on hover (the ``when`` macro)."""
    if not iso:
        return _NO_TIME
    utc, local = zones.format_both(iso, display_zone(), seconds)
    return Markup(f'<time datetime="{escape(iso)}" title="{escape(utc)}">{escape(local)}</time>')


def install(app: Flask) -> None:
    """Template filters and globals shared by every page."""

    app.jinja_env.filters.update(
        highlight=highlight,
        filesize=filesize,
        pretty_json=pretty_json,
        local_time=lambda iso, seconds=True: zones.format_local(iso, display_zone(), seconds),
        utc_time=zones.format_utc,
        safe_href=safe_href,
    )
    app.jinja_env.filters["reaction"] = reaction_emoji
    app.jinja_env.globals.update(display_zone_name=display_zone_name, url_with=url_with, month_bounds=month_bounds,
                                 conversation_label=conversation_label, time_tag=time_tag, url_for_each=url_for_each,
                                 repeated_labels=repeated_labels)


def repeated_labels(values: Iterable[Any]) -> set[str]:
    """The labels shown more than once among facet VALUES: one person with an account in two
    exports (or two people of one name) is two senders, and the page must tell them apart."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for value in values:
        (repeated if value.label in seen else seen).add(value.label)
    return repeated


def url_with(drop: Iterable[str] = (), **changes: Any) -> str:
    """This page's URL (its HTML form) with query parameters changed; None or "" removes one.

    Built by hand rather than with url_for: a results page holds a hundred of these links.
    """
    base = g.get("url_with_base")
    if base is None:  # this page's path, and each of its parameters already encoded (key=value)
        base = g.url_with_base = (request.script_root + request.path.removesuffix(".json"),
                                  {k: _pair(k, v) for k, v in request.args.items(multi=False)})
    path, current = base
    args = {k: v for k, v in current.items() if k not in drop} if drop else dict(current)
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = _pair(key, value)
    return path + ("?" + "&".join(args.values()) if args else "")


def _pair(key: Any, value: Any) -> str:
    """``urlencode({KEY: VALUE})``, one pair."""
    if isinstance(key, str) and isinstance(value, str):
        return quote_plus(key, safe="") + "=" + quote_plus(value, safe="")
    return urlencode({key: value})


class _UrlShape:
    """``url_for(endpoint, **values)`` cut where the values go, to be filled in with each one's quoting.

    Built once per request from a url_for call whose values are markers; each value is then quoted
    as werkzeug and Flask quote it where it lands: a path variable (the default and path
    converters), a query parameter, the #anchor.
    """

    _PATH_SAFE = "!$&'()*+,/:;=@"  # werkzeug BaseConverter.to_url
    _QUERY_SAFE = "!$'()*,/:;?@"  # werkzeug.urls._urlencode
    _ANCHOR_SAFE = "%!#$&'()*+,/:;=?@"  # flask.App.url_for

    def __init__(self, pieces: list[str], quoters: list[tuple[str, Any]]):
        self.pieces = pieces  # len(quoters) + 1 literal pieces
        self.quoters = quoters  # (key, quote function) in the order they appear

    @classmethod
    def make(cls, endpoint: str, keys: list[str]) -> _UrlShape | None:
        """The shape of ENDPOINT's URL with KEYS given, or None when it cannot be cut safely."""
        converters = [getattr(rule, "_converters", None) for rule in current_app.url_map.iter_rules(endpoint)]
        if any(c is None or any(type(c[key]).to_url is not BaseConverter.to_url for key in keys if key in c)
               for c in converters):
            return None  # a converter of its own (int ...): leave it to url_for
        try:
            url = url_for(endpoint, **{key: f"\x00{index}\x00" for index, key in enumerate(keys)})
        except (BuildError, ValueError):
            return None
        query_at, anchor_at = url.find("?"), url.find("#")
        pieces: list[str] = []
        quoters: list[tuple[str, Any]] = []
        start = 0
        for index, key in enumerate(keys):
            marker = f"%00{index}%00"
            at = url.find(marker, start)
            if at < 0 or url.find(marker, at + 1) >= 0:
                return None  # not where expected (or twice): leave it to url_for
            if key == "_anchor":
                quoter = cls._anchor
            elif anchor_at != -1 and at > anchor_at:
                return None
            elif query_at != -1 and at > query_at:
                quoter = cls._query
            else:
                quoter = cls._path
            pieces.append(url[start:at])
            quoters.append((key, quoter))
            start = at + len(marker)
        pieces.append(url[start:])
        return cls(pieces, quoters)

    @staticmethod
    def _path(value: Any) -> str:
        return quote(str(value), safe=_UrlShape._PATH_SAFE)

    @staticmethod
    def _query(value: Any) -> str:
        return quote_plus(str(value), safe=_UrlShape._QUERY_SAFE)

    @staticmethod
    def _anchor(value: Any) -> str:
        return quote(value, safe=_UrlShape._ANCHOR_SAFE)

    def build(self, values: dict[str, Any]) -> str:
        pieces = self.pieces
        out = [pieces[0]]
        for index, (key, quoter) in enumerate(self.quoters, start=1):
            out.append(quoter(values[key]))
            out.append(pieces[index])
        return "".join(out)


def url_for_each(endpoint: str, **values: Any) -> str:
    """``url_for(endpoint, **values)``, for links repeated once per message on a page: the URL's
    shape is built once per request (per endpoint and names given), then each call only quotes its
    values into it (url_for resolves the rule again every time). None values are left out, as
    url_for does; anything unusual (values that pick a rule, such as ``fmt``; non-strings) goes
    to url_for itself."""
    given = {key: value for key, value in values.items() if value is not None}
    if not all(type(value) is str for value in given.values()):
        return url_for(endpoint, **values)
    shapes = g.setdefault("url_shapes", {})
    shape_key = (endpoint, tuple(given))
    shape = shapes.get(shape_key)
    if shape is None:
        defaulted = any(key in (rule.defaults or ()) for rule in current_app.url_map.iter_rules(endpoint)
                        for key in given)
        shape = shapes[shape_key] = (not defaulted and _UrlShape.make(endpoint, list(given))) or False
    if shape is False:
        return url_for(endpoint, **values)
    return shape.build(given)


def safe_next(target: str | None) -> str | None:
    """A redirect target only when it is a path on this site ("/search?q=x"), never another host."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(ch) < 32 for ch in target) or urlsplit(target).netloc:
        return None
    return target


def month_bounds(month: str) -> tuple[str, str]:
    """("YYYY-MM-01", "YYYY-MM-<last>") for a month facet value "YYYY-MM"."""
    from discovery.facets import bucket_of

    first, last = bucket_of(zones.parse_day(f"{month}-01"), "month")
    return first.isoformat(), last.isoformat()


_KEPT: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, Any]]] = weakref.WeakKeyDictionary()
_KEPT_LOCK = threading.Lock()


def kept(case: Any, key: str, compute: Callable[[], Any]) -> Any:
    """COMPUTE() for KEY, kept with CASE's (this thread's) connection from request to request for as
    long as no other connection writes to case.db (SQLite's ``PRAGMA data_version``: an ingest, or
    another server thread's audit record, and everything kept is dropped).

    Only for what the web app itself never writes (conversations, participants, sources): its own
    writes on this connection do not change the version.
    """
    memo = g.get("kept")
    if memo is None:
        version = case.db.execute("PRAGMA data_version").fetchone()[0]
        with _KEPT_LOCK:
            entry = _KEPT.get(case)
            if entry is None or entry[0] != version:
                entry = _KEPT[case] = (version, {})
        memo = g.kept = entry[1]
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def conversation_label(conversation_id: str, name: str | None) -> str:
    """The conversation's name, or for an unnamed one (a DM, usually) its members (see :func:`kept`)."""
    if name and name != conversation_id:
        return name
    from discovery.web import get_case, transcript

    case = get_case()
    return str(kept(case, f"conversation_label:{conversation_id}",
                    lambda: transcript.unnamed_label(case, conversation_id)))


# Lark and others name reactions by code; show the emoji and keep the code in the title.
REACTIONS = {
    "THUMBSUP": "👍", "THUMBSDOWN": "👎", "SMILE": "😄", "LAUGH": "😆", "OK": "👌", "HEART": "❤️", "FACEPALM": "🤦",
    "CLAP": "👏", "DONE": "✅", "MUSCLE": "💪", "FIRE": "🔥", "PARTY": "🎉", "THANKS": "🙏", "SHOCKED": "😱",
    "CRY": "😢", "ANGRY": "😠", "WOW": "😮", "THINKING": "🤔", "YES": "✔️", "NO": "❌", "ROSE": "🌹",
    "+1": "👍", "-1": "👎", "thumbsup": "👍", "heart": "❤️", "joy": "😂", "eyes": "👀", "pray": "🙏",
}


def reaction_emoji(code: str | None) -> str:
    return REACTIONS.get(code or "", code or "?")
