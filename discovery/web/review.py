"""Review pages: tags and notes beside messages, tag administration, the tag facet, bulk-tagging a
search after confirming its exact count, and walking a review set (keys 1-9, see static/review.js).

Tagging and notes are for admins and investigators (auditors read, never change); a note is edited
or deleted only by its author or an admin (others get no form, and a 403); defining and
recolouring tags is for admins. Every change goes through ``discovery.review`` with the user and
address, which writes it to the audit trail. A bulk change takes the search page's own query,
filters (turned into query nodes by ``SearchParams.filter_nodes``, as the search page does) and
context, states the count ``count_query`` finds and applies ``tag_query`` with that count as
``expected``: if the search finds another number by the time it is confirmed, nothing changes and
the answer is a 409 asking to confirm the new count. A page that confirmed a change is sent back with
one flashed line (category ``bulk``, in the session, shown escaped by the search page) saying what the
library did; an unknown or missing tag is asked for again beside the search's query and filters.
A set's walk page links to the previous and next item (``?pos=N``); ``j`` / ``k`` follow those links.

Pages showing messages call :func:`prefetch` with the ids they show, so each message's tags and
notes come from two queries per page (the template globals ``review_tags`` / ``review_notes``);
what the forms beside every message share (``review_form``) is worked out once per request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from discovery import review
from discovery.query import QueryError
from discovery.query import ast as q
from discovery.query.parser import parse
from discovery.search import show as run_show
from discovery.web import get_case, zones
from discovery.web.access import READERS, allowed
from discovery.web.errors import error_response
from discovery.web.params import BadParam, SearchParams
from discovery.web.render import display_zone_name, respond, safe_next, url_with, wants_json

bp = Blueprint("review", __name__)
TAGGERS: tuple[str, ...] = ("admin", "investigator")
TAG_ADMINS: tuple[str, ...] = ("admin",)
ROLES = {"review.tag_message": TAGGERS, "review.bulk_confirm": TAGGERS, "review.bulk_apply": TAGGERS,
         "review.sets": READERS, "review.create_set": TAGGERS, "review.walk": READERS,
         "review.review_position": TAGGERS, "review.add_note": TAGGERS, "review.edit_note": TAGGERS,
         "review.delete_note": TAGGERS, "review.tags": READERS, "review.define_tag": TAG_ADMINS,
         "review.update_tag": TAG_ADMINS}
WALK_CONTEXT = 2  # messages shown around the item being reviewed
MAX_CONTEXT = 50
_HEX = re.compile(r"#[0-9a-f]{6}")
NEUTRAL = "#757575"  # shown for a colour that is not #rrggbb (never put into markup unchecked)


# ---------------------------------------------------------------------------------- tags and notes shown


def prefetch(case: Any, message_ids: list[str]) -> None:
    """Load the tags and notes of the messages a page shows, in two queries, for the template globals."""
    ids = [i for i in dict.fromkeys(message_ids) if i not in g.get("review_notes", {})]
    if not ids:
        return
    g.review_tag_map = {**g.get("review_tag_map", {}), **review.message_tags(case, ids)}
    g.review_notes = {**g.get("review_notes", {}), **review.notes_for(case, ids)}


def _tags_of(message_id: str) -> list[review.AppliedTag]:
    known = g.get("review_tag_map", {})
    if message_id not in known:
        prefetch(get_case(), [message_id])
        known = g.review_tag_map
    return list(known[message_id])


def _choices() -> list[review.Tag]:
    if "review_choices" not in g:
        g.review_choices = review.list_tags(get_case())
    return list(g.review_choices)


@bp.app_template_global()
def review_tags(message_id: str) -> dict[str, Any]:
    """For a message's tag line (``_macros.html``): its tags, and what every such line shares
    (:func:`review_form`: the case's tags, the way back here ...)."""
    return {"tags": _tags_of(message_id), **review_form()}


_OPTION = Markup("<option>%s</option>")


@bp.app_template_global()
def review_form() -> dict[str, Any]:
    """What the review forms beside each message share, worked out once per request: which forms
    the user gets (``may``: tag, add_note, edit_note; a note's own edit form also needs
    :func:`may_change_note`), who the user is (``me``, ``admin``), the case's tags (``choices``, and as
    ``<option>``s: ``options``), the way back here (``next``) and the form token (``csrf``, made
    only for a user who gets a form)."""
    form = g.get("review_form")
    if form is None:
        may = {"tag": allowed("review.tag_message"), "add_note": allowed("review.add_note"),
               "edit_note": allowed("review.edit_note")}
        choices = _choices()
        form = g.review_form = {
            "may": may, "me": getattr(current_user, "name", None), "admin": _is_admin(),
            "choices": choices, "next": here(),
            "options": Markup("").join(_OPTION % tag.name for tag in choices),
            "csrf": generate_csrf() if any(may.values()) else "",
        }
    return dict(form)


@bp.app_template_global()
def may_change_note(note: review.Note) -> bool:
    """Whether this user gets the edit and delete forms beside NOTE: a writer who wrote it, or an admin."""
    form = review_form()
    return bool(form["may"]["edit_note"]) and review.may_change_note(note, form["me"] or "", form["admin"])


@bp.app_template_global()
def here() -> str:
    """This page's path and query, for a form's way back (a transcript's spliced partial page: its full page)."""
    back = g.get("review_here")
    if back is None:
        back = g.review_here = url_with(drop=["partial"])
    return str(back)


@bp.app_template_global()
def review_tags_list() -> list[review.Tag]:
    """The case's tags in list order (read once per request)."""
    return _choices()


@bp.app_template_global()
def review_notes(message_id: str) -> list[review.Note]:
    """The live notes of a message, oldest first (prefetched by the view when it can)."""
    if message_id not in g.get("review_notes", {}):
        prefetch(get_case(), [message_id])
    return list(g.review_notes[message_id])


@bp.app_template_filter("tag_colour")
def tag_colour(value: str | None) -> str:
    """A tag's colour for an SVG fill: #rrggbb as stored, anything else a neutral grey."""
    colour = (value or "").strip().lower()
    return colour if _HEX.fullmatch(colour) else NEUTRAL


def review_data(case: Any, message_ids: list[str]) -> dict[str, Any]:
    """The tags and notes of MESSAGE_IDS for a JSON twin (and prefetched for the HTML)."""
    prefetch(case, message_ids)
    ids = list(dict.fromkeys(message_ids))
    return {"tags": {i: [t.to_dict() for t in g.review_tag_map[i]] for i in ids},
            "notes": {i: [n.to_dict() for n in g.review_notes[i]] for i in ids}}


def search_extras(case: Any, result: Any, shown: list[dict[str, Any]],
                  hit_ids: Iterable[str] | None = None, *, twin: bool = True) -> dict[str, Any]:
    """What the search page adds for review: the tag facet over the whole result, and the tags and
    notes of the messages shown (hits and context). HIT_IDS, every hit id if the page has them
    already, makes the facet a set intersection instead of an engine pass. Without TWIN (an HTML
    page) the tags and notes are only prefetched for the template, not also listed as JSON."""
    facet = review.tag_counts_of_query(case, result.parsed, result.total, hit_ids)
    ids = [m["id"] for m in shown]
    if not twin:
        prefetch(case, ids)
        return {"tag_facet": facet.to_dict()}
    return {"tag_facet": facet.to_dict(), **review_data(case, ids)}


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> q.Node:
    """parse(TEXT), remembered: the tag facet asks about the same query once per tag (nodes are frozen)."""
    return parse(text)


@bp.app_template_global()
def with_clause(query: str, clause: str) -> str:
    """QUERY narrowed by CLAUSE (``tag:"hot"``, ``is:untagged``): appended, in parentheses when
    appending alone would bind it to a part of QUERY only (``a OR b`` -> ``(a OR b) tag:"hot"``)."""
    text = query.strip()
    if not text:
        return clause
    try:
        if _parsed(f"{text} {clause}") == q.and_all([_parsed(text), _parsed(clause)]):
            return f"{text} {clause}"
    except QueryError:
        pass
    return f"({text}) {clause}"


@bp.app_template_global()
def has_clause(query: str, clause: str) -> bool:
    """Whether QUERY is already narrowed by CLAUSE (the facet then shows it as chosen)."""
    try:
        node, wanted = _parsed(query), _parsed(clause)
    except QueryError:
        return False
    return node == wanted or (isinstance(node, q.And) and wanted in node.children)


@bp.app_template_global()
def tag_clause(name: str) -> str:
    """The query clause for one tag (tag names cannot contain double quotes)."""
    return f'tag:"{name}"'


def _who() -> dict[str, Any]:
    return {"actor": current_user.name, "address": request.remote_addr or "unknown"}


def _is_admin() -> bool:
    return getattr(current_user, "role", None) == "admin"


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


def _bulk_args(source: Any, *, tag_required: bool = True) -> tuple[dict[str, Any], SearchParams]:
    """The bulk request: the search page's parameters (query, filters, context) plus tag and action
    (without TAG_REQUIRED, a missing tag is "" for the confirmation page to ask for)."""
    params = SearchParams.from_args(source)
    if params.is_empty:
        raise BadParam("q", "give the query or filters of the search whose hits you want to tag")
    tag = _field(source, "tag") if tag_required else (source.get("tag") or "").strip()
    args = {"q": params.q, "context": _context(source), "tag": tag,
            "remove": source.get("action") == "remove", "filters": filter_args(params)}
    return args, params


def filter_args(params: SearchParams) -> dict[str, str]:
    """The form filters of PARAMS as query-string parameters (what the search page's URL carries)."""
    out = {"from": params.first_day.isoformat() if params.first_day else "",
           "to": params.last_day.isoformat() if params.last_day else "", **params.text_filters,
           **dict.fromkeys(params.flags, "1")}
    return {name: value for name, value in out.items() if value}


def _filter_nodes(params: SearchParams) -> list[q.Node]:
    """The filters as query nodes, exactly as the search page builds them (dates in the display zone)."""
    return params.filter_nodes(zones.zone(display_zone_name()) or zones.UTC)


@bp.get("/tag-bulk.json", defaults={"fmt": "json"})
@bp.get("/tag-bulk", defaults={"fmt": None})
def bulk_confirm(fmt: str | None) -> Any:
    """The confirmation page: the exact number of messages the change would touch (filters included).

    Without a tag, or with one the case does not have, the page asks for the tag (a 400 naming the
    unknown one), keeping the query, filters, context and the way back; the JSON twin is a 400."""
    args, params = _bulk_args(request.args, tag_required=wants_json(fmt))
    case = get_case()
    tags = review.list_tags(case)
    back = safe_next(request.args.get("next"))
    cancel = back or url_for("search.search", q=args["q"] or None, **args["filters"])
    page = {"params": params, "back": back, "cancel": cancel, "labels": _filter_labels(case, args["filters"])}
    if not args["tag"]:  # the page only (the twin needs the tag): ask for it
        data = {**args, "count": None, "tags": [t.to_dict() for t in tags], "error": None}
        return respond("review/bulk.html", data, fmt=fmt, **page)
    try:
        review.get_tag(case, args["tag"])
    except review.ReviewError as error:
        if wants_json(fmt):
            return error_response(400, "The tag could not be applied", str(error))
        data = {**args, "count": None, "tags": [t.to_dict() for t in tags], "error": str(error)}
        return respond("review/bulk.html", data, fmt=fmt, status=400, **page)
    try:
        count = review.count_query(case, args["q"], filters=_filter_nodes(params), context=args["context"])
    except review.ReviewError as error:
        return error_response(400, "The tag could not be applied", str(error))
    data = {**args, "count": count, "tags": [t.to_dict() for t in tags]}
    return respond("review/bulk.html", data, fmt=fmt, **page)


def _filter_labels(case: Any, filters: dict[str, str]) -> dict[str, str]:
    """Names for the people and conversations a filter gives by id (as the search page shows them)."""
    tables = {"sender": "participants", "participant": "participants", "conversation": "conversations"}
    labels = {}
    for name, table in tables.items():
        value = filters.get(name)
        row = case.db.execute(f"SELECT name FROM {table} WHERE id = ?", (value,)).fetchone() if value else None
        if row and row[0] and row[0] != value:
            labels[name] = f"{row[0]} ({value})"
    return labels


@bp.post("/tag-bulk.json", defaults={"fmt": "json"})
@bp.post("/tag-bulk", defaults={"fmt": None})
def bulk_apply(fmt: str | None) -> Any:
    """Apply the confirmed bulk change; 409 if the search no longer finds the confirmed count."""
    args, params = _bulk_args(request.form)
    raw = (request.form.get("expected") or "").strip()
    if not raw.isdigit():
        raise BadParam("expected", "expected (the confirmed message count) is required")
    expected = int(raw)
    case = get_case()
    filters = _filter_nodes(params)
    try:
        review.get_tag(case, args["tag"])
        now = review.count_query(case, args["q"], filters=filters, context=args["context"])["messages"]
        if now != expected:
            return error_response(409, "The count changed", (
                f"The search now finds {now} messages, not the {expected} you confirmed; nothing was changed. "
                "Review the new count and confirm again."), count=now, expected=expected)
        change = review.tag_query(case, args["q"], args["tag"], remove=args["remove"], filters=filters,
                                  context=args["context"], expected=expected, **_who())
    except review.ReviewError as error:
        status = 409 if "confirmed" in str(error) else 400
        return error_response(status, "The tag could not be applied", str(error))
    result = {**args, "expected": expected, "changed": len(change.changed), "unchanged": len(change.unchanged),
              "batch": change.batch}
    if wants_json(fmt):
        return respond("", result, fmt="json")
    flash(bulk_outcome(change), "bulk")
    return redirect(safe_next(request.form.get("next")) or url_for(
        "search.search", q=args["q"] or None, context=args["context"], **args["filters"]))


def bulk_outcome(change: review.TagChange) -> str:
    """What a bulk change did, in words, from the library's own answer (shown once on the next page)."""
    changed, unchanged = len(change.changed), len(change.unchanged)

    def messages(n: int) -> str:
        return f"{n:,} {'message' if n == 1 else 'messages'}"

    if change.action == "remove":
        text = f"Removed the tag “{change.tag}” from {messages(changed)}"
        rest = f"; {unchanged:,} did not have it" if unchanged else ""
    else:
        text = f"Tagged {messages(changed)} as “{change.tag}”"
        rest = f"; {unchanged:,} already had it" if unchanged else ""
    return f"{text}{rest}."


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
    # Previous / Next: the neighbouring positions (1..items); past the end, Previous is the last item.
    at = item.position if item else progress.items + 1
    data: dict[str, Any] = {"set": the_set.to_dict(), "progress": progress.to_dict(),
                            "item": item.to_dict() if item else None, "tags": [], "context": [],
                            "choices": [t.to_dict() for t in review.list_tags(case)[:9]],
                            "previous": at - 1 if 1 < at <= progress.items + 1 else None,
                            "next": at + 1 if at < progress.items else None}
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


# ---------------------------------------------------------------------------------------------- notes


def _back(message_id: str) -> Any:
    """Back to the page the form was on (a path of this site), else the message's own page."""
    return redirect(safe_next(request.form.get("next")) or url_for("messages.show", message_id=message_id))


def _note_answer(fmt: str | None, note: review.Note, status: int = 200) -> Any:
    if wants_json(fmt):
        notes = [n.to_dict() for n in review.list_notes(get_case(), note.message_id)]
        return respond("", {"note": note.to_dict(), "notes": notes}, fmt="json", status=status)
    return _back(note.message_id)


def _note_or_404(case: Any, note_id: int) -> review.Note:
    try:
        return review.get_note(case, note_id)
    except review.ReviewError as error:
        abort(404, description=str(error))


@bp.post("/m/<message_id>/notes.json", defaults={"fmt": "json"})
@bp.post("/m/<message_id>/notes", defaults={"fmt": None})
def add_note(message_id: str, fmt: str | None) -> Any:
    """A new note on one message; back to the page it was written on."""
    text = request.form.get("text") or ""
    try:
        note = review.add_note(get_case(), message_id, text, **_who())
    except review.ReviewError as error:
        return error_response(400, "The note could not be added", str(error))
    return _note_answer(fmt, note, status=201)


@bp.post("/notes/<int:note_id>.json", defaults={"fmt": "json"})
@bp.post("/notes/<int:note_id>", defaults={"fmt": None})
def edit_note(note_id: int, fmt: str | None) -> Any:
    """Replace a note's text (a new revision; the old text stays in its history); its author or an admin only."""
    case = get_case()
    _note_or_404(case, note_id)
    try:
        note = review.edit_note(case, note_id, request.form.get("text") or "", admin=_is_admin(), **_who())
    except review.NotPermitted as error:
        return error_response(403, "You may not edit this note", str(error))
    except review.ReviewError as error:
        return error_response(400, "The note could not be changed", str(error))
    return _note_answer(fmt, note)


@bp.post("/notes/<int:note_id>/delete.json", defaults={"fmt": "json"})
@bp.post("/notes/<int:note_id>/delete", defaults={"fmt": None})
def delete_note(note_id: int, fmt: str | None) -> Any:
    """Delete a note (a last, deleting revision: case.db keeps the note and its history); author or admin only."""
    case = get_case()
    _note_or_404(case, note_id)
    try:
        note = review.delete_note(case, note_id, admin=_is_admin(), **_who())
    except review.NotPermitted as error:
        return error_response(403, "You may not delete this note", str(error))
    except review.ReviewError as error:
        return error_response(400, "The note could not be deleted", str(error))
    return _note_answer(fmt, note)


# ----------------------------------------------------------------------------------- tag administration


@bp.get("/tags.json", defaults={"fmt": "json"})
@bp.get("/tags", defaults={"fmt": None})
def tags(fmt: str | None) -> Any:
    """The case's tags with their colours and how many messages carry each; admins may add and edit."""
    case = get_case()
    counts = {t.name: t.count for t in review.tag_counts(case).tags}
    data = {"tags": [{**t.to_dict(), "messages": counts.get(t.name, 0)} for t in review.list_tags(case)]}
    return respond("review/tags.html", data, fmt=fmt)


def _optional(source: Any, name: str) -> str | None:
    value = (source.get(name) or "").strip()
    return value or None


@bp.post("/tags.json", defaults={"fmt": "json"})
@bp.post("/tags", defaults={"fmt": None})
def define_tag(fmt: str | None) -> Any:
    """Add a tag (name, colour #rrggbb, description) at the end of the case's list."""
    form = request.form
    try:
        tag = review.define_tag(get_case(), _field(form, "name"), _optional(form, "colour"),
                                description=_optional(form, "description"), **_who())
    except review.ReviewError as error:
        return error_response(400, "The tag could not be added", str(error))
    if wants_json(fmt):
        return respond("", tag.to_dict(), fmt="json", status=201)
    return redirect(url_for("review.tags"))


@bp.post("/tags/update.json", defaults={"fmt": "json"})
@bp.post("/tags/update", defaults={"fmt": None})
def update_tag(fmt: str | None) -> Any:
    """Change a tag's colour and description (messages keep the tag: they refer to it by id)."""
    form = request.form
    description = form.get("description")
    try:
        tag = review.update_tag(get_case(), _field(form, "tag"), colour=_optional(form, "colour"),
                                description=description.strip() if description is not None else None, **_who())
    except review.ReviewError as error:
        return error_response(400, "The tag could not be changed", str(error))
    if wants_json(fmt):
        return respond("", tag.to_dict(), fmt="json")
    return redirect(url_for("review.tags"))
