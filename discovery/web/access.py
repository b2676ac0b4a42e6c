"""Who may open what: ONE policy table, built from each blueprint module's ``ROLES``, enforced before every view.

Each blueprint module declares, beside its ``bp``, which roles may call each of its endpoints::

    ROLES = {"search.search": SEARCHERS, "audit.index": ("auditor",), "auth.login": PUBLIC}

:func:`install` merges those dicts (plus :data:`APP_ROLES` for the app's own endpoints, such as
``static``) into ``app.extensions["discovery_policy"]`` and registers one ``before_request`` that

* lets a PUBLIC endpoint through (the login page and the static files);
* answers a request without a logged-in user with 401: a redirect to the login page for a page,
  a JSON 401 with ``WWW-Authenticate: Bearer`` for the JSON API (``.json``, ``Accept: application/json``,
  or an ``Authorization`` header);
* answers 403 when the user's role is not listed for the endpoint, and for an endpoint the policy
  does not list at all (default deny: a view nobody declared is open to nobody);
* checks the CSRF token (Flask-WTF) on every POST/PUT/PATCH/DELETE that rides on a session cookie;
  a request authenticated by a Bearer token carries no cookie a foreign site could borrow, so it
  needs none.

A URL that matches no route (404, 405) is answered as such to a logged-in user and as a 401 to an
anonymous one, so nothing about the app is revealed before login. Templates ask :func:`allowed`
(``can('exports.create')``) whether to show a link or a button.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from flask import Flask, current_app, g, jsonify, redirect, request, url_for
from flask_login import current_user

from discovery.users import ROLES as ALL_ROLES

PUBLIC = "public"  # a policy value: no login needed
# The roles that may search and read the evidence (the issue gives admin only user management and
# ingest; admin is included here so the account `make run` prints can use the UI it just set up).
READERS: tuple[str, ...] = ("admin", "investigator", "auditor")
EVERYONE: tuple[str, ...] = tuple(ALL_ROLES)  # any logged-in user

APP_ROLES: dict[str, Any] = {"static": PUBLIC}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
POLICY_KEY = "discovery_policy"


class PolicyError(Exception):
    """A ROLES table names an endpoint that does not exist, or a role that does not exist."""


def build_policy(app: Flask, modules: Iterable[ModuleType]) -> dict[str, Any]:
    """The merged policy; every entry checked against the app's endpoints and the known roles."""
    policy: dict[str, Any] = dict(APP_ROLES)
    for module in modules:
        table: Mapping[str, Any] = getattr(module, "ROLES", None) or {}
        if not table:
            raise PolicyError(f"{module.__name__} registers a blueprint but declares no ROLES")
        for endpoint, roles in table.items():
            if endpoint in policy:
                raise PolicyError(f"{endpoint}: listed twice in the access policy ({module.__name__})")
            policy[endpoint] = _checked(endpoint, roles)
    known = set(app.view_functions)
    unknown = sorted(set(policy) - known)
    if unknown:
        raise PolicyError(f"the access policy lists endpoints that do not exist: {', '.join(unknown)}")
    missing = sorted(known - set(policy))
    if missing:  # still safe (default deny), but someone forgot to declare them
        app.logger.warning("endpoints open to nobody (not in any ROLES table): %s", ", ".join(missing))
    return policy


def _checked(endpoint: str, roles: Any) -> Any:
    if roles == PUBLIC:
        return PUBLIC
    if isinstance(roles, str) or not isinstance(roles, tuple | list | frozenset | set):
        raise PolicyError(f"{endpoint}: roles must be a tuple of role names or PUBLIC, not {roles!r}")
    bad = [role for role in roles if role not in ALL_ROLES]
    if bad:
        raise PolicyError(f"{endpoint}: unknown role(s) {', '.join(map(repr, bad))}; roles are {', '.join(ALL_ROLES)}")
    return tuple(roles)


def policy_of(app: Flask | None = None) -> dict[str, Any]:
    return (app or current_app).extensions[POLICY_KEY]


def allowed(endpoint: str, user: Any = None) -> bool:
    """Whether USER (default: the current user) may call ENDPOINT under the policy."""
    rule = policy_of().get(endpoint)
    if rule == PUBLIC:
        return True
    user = current_user if user is None else user
    if rule is None or not getattr(user, "is_authenticated", False):
        return False
    return getattr(user, "role", None) in rule


def wants_json_answer() -> bool:
    from discovery.web.render import wants_json

    return request.path.endswith(".json") or "Authorization" in request.headers or wants_json()


def unauthorized() -> Any:
    """401: the login page for a browser, a JSON answer for the API."""
    expired = g.get("session_ended")
    if wants_json_answer():
        if g.get("bad_token"):
            message = "The Bearer token is not valid (revoked, replaced, or its account is disabled)."
            challenge = 'Bearer realm="discovery", error="invalid_token"'
        else:
            message = ("Log in first, or send `Authorization: Bearer TOKEN` "
                       "(a token is printed by `discovery users token NAME`).")
            challenge = 'Bearer realm="discovery"'
        if expired:
            message = f"Your session ended ({expired}). " + message
        response = jsonify({"error": message})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = challenge
        return response
    target = request.full_path.rstrip("?") if request.method in ("GET", "HEAD") else None
    from discovery.web.render import safe_next

    return redirect(url_for("auth.login", next=safe_next(target), expired=1 if expired else None))


def forbidden(endpoint: str | None) -> Any:
    from discovery.web.auth import record_event
    from discovery.web.errors import error_response

    record_event("access_denied", {"endpoint": endpoint, "method": request.method, "path": request.path},
                 outcome="denied")
    role = getattr(current_user, "role", "?")
    if policy_of().get(endpoint or "") is None:
        message = "This page is not open to any role."
    else:
        message = f"Your role ({role}) may not use this page."
    return error_response(403, "Not allowed", message)


def install(app: Flask, modules: Iterable[ModuleType]) -> None:
    """Build the policy from MODULES' ROLES tables and enforce it before every request."""
    app.extensions[POLICY_KEY] = build_policy(app, modules)
    app.jinja_env.globals["can"] = allowed

    @app.before_request
    def enforce() -> Any:
        endpoint = request.endpoint
        rule = policy_of(app).get(endpoint or "")
        if rule == PUBLIC:
            _csrf()
            return None
        if not current_user.is_authenticated:
            return unauthorized()
        if endpoint is None:  # no such route: let the 404/405 through, to a logged-in user only
            return None
        if rule is None or current_user.role not in rule:
            return forbidden(endpoint)
        _csrf()
        return None


def _csrf() -> None:
    """Flask-WTF's check, for state-changing requests that ride on the session cookie."""
    if request.method in SAFE_METHODS:
        return
    if "Authorization" in request.headers and current_user.is_authenticated and g.get("auth_via") == "token":
        return
    current_app.extensions["csrf"].protect()


__all__ = ["PUBLIC", "READERS", "EVERYONE", "allowed", "build_policy", "install", "policy_of", "PolicyError"]
