"""Conversations: the list, and one transcript read a page at a time. JSON twins with ``.json``.

``/c/<id>?at=<message id>`` opens the transcript at a message (highlighted); ``?before=`` and
``?after=`` give the page just before or after a message (the "load earlier/later" links, which
the small script fetches with ``partial=1`` and splices in place when JavaScript is on).

Every transcript page shown (the first, and each earlier/later page) is written to the audit trail
(``view_conversation``: which conversation, where, how many messages, the first and last shown).
Each message shows its tags and notes (in the twin: ``tags`` / ``notes``, message id -> list).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from discovery.query import QueryError
from discovery.query.match import spans
from discovery.search import parse_query
from discovery.web import get_case, transcript
from discovery.web.access import READERS
from discovery.web.auth import record_event
from discovery.web.params import BadParam, integer
from discovery.web.render import respond, wants_json
from discovery.web.review import review_data

bp = Blueprint("conversations", __name__)
ROLES = {"conversations.index": READERS, "conversations.show": READERS}
MAX_PAGE = 500


@bp.get("/conversations.json", defaults={"fmt": "json"})
@bp.get("/conversations", defaults={"fmt": None})
def index(fmt: str | None) -> Any:
    rows = transcript.conversations(get_case())
    return respond("conversations/index.html", {"conversations": rows}, fmt=fmt)


@bp.get("/c/<path:conversation_id>")
def show(conversation_id: str) -> Any:
    case = get_case()
    fmt = None
    if not transcript.exists(case, conversation_id) and conversation_id.endswith(".json"):
        conversation_id, fmt = conversation_id.removesuffix(".json"), "json"
    args = request.args
    size = integer(args, "size", transcript.PAGE_SIZE, 1, MAX_PAGE)
    named = {key: args.get(key, "").strip() or None for key in ("at", "before", "after")}
    if sum(value is not None for value in named.values()) > 1:
        raise BadParam("at", "give only one of at, before and after")
    asked = {"conversation_id": conversation_id, **{k: v for k, v in named.items() if v}, "size": size}
    if not transcript.exists(case, conversation_id):
        record_event("view_conversation", asked, outcome="not_found")
        abort(404, description=f"There is no conversation with id {conversation_id!r} in this case.")
    if named["at"]:
        home = transcript.home_of(case, named["at"])
        if home is not None and home["conversation_id"] != conversation_id:
            # forwarded in a bundle posted elsewhere: open the conversation that shows it
            suffix = ".json" if fmt == "json" else ""
            target = url_for("conversations.show", conversation_id=home["conversation_id"] + suffix, at=named["at"],
                             size=size if size != transcript.PAGE_SIZE else None, q=args.get("q") or None,
                             _anchor=None if suffix else f"msg-{named['at']}")
            return redirect(target)
    found = transcript.page(case, conversation_id, size=size, **named)
    if found is None:
        record_event("view_conversation", asked, outcome="not_found")
        key, value = next((k, v) for k, v in named.items() if v)
        abort(404, description=f"There is no message {value!r} in this conversation ({key}).")
    ids = [message["id"] for message in found.messages]
    record_event("view_conversation", {**asked, "messages": len(ids), "first": ids[0] if ids else None,
                                       "last": ids[-1] if ids else None, "query": args.get("q") or None})
    data = found.to_dict()
    query = args.get("q", "")[:2000]
    shown = [*found.messages, *(m for ms in found.bundles.values() for m in ms)]
    marks = highlights(case, query, shown)
    data.update(review_data(case, [m["id"] for m in shown]))
    page = {"found": found, "size": size, "query": query, "marks": marks}
    if args.get("partial") == "1" and not wants_json(fmt):
        return render_template("conversations/_page.html", data=data, **page)
    return respond("conversations/show.html", data, fmt=fmt, **page)


def highlights(case: Any, query: str, messages: list[dict[str, Any]]) -> dict[str, list[list[int]]]:
    """Where the search that led here matches each message's text (nothing if it does not parse)."""
    if not query.strip():
        return {}
    try:
        node = parse_query(case, query)
    except (QueryError, ValueError):
        return {}
    out = {}
    for message in messages:
        found = spans(node, message["text"]) if message["text"] else None
        if found:
            out[message["id"]] = [list(span) for span in found]
    return out
