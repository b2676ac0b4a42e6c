"""Saved searches: save the search on screen, list them with their hit counts then and now, rerun,
share with the case, delete. JSON twins: /saved.json and each form's URL + ``.json``.

The library (``discovery.review``) does the work and writes the audit trail (``saved_add``,
``saved_run``, ``saved_share``, ``saved_delete``) with the user and address; it also enforces that
only the owner (or an admin) shares or deletes a saved search. Roles mirror the CLI: admins and
investigators save, share and delete; auditors list and rerun (a rerun records who ran it, nothing else).

A saved search keeps the search page's filters twice: as query strings (``filters``, which the library
recounts: "now" on the list is counted live) and as the form's own fields (``view["form"]``), so a
rerun opens /search with the same boxes filled in. Dates are whole days in the display zone of the
person who saved it; the zone is kept beside them and shown.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from discovery import review
from discovery.query import QueryError
from discovery.query import ast as q
from discovery.web import get_case, zones
from discovery.web.access import READERS
from discovery.web.errors import error_response
from discovery.web.params import FILTER_PARAMS, INTERVALS, SORT_LABELS, SearchParams
from discovery.web.render import display_zone_name, respond, wants_json

bp = Blueprint("saved", __name__)
SAVERS: tuple[str, ...] = ("admin", "investigator")
ROLES = {"saved.index": READERS, "saved.create": SAVERS, "saved.run": READERS, "saved.share": SAVERS,
         "saved.delete": SAVERS}
QUOTES = '"\u201c\u201d'  # the query language's quote characters: a quoted value cannot hold them
FORM_KEYS = (*FILTER_PARAMS, "interval")  # the search form's fields a rerun restores (besides q/context/sort)


def _who() -> dict[str, Any]:
    return {"actor": current_user.name, "address": request.remote_addr or "unknown"}


def _is_admin() -> bool:
    return getattr(current_user, "role", None) == "admin"


# ---------------------------------------------------------------------------------------------- filters


def filter_text(node: q.Node) -> str:
    """One search-form filter node as the query string the library stores and recounts."""
    if isinstance(node, q.DateRange):
        start = node.start.isoformat() if node.start else ""
        end = node.end.isoformat() if node.end else ""
        return f'date:"{start}..{end}"'
    if isinstance(node, q.Field) and node.name in ("has", "is"):
        return f"{node.name}:{node.value}"
    if isinstance(node, q.Field) and isinstance(node.value, str):
        if any(mark in node.value for mark in QUOTES):
            raise review.ReviewError(f"the {node.name} filter contains a double quote, which a saved search "
                                     "cannot keep; remove that filter or type it into the query instead")
        return f'{node.name}:"{node.value}"'
    raise review.ReviewError(f"this filter cannot be saved: {node!r}")  # pragma: no cover (the form makes none)


def filter_texts(params: SearchParams, where: tzinfo) -> list[str]:
    """The search form's filters, as the query strings the library ANDs with the query."""
    return [filter_text(node) for node in params.filter_nodes(where)]


def form_view(params: SearchParams, zone_name: str) -> dict[str, Any]:
    """What a rerun puts back into the search form (besides q, context and sort), and the zone of its dates."""
    asked = params.to_dict()
    form = {key: ("1" if asked[key] is True else str(asked[key])) for key in FORM_KEYS
            if asked.get(key) not in (None, "", False)}
    if form.get("interval") == INTERVALS[0]:
        form.pop("interval")
    return {"form": form, "zone": zone_name}


def search_args(saved: review.SavedSearch) -> dict[str, str]:
    """The /search query string that shows SAVED's hits.

    Saved from the web: the query and the form fields kept in ``view``. Saved from the CLI (no form):
    the filters, which are query strings, are ANDed into the query itself.
    """
    args = {"q": saved.query, "context": str(saved.context), "sort": saved.sort}
    form = saved.view.get("form") if isinstance(saved.view, dict) else None
    if isinstance(form, dict):
        args.update({key: str(value) for key, value in form.items() if key in FORM_KEYS and value})
    elif saved.filters:
        parts = [part for part in (saved.query, *saved.filters) if part.strip()]
        args["q"] = " AND ".join(f"({part})" for part in parts)
    return args


# ---------------------------------------------------------------------------------------------- the list


def _count_now(case: Any, saved: review.SavedSearch) -> tuple[int | None, str | None]:
    """The hit count now, or why it cannot be counted (a query the parser no longer accepts)."""
    try:
        return review.count_hits(case, saved.query, saved.filters), None
    except (QueryError, review.ReviewError) as error:
        return None, str(error)


