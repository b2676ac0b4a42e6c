"""The search page: query box, filters, facets, timeline, hits in their context. JSON twin /search.json.

``/search.json`` answers in the shape of ``discovery search --json`` (query, total, hits with
message, context and score) plus what the page also shows: facets, timeline, the merged context
blocks and the filters applied.

Every search (not the empty overview) is written to the audit trail: query, filters, page, hit count.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for

from discovery import facets, index_state
from discovery.query import QueryError
from discovery.search import search as run_search
from discovery.web import get_case, review, transcript, zones
from discovery.web.access import READERS
from discovery.web.auth import record_event
from discovery.web.blocks import merge
from discovery.web.params import SORT_LABELS, SearchParams
from discovery.web.render import display_zone_name, kept, respond, wants_json
from discovery.web.timeline import chart

bp = Blueprint("search", __name__)
ROLES = {"search.home": READERS, "search.search": READERS}


@bp.get("/")
def home() -> Any:
    return redirect(url_for("search.search"))


@bp.get("/search.json", defaults={"fmt": "json"})
@bp.get("/search", defaults={"fmt": None})
def search(fmt: str | None) -> Any:
    params = SearchParams.from_args(request.args)
    zone_name = display_zone_name()
    where = zones.zone(zone_name) or zones.UTC
    case = get_case()
    page: dict[str, Any] = {"params": params, "zone_name": zone_name, "sort_labels": SORT_LABELS,
                            "choices": filter_choices(case)}
    if params.is_empty:
        data = {"query": "", "total": 0, "hits": [], "overview": overview(case), "timezone": zone_name,
                "index_complete": index_state.is_complete(case)}
        return respond("search/index.html", data, fmt=fmt, **page)
    try:
        result = run_search(case, params.q, context=params.context, limit=params.per_page, offset=params.offset,
                            sort=params.sort, filters=params.filter_nodes(where))
        summary = facets.aggregate(case, result.parsed, zone=where, interval=params.interval)
    except QueryError as error:
        record_event("search", {**_audited(params), "error": str(error)}, outcome="error")
        data = {"error": str(error), "position": error.position, "query": params.q}
        return respond("search/index.html", data, fmt=fmt, status=400, query_error=error, **page)
    record_event("search", {**_audited(params), "hits": result.total, "shown": len(result.hits),
                            **result.audit_extras()})
    blocks = merge(result.hits, first_number=params.offset + 1)
    aggregated = summary.to_dict()
    data = result.to_dict() | {
        "timezone": zone_name,
        "filters": params.to_dict(),
        "facets": aggregated["facets"],
        "facet_totals": summary.distinct,
        "timeline": aggregated["timeline"],
        "blocks": [block.to_dict() for block in blocks],
    }
    shown = [line.message for block in blocks for line in block.lines]
    twin = wants_json(fmt)  # the HTML page takes the tags and notes from the prefetch, not from DATA
    data.update(review.search_extras(case, result, shown, summary.ids, twin=twin))  # tag facet; tags, notes shown
    if twin:
        return respond("search/index.html", data, fmt=fmt)
    return respond("search/index.html", data, fmt=fmt, result=result, summary=summary, blocks=blocks,
                   related=transcript.related(case, shown), chart=chart(summary.timeline),
                   pages=pagination(result.total, params.page, params.per_page), **page)


def _audited(params: SearchParams) -> dict[str, Any]:
    """What the audit trail keeps of a search: the query, the filters given, and which page."""
    asked = {key: value for key, value in params.to_dict().items() if value not in (None, "")}
    return {"query": asked.pop("q", ""), "page": asked.pop("page"), "per_page": asked.pop("per_page"),
            "sort": asked.pop("sort"), "context": asked.pop("context"), "interval": asked.pop("interval"),
            "filters": asked}


def overview(case: Any) -> dict[str, Any]:
    return {"stats": case.stats(), "conversations": transcript.conversations(case, limit=50)}


def filter_choices(case: Any) -> dict[str, list[Any]]:
    """Values to suggest in the filter inputs (small tables only, and kept between requests)."""
    choices: dict[str, list[Any]] = kept(case, "filter_choices", lambda: _filter_choices(case))
    return choices


def _filter_choices(case: Any) -> dict[str, list[Any]]:
    db = case.db
    return {
        "formats": [r[0] for r in db.execute("SELECT DISTINCT source_format FROM conversations ORDER BY 1")],
        "custodians": [r[0] for r in db.execute(
            "SELECT DISTINCT custodian FROM sources WHERE custodian IS NOT NULL ORDER BY 1")],
        "types": [r[0] for r in db.execute(
            "SELECT DISTINCT type FROM conversations WHERE type IS NOT NULL ORDER BY 1")],
        "conversations": [tuple(r) for r in db.execute(
            "SELECT id, COALESCE(name, id) FROM conversations ORDER BY 2 LIMIT 1000")],
        "senders": [tuple(r) for r in db.execute(
            "SELECT id, COALESCE(name, id) FROM participants ORDER BY 2 LIMIT 1000")],
    }


def pagination(total: int, current: int, per_page: int) -> dict[str, Any]:
    last = max(1, -(-total // per_page))
    window = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    return {"current": current, "last": last, "numbers": window,
            "previous": current - 1 if current > 1 else None, "next": current + 1 if current < last else None}
