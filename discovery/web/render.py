"""Markup helpers and the HTML-or-JSON response every view goes through.

Message-derived text is never trusted: :func:`highlight` escapes each segment itself and wraps
only the matched spans in ``<mark>``; the templates use autoescaping and no ``|safe``. A link is
built from message data only after :func:`safe_href` has checked its scheme.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Flask, current_app, jsonify, render_template, request
from markupsafe import Markup, escape

from discovery.web import zones

ALLOWED_SCHEMES = ("http", "https")


def highlight(text: str | None, spans: Iterable[Sequence[int]] | None) -> Markup:
    """TEXT escaped, with each [start, end) span wrapped in <mark>; bad or overlapping spans are clipped."""
    text = text or ""
    merged: list[list[int]] = []
    for start, end in sorted((max(0, int(s[0])), min(len(text), int(s[1]))) for s in spans or ()):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[Markup] = []
    last = 0
    for start, end in merged:
        parts.append(escape(text[last:start]))
        parts.append(Markup("<mark>%s</mark>") % text[start:end])
        last = end
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


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
    from flask import g

    cached = g.get("zone_name")
    if cached is None:
        from discovery.web import get_case

        default = current_app.config.get("DEFAULT_TIMEZONE") or zones.case_default(
            next((v for k in zones.CASE_META_KEYS if (v := get_case().get_meta(k))), None)
        )
        cached = g.zone_name = zones.current_name(default)
    return str(cached)


def install(app: Flask) -> None:
    """Template filters and globals shared by every page."""

    def display_zone() -> Any:
        name = display_zone_name()
        return zones.zone(name) or zones.UTC

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
                                 conversation_label=conversation_label)


def url_with(drop: Iterable[str] = (), **changes: Any) -> str:
    """This page's URL (its HTML form) with query parameters changed; None or "" removes one.

    Built by hand rather than with url_for: a results page holds a hundred of these links.
    """
    args: dict[str, Any] = {k: v for k, v in request.args.items(multi=False) if k not in drop}
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = value
    path = request.script_root + request.path.removesuffix(".json")
    return path + ("?" + urlencode(args) if args else "")


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


def conversation_label(conversation_id: str, name: str | None) -> str:
    """The conversation's name, or for an unnamed one (a DM, usually) its members; cached per request."""
    if name and name != conversation_id:
        return name
    from flask import g

    from discovery.web import get_case, transcript

    cache = g.setdefault("conversation_labels", {})
    if conversation_id not in cache:
        cache[conversation_id] = transcript.unnamed_label(get_case(), conversation_id)
    return str(cache[conversation_id])


# Lark and others name reactions by code; show the emoji and keep the code in the title.
REACTIONS = {
    "THUMBSUP": "👍", "THUMBSDOWN": "👎", "SMILE": "😄", "LAUGH": "😆", "OK": "👌", "HEART": "❤️", "FACEPALM": "🤦",
    "CLAP": "👏", "DONE": "✅", "MUSCLE": "💪", "FIRE": "🔥", "PARTY": "🎉", "THANKS": "🙏", "SHOCKED": "😱",
    "CRY": "😢", "ANGRY": "😠", "WOW": "😮", "THINKING": "🤔", "YES": "✔️", "NO": "❌", "ROSE": "🌹",
    "+1": "👍", "-1": "👎", "thumbsup": "👍", "heart": "❤️", "joy": "😂", "eyes": "👀", "pray": "🙏",
}


def reaction_emoji(code: str | None) -> str:
    return REACTIONS.get(code or "", code or "?")
