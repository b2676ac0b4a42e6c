"""One message: its detail panel (provenance, raw source record, ids) with its context. ``/m/<id>.json``.

Each view is written to the audit trail (``view_message``, as ``discovery show`` does). The page and
its twin carry the tags and notes of the message and of its context (``tags`` / ``notes``: id -> list).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request

from discovery.search import MAX_CONTEXT
from discovery.search import show as run_show
from discovery.web import get_case, transcript
from discovery.web.access import READERS
from discovery.web.auth import record_event
from discovery.web.params import integer
from discovery.web.render import respond
from discovery.web.review import review_data

bp = Blueprint("messages", __name__)
ROLES = {"messages.show": READERS}


@bp.get("/m/<message_id>.json", defaults={"fmt": "json"})
@bp.get("/m/<message_id>", defaults={"fmt": None})
def show(message_id: str, fmt: str | None) -> Any:
    case = get_case()
    context = integer(request.args, "context", 3, 0, MAX_CONTEXT)
    found = run_show(case, message_id, context)
    record_event("view_message", {"id": message_id, "context": context},
                 outcome="ok" if found is not None else "not_found")
    if found is None:
        abort(404, description=f"There is no message with id {message_id!r} in this case.")
    message = found["message"]
    found["related"] = transcript.related(case, [message])
    carrier = transcript.carrier(case, message)
    found["carried_in"] = carrier["id"] if carrier else None
    found.update(review_data(case, [message["id"], *(c["id"] for c in found["context"])]))
    return respond("messages/show.html", found, fmt=fmt, context=context)
