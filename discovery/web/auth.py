"""Logging in and out, sessions, Bearer tokens, and the login rate limit.

* Accounts live in the case (``discovery.users``); Flask-Login keeps the logged-in user in the
  session cookie, which is signed with the case's own key (``<case>/secret_key``), so a cookie from
  another case means nothing here. The user id in the session carries a keyed fingerprint of the
  password hash: changing the password (``discovery users passwd``) ends every session of that user,
  and so does disabling the account (checked on every request).
* Sessions end after ``PERMANENT_SESSION_LIFETIME`` (8 hours from login, whatever the activity) or
  ``SESSION_IDLE_TIMEOUT`` (30 minutes without a request); logging out revokes the session's id in
  this server process, so a copy of the cookie taken earlier stops working too (until a restart:
  the revocation list is in memory; the expiry limits still hold after one).
* Cookies: HttpOnly, SameSite=Lax, Secure whenever the request came over HTTPS
  (``SESSION_COOKIE_SECURE="auto"``, the default; True or False force it). Behind a TLS-terminating
  proxy set ``DISCOVERY_TRUST_PROXY=1`` (the number of proxies) so X-Forwarded-Proto/-For are believed.
* The JSON API (and any page) also accepts ``Authorization: Bearer TOKEN`` (``discovery users token
  NAME``). When that header is present the session cookie is ignored, nothing is stored in a
  session, and no CSRF token is needed (``discovery.web.access``).
* Failed logins are limited per (account, address) -- 5 in 15 minutes -- and per address across
  all accounts -- 20 in 15 minutes; a blocked attempt is refused before the password is checked,
  with a 429 that says when to try again. The counters are kept in memory: right for the one
  waitress process ``discovery serve`` runs (its threads share them), not shared between processes
  and reset by a restart.

Every login, failed login and logout is written to the case's audit trail, like every other web
action (:func:`record_event`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.security import check_password_hash

from discovery import audit, users
from discovery.web.access import EVERYONE, PUBLIC

bp = Blueprint("auth", __name__)
ROLES = {"auth.login": PUBLIC, "auth.logout": EVERYONE}

# Flask's own settings (its defaults would win over setdefault): create_app puts these in first.
SESSION_SETTINGS: dict[str, Any] = {
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
    "SESSION_COOKIE_SECURE": "auto",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
}
DEFAULTS: dict[str, Any] = {
    "SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
    "LOGIN_MAX_FAILURES": 5,  # per account and address
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,  # per address, any accounts
    "LOGIN_FAILURE_WINDOW": 15 * 60,  # seconds
}
MAX_NAME = 200


@dataclass(frozen=True)
class LoginUser:
    """The logged-in account, as Flask-Login sees it."""

    name: str
    role: str
    fingerprint: str = ""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.name}|{self.fingerprint}"


class CaseSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; ``SESSION_COOKIE_SECURE = "auto"``: Secure over HTTPS; none for tokens."""

    def get_cookie_secure(self, app: Flask) -> bool:
        setting = app.config.get("SESSION_COOKIE_SECURE")
        if setting == "auto":
            return bool(request) and request.is_secure
        return bool(setting)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if g.get("auth_via") == "token":  # a token request never gets (or changes) a cookie
            return
        super().save_session(app, session, response)


class LoginThrottle:
    """Failed logins in a sliding window, per (account, address) and per address; thread-safe, in memory."""

    MAX_KEYS = 50_000  # bound memory under a spray of names: the oldest keys are forgotten first

    def __init__(self, per_account: int, per_address: int, window: float):
        self.per_account, self.per_address, self.window = per_account, per_address, window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def wait(self, name: str, address: str, now: float | None = None) -> int:
        """Seconds until NAME may try again from ADDRESS (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            waits = [0.0]
            for key, limit in (((name.casefold(), address), self.per_account), (("", address), self.per_address)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[-limit] + self.window - now)
            return math.ceil(max(waits))

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in ((name.casefold(), address), ("", address)):
                self._failures.setdefault(key, deque()).append(now)
            while len(self._failures) > self.MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name.casefold(), address), None)


class Revoked:
    """Session ids ended by logout, kept until they would have expired anyway (in memory, per process)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, sid: str, until: float) -> None:
        now = time.time()
        with self._lock:
            self._until = {key: end for key, end in self._until.items() if end > now}
            self._until[sid] = until

    def __contains__(self, sid: object) -> bool:
        with self._lock:
            return isinstance(sid, str) and self._until.get(sid, 0) > time.time()


