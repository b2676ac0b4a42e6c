"""Per-session settings: the display time zone (default: the case's zone, else UTC).

Changing it is a POST with the session's CSRF token (checked by discovery.web.access) and is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, session, url_for

from discovery.web import zones
from discovery.web.access import EVERYONE
from discovery.web.auth import record_event
from discovery.web.params import BadParam
from discovery.web.render import display_zone_name, respond, safe_next, wants_json

bp = Blueprint("settings", __name__)
ROLES = {"settings.show": EVERYONE, "settings.update": EVERYONE}


@bp.get("/settings.json", defaults={"fmt": "json"})
@bp.get("/settings", defaults={"fmt": None})
def show(fmt: str | None) -> Any:
    return respond("settings/index.html", {"timezone": display_zone_name()}, fmt=fmt, zones=zones.known_zones(),
                   next_url=safe_next(request.args.get("next")))


@bp.post("/settings.json", defaults={"fmt": "json"})
@bp.post("/settings", defaults={"fmt": None})
def update(fmt: str | None) -> Any:
    name = request.form.get("timezone", "").strip()
    if zones.zone(name) is None:
        raise BadParam("timezone", f"{name!r} is not a time zone; use an IANA name such as Asia/Shanghai or UTC")
    session["tz"] = name
    record_event("settings", {"timezone": name})
    if wants_json(fmt):
        return respond("settings/index.html", {"timezone": name}, fmt=fmt)
    return redirect(safe_next(request.form.get("next")) or url_for("settings.show", saved=1))
