"""Review pages: tag one message from the results, bulk-tag a search after confirming its exact count,
and walk a review set one item at a time (keys 1-9 press the tag buttons, see static/review.js).

Tagging is for admins and investigators (auditors read, never change); every change is audited by
``discovery.review`` with the user and address. A bulk change states the count ``count_query`` finds
and applies ``tag_query`` with that count as ``expected``: if the search finds another number by the
time it is confirmed, nothing changes and the answer is a 409 asking to confirm the new count.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user

from discovery import review
from discovery.query import QueryError
from discovery.search import show as run_show
from discovery.web import get_case
from discovery.web.access import READERS
from discovery.web.errors import error_response
from discovery.web.params import BadParam
from discovery.web.render import respond, safe_next, wants_json

bp = Blueprint("review", __name__)
TAGGERS: tuple[str, ...] = ("admin", "investigator")
ROLES = {"review.tag_message": TAGGERS, "review.bulk_confirm": TAGGERS, "review.bulk_apply": TAGGERS,
         "review.sets": READERS, "review.create_set": TAGGERS, "review.walk": READERS,
         "review.review_position": TAGGERS}
WALK_CONTEXT = 2  # messages shown around the item being reviewed
MAX_CONTEXT = 50


@bp.app_template_global()
def review_tags(message_id: str) -> dict[str, Any]:
    """For a hit's tag line (``_macros.html``): its tags, the case's tags, and the way back here."""
    case = get_case()
    return {"tags": review.message_tags(case, [message_id])[message_id], "choices": review.list_tags(case),
            "next": request.full_path.rstrip("?")}


def _who() -> dict[str, Any]:
    return {"actor": current_user.name, "address": request.remote_addr or "unknown"}


def _field(source: Any, name: str) -> str:
    value = (source.get(name) or "").strip()
    if not value:
        raise BadParam(name, f"{name} is required")
    return value


def _context(source: Any) -> int:
    raw = (source.get("context") or "0").strip()
    if not raw.isdigit() or int(raw) > MAX_CONTEXT:
        raise BadParam("context", f"context must be a whole number from 0 to {MAX_CONTEXT}")
    return int(raw)


@bp.post("/m/<message_id>/tags.json", defaults={"fmt": "json"})
@bp.post("/m/<message_id>/tags", defaults={"fmt": None})
def tag_message(message_id: str, fmt: str | None) -> Any:
    """Add (or with action=remove, take off) one tag on one message; back to the page it came from."""
    tag = _field(request.form, "tag")
    remove = request.form.get("action") == "remove"
    case = get_case()
    try:
        change = (review.remove_tag if remove else review.add_tag)(case, [message_id], tag, **_who())
    except review.ReviewError as error:
        return error_response(400, "The tag could not be changed", str(error))
    tags = [t.to_dict() for t in review.message_tags(case, [message_id])[message_id]]
    if wants_json(fmt):
        return respond("", {"message_id": message_id, "tags": tags, "change": change.to_dict()}, fmt="json")
    return redirect(safe_next(request.form.get("next"))
                    or url_for("messages.show", message_id=message_id))


def _bulk_args(source: Any) -> dict[str, Any]:
    return {"q": _field(source, "q"), "context": _context(source), "tag": _field(source, "tag"),
            "remove": source.get("action") == "remove"}


@bp.get("/tag-bulk.json", defaults={"fmt": "json"})
@bp.get("/tag-bulk", defaults={"fmt": None})
def bulk_confirm(fmt: str | None) -> Any:
    """The confirmation page: the exact number of messages the change would touch."""
    args = _bulk_args(request.args)
    case = get_case()
    try:
        review.get_tag(case, args["tag"])
        count = review.count_query(case, args["q"], context=args["context"])
    except review.ReviewError as error:
        return error_response(400, "The tag could not be applied", str(error))
    data = {**args, "count": count, "tags": [t.to_dict() for t in review.list_tags(case)]}
    return respond("review/bulk.html", data, fmt=fmt)


@bp.post("/tag-bulk.json", defaults={"fmt": "json"})
@bp.post("/tag-bulk", defaults={"fmt": None})
def bulk_apply(fmt: str | None) -> Any:
    """Apply the confirmed bulk change; 409 if the search no longer finds the confirmed count."""
    args = _bulk_args(request.form)
    raw = (request.form.get("expected") or "").strip()
    if not raw.isdigit():
        raise BadParam("expected", "expected (the confirmed message count) is required")
    expected = int(raw)
    case = get_case()
    try:
        review.get_tag(case, args["tag"])
        now = review.count_query(case, args["q"], context=args["context"])["messages"]
        if now != expected:
            return error_response(409, "The count changed", (
                f"The search now finds {now} messages, not the {expected} you confirmed; nothing was changed. "
                "Review the new count and confirm again."), count=now, expected=expected)
        change = review.tag_query(case, args["q"], args["tag"], remove=args["remove"], context=args["context"],
                                  expected=expected, **_who())
    except review.ReviewError as error:
        status = 409 if "confirmed" in str(error) else 400
        return error_response(status, "The tag could not be applied", str(error))
    result = {**args, "expected": expected, "changed": len(change.changed), "unchanged": len(change.unchanged),
              "batch": change.batch}
    if wants_json(fmt):
        return respond("", result, fmt="json")
    return redirect(url_for("search.search", q=args["q"], context=args["context"] or None,
                            tagged=result["changed"]))


def _set_or_404(case: Any, set_id: int) -> Any:
    try:
        return review.get_set(case, set_id)
    except review.ReviewError as error:
        abort(404, description=str(error))


@bp.get("/sets.json", defaults={"fmt": "json"})
@bp.get("/sets", defaults={"fmt": None})
def sets(fmt: str | None) -> Any:
    """Every review set with its progress, and (for taggers) a form making a new one from a query."""
    case = get_case()
    data = {"sets": [s.to_dict() for s in review.list_sets(case)]}
    return respond("review/sets.html", data, fmt=fmt)


@bp.post("/sets.json", defaults={"fmt": "json"})
@bp.post("/sets", defaults={"fmt": None})
def create_set(fmt: str | None) -> Any:
    """Freeze what a query finds now (with context) as a numbered review set."""
    name, query, context = _field(request.form, "name"), _field(request.form, "q"), _context(request.form)
    try:
        made = review.create_set(get_case(), name, query, context=context, **_who())
    except (review.ReviewError, QueryError) as error:
        return error_response(400, "The review set could not be made", str(error))
    if wants_json(fmt):
        return respond("", made.to_dict(), fmt="json", status=201)
    return redirect(url_for("review.walk", set_id=made.id))


@bp.get("/sets/<int:set_id>.json", defaults={"fmt": "json"})
@bp.get("/sets/<int:set_id>", defaults={"fmt": None})
def walk(set_id: int, fmt: str | None) -> Any:
    """One item of the set (?pos=N, default the first not reviewed) with its context and tags."""
    case = get_case()
    the_set = _set_or_404(case, set_id)
    raw = (request.args.get("pos") or "").strip()
    if raw:
        if not raw.isdigit():
            raise BadParam("pos", "pos must be an item number")
        try:
            item = review.set_item(case, set_id, int(raw))
        except review.ReviewError as error:
            abort(404, description=str(error))
    else:
        item = review.next_item(case, set_id)
    progress = review.set_progress(case, set_id)
    data: dict[str, Any] = {"set": the_set.to_dict(), "progress": progress.to_dict(),
                            "item": item.to_dict() if item else None, "tags": [], "context": [],
                            "choices": [t.to_dict() for t in review.list_tags(case)[:9]]}
    if item is not None:
        found = run_show(case, item.message_id, WALK_CONTEXT) or {"context": []}
        data["context"] = found["context"]
        data["tags"] = [t.to_dict() for t in review.message_tags(case, [item.message_id])[item.message_id]]
    return respond("review/walk.html", data, fmt=fmt)


@bp.post("/sets/<int:set_id>/items/<int:position>.json", defaults={"fmt": "json"})
@bp.post("/sets/<int:set_id>/items/<int:position>", defaults={"fmt": None})
def review_position(set_id: int, position: int, fmt: str | None) -> Any:
    """Mark item POSITION reviewed, putting the tag(s) posted on its message; then the next unreviewed."""
    case = get_case()
    _set_or_404(case, set_id)
    tags = [t.strip() for t in request.form.getlist("tag") if t.strip()]
    try:
        item = review.review_item(case, set_id, position, tags=tags, **_who())
    except review.ReviewError as error:
        return error_response(400, "The item could not be reviewed", str(error))
    following = review.next_item(case, set_id, position) or review.next_item(case, set_id)
    if wants_json(fmt):
        return respond("", {"item": item.to_dict(), "progress": review.set_progress(case, set_id).to_dict(),
                            "next": following.position if following else None}, fmt="json")
    return redirect(url_for("review.walk", set_id=set_id, pos=following.position if following else None))