def _case() -> Any:
    from discovery.web import get_case

    return get_case()


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def fingerprint(password_hash: str) -> str:
    """A keyed digest of the password hash: in the session id, so a password change ends old sessions."""
    key = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return hmac.new(key, b"session:" + password_hash.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _account(name: str) -> Any:
    return _case().db.execute("SELECT name, role, disabled, password_hash FROM users WHERE name = ?",
                              (name,)).fetchone()


def record_event(action: str, details: dict[str, Any] | None = None, *, outcome: str = "ok",
                 actor: str | None = None) -> dict[str, Any]:
    """Append a web action to the audit trail: who (the logged-in user), from where, what, outcome.

    Raises if the entry cannot be written: an action that cannot be recorded is not done.
    """
    if actor is None:
        actor = current_user.name if current_user.is_authenticated else "anonymous"
    via = "web-token" if g.get("auth_via") == "token" else "web"
    return audit.record(_case(), action, {**(details or {}), "via": via}, actor=actor,
                        address=request.remote_addr or "unknown", outcome=outcome)


def install(app: Flask) -> None:
    """Flask-Login, Flask-WTF's CSRF tokens, the session rules and the login page, on APP."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # discovery.web.access checks, after authentication
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a form is good as long as its session
    app.session_interface = CaseSessionInterface()
    CSRFProtect(app)
    app.extensions["discovery_login_throttle"] = LoginThrottle(
        int(app.config["LOGIN_MAX_FAILURES"]), int(app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]),
        _seconds(app.config["LOGIN_FAILURE_WINDOW"]))
    app.extensions["discovery_revoked_sessions"] = Revoked()

    manager = LoginManager(app)
    manager.session_protection = "basic"

    @manager.user_loader
    def load_user(user_id: str) -> LoginUser | None:
        if "Authorization" in request.headers:  # a token request: the cookie does not count
            return None
        if session.get("sid") in app.extensions["discovery_revoked_sessions"]:
            return None
        name, _, print_ = user_id.rpartition("|")
        row = _account(name)
        if row is None or row["disabled"] or not hmac.compare_digest(fingerprint(row["password_hash"]), print_):
            return None
        return LoginUser(row["name"], row["role"], print_)

    @manager.request_loader
    def load_from_token(req: Any) -> LoginUser | None:
        header = req.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        user = users.user_for_token(_case(), token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            g.bad_token = True
            return None
        g.auth_via = "token"
        return LoginUser(user.name, user.role)

    @app.before_request
    def check_session() -> None:
        """End a cookie session that is too old, idle too long, revoked, or whose account changed."""
        if "Authorization" in request.headers or "_user_id" not in session:
            return
        now = int(time.time())
        started, seen = int(session.get("login_at", 0)), int(session.get("seen", 0))
        reason = None
        if now - started > _seconds(app.config["PERMANENT_SESSION_LIFETIME"]):
            reason = "it reached its maximum length"
        elif now - seen > _seconds(app.config["SESSION_IDLE_TIMEOUT"]):
            reason = "it was idle too long"
        elif not current_user.is_authenticated:
            reason = "the account was disabled, its password changed, or you logged out"
        if reason is None:
            if now - seen >= 30:  # keep the cookie quiet: refresh "seen" at most twice a minute
                session["seen"] = now
            return
        name = str(session.get("_user_id", "")).rpartition("|")[0]
        record_event("logout", {"user": name, "reason": f"session ended: {reason}"}, actor=name or "anonymous")
        logout_user()
        session.clear()
        g.session_ended = reason

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> Any:
        from discovery.web.errors import error_response

        return error_response(400, "This form cannot be accepted",
                              "It did not carry this site's security token (it expired, or came from another "
                              "site). Go back, reload the page and try again.", reason=error.description)


def _safe_target(raw: str | None) -> str:
    from discovery.web.render import safe_next

    target = safe_next(raw)
    if target is None or target.startswith(("/login", "/logout")):
        return url_for("search.search")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = request.values.get("next")
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_target(next_url))
        notice = ("Your session ended; log in again." if request.args.get("expired")
                  else "You are logged out." if request.args.get("out") else None)
        return _page(next_url, notice=notice)
    name = request.form.get("name", "").strip()[:MAX_NAME]
    password = request.form.get("password", "")
    if not name or not password:  # nothing was tried: not counted, not audited
        return _page(next_url, name, status=400, error="Give your user name and your password.")
    address = request.remote_addr or "unknown"
    throttle: LoginThrottle = current_app.extensions["discovery_login_throttle"]
    wait = throttle.wait(name, address)
    if wait:
        record_event("login_failed", {"user": _typed_name(name), "reason": "too many failed attempts"},
                     outcome="denied", actor=_actor_for(name))
        minutes = max(1, math.ceil(wait / 60))
        response = current_app.make_response(_page(
            next_url, name, status=429,
            error=f"Too many failed logins for this account from your address. Try again in {minutes} "
                  f"minute{'s' if minutes != 1 else ''}."))
        response.headers["Retry-After"] = str(wait)
        return response
    case = _case()
    user = users.authenticate(case, name, password)
    if user is None:
        throttle.failed(name, address)
        row = _account(name)
        if row is not None and row["disabled"] and check_password_hash(row["password_hash"], password):
            reason, status = "account disabled", 403
            error = "This account is disabled. An admin can enable it again (discovery users disable NAME --enable)."
        else:
            reason = "unknown user" if row is None else "account disabled" if row["disabled"] else "wrong password"
            status, error = 401, "Wrong user name or password."
        record_event("login_failed", {"user": _typed_name(name), "reason": reason}, outcome="denied",
                     actor=_actor_for(name))
        return _page(next_url, name, status=status, error=error)
    throttle.succeeded(name, address)
    row = _account(user.name)
    session.clear()  # a new session for the new login (and a new CSRF token)
    login_user(LoginUser(user.name, user.role, fingerprint(row["password_hash"])))
    session.permanent = True
    session["login_at"] = session["seen"] = int(time.time())
    session["sid"] = secrets.token_urlsafe(16)
    record_event("login", {"user": user.name, "role": user.role})
    return redirect(_safe_target(next_url))


def _typed_name(name: str) -> str:
    """What the append-only trail keeps of a typed user name: the name of a real account as is, but
    only a hash of anything else, since people type passwords into the name field by mistake."""
    if _account(name) is not None:
        return name
    return "unknown account, sha256:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def _actor_for(name: str) -> str:
    """The account a failed login was aimed at, if it exists (so filtering by user shows it)."""
    return name if _account(name) is not None else "anonymous"


def _page(next_url: str | None, name: str = "", *, status: int = 200, error: str | None = None,
          notice: str | None = None) -> Any:
    from discovery.web.render import safe_next

    return render_template("auth/login.html", next_url=safe_next(next_url), name=name, error=error, notice=notice,
                           case_name=_case().folder.resolve().name), status


@bp.post("/logout")
def logout() -> Any:
    if g.get("auth_via") == "token":  # a token is not a session: revoke it with `discovery users token`
        return jsonify({"logged_out": False, "message": "A Bearer token is not a session: nothing to log out. "
                        "Replace it (and so revoke the old one) with `discovery users token NAME`."})
    record_event("logout", {"user": current_user.name})
    sid = session.get("sid")
    if sid:
        lifetime = _seconds(current_app.config["PERMANENT_SESSION_LIFETIME"])
        current_app.extensions["discovery_revoked_sessions"].add(sid, time.time() + lifetime)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login", out=1))
