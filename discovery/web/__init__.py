"""The investigators' web UI: a Flask app factory, one blueprint per area, server-rendered pages.

Every page has a JSON twin (the same URL with ``.json``, or ``Accept: application/json``) built
from the same data as the HTML. Views only parse parameters, call the library (``discovery.search``,
``discovery.facets``) and render; the case is opened once per server thread (SQLite connections and
Whoosh searchers are per thread) and reused across requests.

Nobody gets in without an account of the case (``discovery.web.auth``); every endpoint is open to
the roles its blueprint module lists in ``ROLES`` and to nobody else (``discovery.web.access``);
every search, view, export, login and logout is written to the case's audit trail. A new blueprint
is added to :data:`BLUEPRINTS` below and declares ``bp`` and ``ROLES``.

Settings (``config=`` or the app's config): ``SESSION_COOKIE_SECURE`` ("auto": Secure over HTTPS),
``PERMANENT_SESSION_LIFETIME`` (8 h), ``SESSION_IDLE_TIMEOUT`` (30 min), ``LOGIN_MAX_FAILURES`` (5 per
account and address in ``LOGIN_FAILURE_WINDOW``, 15 min), ``TRUST_PROXY`` (or $DISCOVERY_TRUST_PROXY:
how many reverse proxies to believe X-Forwarded-For/-Proto/-Host from; 0, the default, believes
none), ``EXPORT_TMP_DIR`` (where web exports are staged).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, g, request
from flask.templating import Environment
from jinja2 import StrictUndefined
from werkzeug.middleware.proxy_fix import ProxyFix

from discovery.case import Case

# script-src 'self' only: no inline script anywhere, the little JS there is lives in static/app.js.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # never sent to other sites; same-origin keeps Origin on our POSTs
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000"  # sent only on responses that went out over HTTPS


def template_folder() -> Path:
    """Where templates/ is: inside the installed package (discovery.templates), else next to it."""
    try:
        from importlib.resources import files

        folder = Path(str(files("discovery.templates")))
        if (folder / "base.html").is_file():
            return folder
    except (ImportError, TypeError, ValueError):
        pass
    return Path(__file__).resolve().parents[2] / "templates"


class CaseHandles:
    """One open Case per server thread (SQLite connections and Whoosh searchers are per thread)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Case] = []

    def get(self) -> Case:
        case = getattr(self._local, "case", None)
        if case is None:
            case = Case(self.folder)
            self._local.case = case
            with self._lock:
                self._open.append(case)
        return case

    def close(self) -> None:
        with self._lock:
            cases, self._open = self._open, []
        for case in cases:
            case.close()
        self._local = threading.local()


_DICT_ATTRIBUTES = frozenset(dir(dict))


class PageEnvironment(Environment):
    """Flask's Jinja environment, with ``record.field`` on a plain dict read from the dict at once.

    Jinja tries ``getattr`` first and falls back to the key, so every ``m.sent_at`` on a message
    record (a dict) raised and caught an AttributeError; a results page does that thousands of
    times. Same answers: a plain dict's only attributes are its class's (``m.items`` is still the
    method), anything else is looked up as a key, missing ones are undefined as before.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def secret_key(folder: Path) -> str:
    """The case's session key: made on first use, kept in DIR/secret_key readable by its owner only."""
    path = folder / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as out:
        key = secrets.token_hex(32)
        out.write(key + "\n")
    return key


def create_app(case: str | os.PathLike[str] | Case | None = None, config: dict[str, Any] | None = None) -> Flask:
    """Build the web app for the case folder CASE (default: $DISCOVERY_CASE); CONFIG overrides settings."""
    if isinstance(case, Case):
        case = case.folder
    folder = Path(case or os.environ.get("DISCOVERY_CASE") or "")
    if not str(folder) or not (folder / "case.db").is_file():
        from discovery.case import CaseError

        raise CaseError(f"{folder}: not a case folder (no case.db); ingest something into it first")
    templates = template_folder()
    app = Flask(__name__, template_folder=str(templates), static_folder=str(templates / "static"),
                static_url_path="/static")
    app.jinja_environment = PageEnvironment
    from discovery.web.auth import SESSION_SETTINGS

    app.config.update(
        CASE_FOLDER=str(folder),
        **SESSION_SETTINGS,
        MAX_CONTENT_LENGTH=64 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=300,
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(folder)
    # One cookie name per case (derived from its key, one-way): two cases served on the same host
    # (ports do not separate cookies) keep their sessions apart instead of overwriting each other.
    if not (config or {}).get("SESSION_COOKIE_NAME"):
        digest = hashlib.sha256(b"discovery-session-cookie:" + str(app.config["SECRET_KEY"]).encode()).hexdigest()
        app.config["SESSION_COOKIE_NAME"] = f"discovery_{digest[:10]}"
    hops = int(app.config.get("TRUST_PROXY") or os.environ.get("DISCOVERY_TRUST_PROXY") or 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops,  # type: ignore[method-assign]
                                x_prefix=hops)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.jinja_env.undefined = StrictUndefined
    app.extensions["discovery_cases"] = CaseHandles(folder)
    _install_hooks(app)
    _register(app)
    return app


def get_case() -> Case:
    """The request thread's open case."""
    from flask import current_app

    return current_app.extensions["discovery_cases"].get()


def _install_hooks(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def headers(response: Any) -> Any:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.endpoint != "static":  # evidence and sessions: never kept by a browser or proxy cache
            response.headers["Cache-Control"] = "no-store"
        response.vary.add("Accept")
        response.vary.add("Cookie")
        started = g.get("started")
        if started is not None:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response


def blueprint_modules() -> tuple[Any, ...]:
    """Every blueprint module: each has ``bp`` and ``ROLES`` (its endpoints -> the roles allowed)."""
    from discovery.web import audit_view, auth, conversations, exports, messages, review, saved, search, settings, terms

    return (auth, search, conversations, messages, settings, exports, audit_view, review, terms, saved)


def _register(app: Flask) -> None:
    from discovery.web import access, auth, errors, render

    render.install(app)
    errors.install(app)
    auth.install(app)  # before access: the session is checked before the policy looks at the user
    modules = blueprint_modules()
    for module in modules:
        app.register_blueprint(module.bp)
    access.install(app, modules)


__all__ = ["create_app", "get_case", "template_folder"]
