"""The audit trail, for auditors: every entry with filters (user, action, dates), and the chain's verdict.

``/audit`` (HTML), ``/audit.json`` (the entries and the verdict, every value exactly as stored, so each
entry's hash can be recomputed) and ``/audit.csv`` (the columns of ``discovery audit export``, for
reading in a spreadsheet: a cell that would run as a formula gets a leading apostrophe). The verdict
is :func:`discovery.audit.verify` run afresh on every request: it walks the whole chain, so a
tampered entry shows here as it does on the command line (a linear pass: fine to hundreds of
thousands of entries). Reading the trail is itself recorded (``audit_view``).
"""

from __future__ import annotations

import io
import json
from typing import Any

from flask import Blueprint, Response, request, url_for

from discovery import audit
from discovery.export.csv_out import write_rows
from discovery.web import get_case, zones
from discovery.web.auth import record_event
from discovery.web.params import BadParam, integer
from discovery.web.render import respond

bp = Blueprint("audit", __name__)
ROLES = {"audit.index": ("auditor",)}
PER_PAGE = 100
MAX_PER_PAGE = 1000


def _day(name: str) -> str | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return zones.parse_day(raw).isoformat()
    except ValueError as error:
        raise BadParam(name, str(error)) from None


def _text(name: str) -> str | None:
    value = request.args.get(name, "").strip()
    if len(value) > 200:
        raise BadParam(name, "the value is too long")
    return value or None


@bp.get("/audit.json", defaults={"fmt": "json"})
@bp.get("/audit.csv", defaults={"fmt": "csv"})
@bp.get("/audit", defaults={"fmt": None})
def index(fmt: str | None) -> Any:
    case = get_case()
    filters = {"user": _text("user"), "action": _text("action"), "from": _day("from"), "to": _day("to")}
    if filters["from"] and filters["to"] and filters["from"] > filters["to"]:
        raise BadParam("to", f"the date range ends ({filters['to']}) before it starts ({filters['from']})")
    page = integer(request.args, "page", 1, 1, 1_000_000)
    per_page = integer(request.args, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
    # Times are ISO UTC strings ("2024-09-10T04:02:11.000Z"); "T~" sorts after every time of that day.
    rows = audit.entries(case, actor=filters["user"], action=filters["action"],
                         since=f"{filters['from']}T" if filters["from"] else None,
                         until=f"{filters['to']}T~" if filters["to"] else None)
    verdict = audit.verify(case)
    record_event("audit_view", {"filters": {k: v for k, v in filters.items() if v}, "format": fmt or "html",
                                "entries": len(rows)})
    if fmt == "csv":
        return _csv(rows)
    newest_first = rows[::-1]
    start = (page - 1) * per_page
    shown = newest_first[start:start + per_page]
    data = {"verification": verdict.to_dict(), "filters": filters, "total": len(rows), "page": page,
            "per_page": per_page, "entries": shown}
    choices = {
        "users": [r[0] for r in case.db.execute("SELECT DISTINCT actor FROM audit_log ORDER BY 1")],
        "actions": [r[0] for r in case.db.execute("SELECT DISTINCT action FROM audit_log ORDER BY 1")],
    }
    last = max(1, -(-len(rows) // per_page))
    active = {k: v for k, v in filters.items() if v}
    downloads = {kind: url_for("audit.index", fmt=kind, **active) for kind in ("csv", "json")}
    details = {e["seq"]: json.dumps(e["details"], ensure_ascii=False, sort_keys=True) for e in shown}
    return respond("audit/index.html", data, fmt=fmt, choices=choices, verdict=verdict, downloads=downloads,
                   details=details,
                   pages={"current": page, "last": last, "previous": page - 1 if page > 1 else None,
                          "next": page + 1 if page < last else None})


def _csv(rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    out.write("\ufeff")  # a BOM, so spreadsheets read the UTF-8 right
    write_rows(out, ("seq", "at", "actor", "address", "action", "outcome", "details", "prev_hash", "hash"),
               ([row["seq"], row["at"], row["actor"], row["address"], row["action"], row["outcome"], row["details"],
                 row["prev_hash"], row["hash"]] for row in rows))
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-trail.csv"'})