def entry(case: Any, saved: review.SavedSearch) -> dict[str, Any]:
    """One row of the list (and of /saved.json): the saved search, its count now, and the changes."""
    now, error = _count_now(case, saved)
    last = saved.last_run_hits
    return {
        **saved.to_dict(),
        "hits_now": now,
        "count_error": error,
        "new_since_saved": None if now is None else now - saved.hits_at_save,
        "new_since_last_run": None if now is None or last is None else now - last,
        "mine": saved.owner == current_user.name,
        "can_change": saved.owner == current_user.name or _is_admin(),
        "search_url": url_for("search.search", **search_args(saved)),
    }


@bp.get("/saved.json", defaults={"fmt": "json"})
@bp.get("/saved", defaults={"fmt": None})
def index(fmt: str | None) -> Any:
    """The saved searches this user may see (their own and the shared ones), each counted now."""
    case = get_case()
    rows = [entry(case, saved) for saved in review.list_saved(case, user=current_user.name)]
    just_saved = request.args.get("saved", "")
    data = {"user": current_user.name, "saved": rows}
    return respond("saved/index.html", data, fmt=fmt, sort_labels=SORT_LABELS,
                   just_saved=int(just_saved) if just_saved.isdigit() else None)


# ---------------------------------------------------------------------------------------------- changes


def _failed(error: Exception, title: str) -> Any:
    """A refused change: 404 for a search this user cannot see, 403 for someone else's, else 400."""
    message = str(error)
    if message.startswith("no saved search"):
        return error_response(404, "No such saved search", message)
    if isinstance(error, review.NotPermitted):
        return error_response(403, title, message)
    return error_response(400, title, message)


@bp.post("/saved.json", defaults={"fmt": "json"})
@bp.post("/saved", defaults={"fmt": None})
def create(fmt: str | None) -> Any:
    """Save the search the form describes (the search page's query, filters, context and sort) under a name."""
    name = (request.form.get("name") or "").strip()
    if not name:
        return error_response(400, "The search was not saved", "Give the saved search a name.", param="name")
    params = SearchParams.from_args(request.form)
    zone_name = display_zone_name()
    where = zones.zone(zone_name) or zones.UTC
    try:
        saved = review.save_search(get_case(), name, params.q, filters=filter_texts(params, where),
                                   context=params.context, sort=params.sort, view=form_view(params, zone_name),
                                   shared=request.form.get("shared") == "1", **_who())
    except QueryError as error:
        return error_response(400, "The query could not be read", str(error), position=error.position)
    except review.ReviewError as error:
        return _failed(error, "The search was not saved")
    if wants_json(fmt):
        return respond("", entry(get_case(), saved), fmt="json", status=201)
    return redirect(url_for("saved.index", saved=saved.id, _anchor=f"saved-{saved.id}"))


@bp.post("/saved/<int:saved_id>/run.json", defaults={"fmt": "json"})
@bp.post("/saved/<int:saved_id>/run", defaults={"fmt": None})
def run(saved_id: int, fmt: str | None) -> Any:
    """Record a rerun (who, when, the count now) and open the search page on the saved search."""
    try:
        ran = review.run_saved(get_case(), saved_id, user=current_user.name, **_who())
    except (review.ReviewError, QueryError) as error:
        return _failed(error, "The saved search could not be run")
    target = url_for("search.search", **search_args(ran.saved))
    if wants_json(fmt):
        return respond("", {**ran.to_dict(), "search_url": target}, fmt="json")
    return redirect(target)


@bp.post("/saved/<int:saved_id>/share.json", defaults={"fmt": "json"})
@bp.post("/saved/<int:saved_id>/share", defaults={"fmt": None})
def share(saved_id: int, fmt: str | None) -> Any:
    """Share a saved search with everyone in the case (shared=1) or stop sharing it (shared=0)."""
    wanted = request.form.get("shared", "1")
    if wanted not in ("0", "1"):
        return error_response(400, "Not changed", "shared must be 1 (share) or 0 (stop sharing)", param="shared")
    try:
        saved = review.share_saved(get_case(), saved_id, wanted == "1", admin=_is_admin(), **_who())
    except review.ReviewError as error:
        return _failed(error, "The saved search was not changed")
    if wants_json(fmt):
        return respond("", saved.to_dict(), fmt="json")
    return redirect(url_for("saved.index", _anchor=f"saved-{saved.id}"))


@bp.post("/saved/<int:saved_id>/delete.json", defaults={"fmt": "json"})
@bp.post("/saved/<int:saved_id>/delete", defaults={"fmt": None})
def delete(saved_id: int, fmt: str | None) -> Any:
    """Delete a saved search (kept in case.db marked deleted, and recorded); the owner or an admin only."""
    try:
        saved = review.delete_saved(get_case(), saved_id, admin=_is_admin(), **_who())
    except review.ReviewError as error:
        return _failed(error, "The saved search was not deleted")
    if wants_json(fmt):
        return respond("", {"deleted": saved.to_dict()}, fmt="json")
    return redirect(url_for("saved.index"))
