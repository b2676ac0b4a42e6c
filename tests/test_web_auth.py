"""Logging in and out: sessions, their expiry, the login rate limit, CSRF, cookies and Bearer tokens."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from discovery import audit, users
from discovery.case import Case
from discovery.web.auth import LoginThrottle
from tests.conftest import DISABLED_USER, WEB_USERS, Logins, csrf_token, login, make_app, with_csrf

INVESTIGATOR = WEB_USERS["investigator"]


def last_entry(case_dir: Path, action: str) -> dict[str, Any]:
    case = Case(case_dir)
    try:
        return audit.entries(case, action=action)[-1]
    finally:
        case.close()


def folder(app: Any) -> Path:
    return Path(app.config["CASE_FOLDER"])


def test_login_page_has_no_navigation_and_a_token(anon_client):
    response = anon_client.get("/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="csrf_token"' in html and 'autocomplete="current-password"' in html
    assert "Conversations" not in html and "Log out" not in html


def test_log_in_search_log_out(demo_app, demo_case_dir):
    client = demo_app.test_client()
    assert client.get("/search?q=whitewash").status_code == 302
    token = csrf_token(client)
    response = client.post("/login", data={"name": INVESTIGATOR[0], "password": INVESTIGATOR[1], "csrf_token": token,
                                           "next": "/search?q=whitewash"})
    assert response.status_code == 302 and response.headers["Location"] == "/search?q=whitewash"
    entry = last_entry(demo_case_dir, "login")
    assert entry["actor"] == INVESTIGATOR[0] and entry["address"] == "127.0.0.1" and entry["outcome"] == "ok"
    page = client.get("/search?q=whitewash")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count('class="msg hit"') == 4
    assert INVESTIGATOR[0] in html and "Log out" in html and 'action="/logout"' in html
    assert csrf_token(client) != token  # a new session (and token) at login
    out = client.post("/logout", data=with_csrf(client))
    assert out.status_code == 302 and out.headers["Location"] == "/login?out=1"
    assert "You are logged out" in client.get("/login?out=1").get_data(as_text=True)
    assert client.get("/search?q=whitewash").status_code == 302
    assert last_entry(demo_case_dir, "logout")["actor"] == INVESTIGATOR[0]


def test_the_way_back_after_login_stays_on_this_site(demo_app):
    for target in ("https://evil.example/", "//evil.example", "/logout"):
        client = demo_app.test_client()
        response = client.post("/login", data=with_csrf(client, name=INVESTIGATOR[0], password=INVESTIGATOR[1],
                                                        next=target))
        assert response.headers["Location"] == "/search", target


def test_logging_out_needs_a_post_with_the_token(client_as):
    client = client_as("auditor")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/search").status_code == 200  # still logged in


def test_a_copied_session_cookie_stops_working_after_logout(demo_app):
    client = demo_app.test_client()
    login(client, *INVESTIGATOR)
    name = demo_app.config["SESSION_COOKIE_NAME"]
    stolen = client.get_cookie(name).value
    client.post("/logout", data=with_csrf(client))
    thief = demo_app.test_client()
    thief.set_cookie(name, stolen)
    response = thief.get("/search")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]


def test_wrong_password_and_unknown_user(private_app):
    client = private_app.test_client()
    response = login(client, INVESTIGATOR[0], "not the password")
    assert response.status_code == 401 and "Wrong user name or password." in response.get_data(as_text=True)
    entry = last_entry(folder(private_app), "login_failed")
    assert entry["actor"] == INVESTIGATOR[0] and entry["outcome"] == "denied"
    assert entry["details"]["reason"] == "wrong password"
    response = login(client, "nobody-here", "whatever-password")
    assert response.status_code == 401 and "Wrong user name or password." in response.get_data(as_text=True)
    entry = last_entry(folder(private_app), "login_failed")
    # a name that is no account may be a mistyped password: the trail keeps only its hash
    typed = "unknown account, sha256:" + hashlib.sha256(b"nobody-here").hexdigest()[:16]
    assert entry["actor"] == "anonymous" and entry["details"] == {"user": typed, "reason": "unknown user",
                                                                  "via": "web"}
    assert client.get("/search").status_code == 302
    empty = client.post("/login", data=with_csrf(client, name="", password=""))
    assert empty.status_code == 400 and "Give your user name" in empty.get_data(as_text=True)


def test_a_disabled_user_is_refused(private_app):
    client = private_app.test_client()
    response = login(client, *DISABLED_USER)
    assert response.status_code == 403 and "This account is disabled" in response.get_data(as_text=True)
    assert client.get("/search").status_code == 302
    assert last_entry(folder(private_app), "login_failed")["details"]["reason"] == "account disabled"
    wrong = login(client, DISABLED_USER[0], "a wrong password")  # says nothing about the account
    assert wrong.status_code == 401 and "account is disabled" not in wrong.get_data(as_text=True)


def test_disabling_or_a_new_password_ends_open_sessions(private_app):
    client = private_app.test_client()
    login(client, *INVESTIGATOR)
    assert client.get("/search").status_code == 200
    case = Case(folder(private_app))
    try:
        users.set_disabled(case, INVESTIGATOR[0])
        response = client.get("/search")
        assert response.status_code == 302 and "expired=1" in response.headers["Location"]
        assert "Your session ended" in client.get(response.headers["Location"]).get_data(as_text=True)
        users.set_disabled(case, INVESTIGATOR[0], False)
        login(client, *INVESTIGATOR)
        assert client.get("/search").status_code == 200
        users.set_password(case, INVESTIGATOR[0], "a brand new password")
        assert client.get("/search").status_code == 302
        assert client.get("/search.json").status_code == 401
        assert login(client, "test-investigator", "a brand new password").status_code == 302
    finally:
        case.close()


def test_sessions_expire_when_idle_and_after_their_lifetime(private_app):
    client = private_app.test_client()
    login(client, *INVESTIGATOR)
    with client.session_transaction() as session:
        session["seen"] = int(time.time()) - 31 * 60
    response = client.get("/search")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]
    assert "idle" in last_entry(folder(private_app), "logout")["details"]["reason"]
    login(client, *INVESTIGATOR)
    with client.session_transaction() as session:
        session["login_at"] = int(time.time()) - 9 * 3600  # busy all day: still ends after 8 hours
    assert client.get("/search.json").status_code == 401
    assert "maximum length" in last_entry(folder(private_app), "logout")["details"]["reason"]
    login(client, *INVESTIGATOR)
    assert client.get("/search").status_code == 200


def test_the_session_cookie_is_permanent_with_a_lifetime(private_app):
    client = private_app.test_client()
    response = login(client, *INVESTIGATOR)
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_attempts_are_rate_limited_per_account_and_address(private_app):
    name, password = INVESTIGATOR
    client = private_app.test_client()
    for _ in range(3):
        assert login(client, name, "wrong password!").status_code == 401
    blocked = login(client, name, password)  # even the right password, until the window passes
    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.get_data(as_text=True)
    assert "Try again in 15 minutes" in blocked.get_data(as_text=True)
    assert 0 < int(blocked.headers["Retry-After"]) <= 900
    assert last_entry(folder(private_app), "login_failed")["details"]["reason"] == "too many failed attempts"
    elsewhere = private_app.test_client()  # the same account from another address is not blocked
    assert login(elsewhere, name, password, REMOTE_ADDR="10.1.2.3").status_code == 302
    other_user = private_app.test_client()  # nor another account from the first address
    assert login(other_user, *WEB_USERS["auditor"]).status_code == 302


def test_login_attempts_are_rate_limited_per_address(private_app):
    client = private_app.test_client()
    for n in range(5):  # a spray: a different name each time, from one address
        assert login(client, f"guess-{n}", "wrong password!", REMOTE_ADDR="10.9.9.9").status_code == 401
    assert login(client, *INVESTIGATOR, REMOTE_ADDR="10.9.9.9").status_code == 429
    assert login(client, *INVESTIGATOR, REMOTE_ADDR="10.9.9.10").status_code == 302


def test_throttle_window_slides():
    throttle = LoginThrottle(per_account=2, per_address=10, window=60)
    throttle.failed("Alice", "1.1.1.1", now=0)
    throttle.failed("alice", "1.1.1.1", now=10)  # names are compared case-insensitively
    assert throttle.wait("ALICE", "1.1.1.1", now=20) == 40
    assert throttle.wait("alice", "2.2.2.2", now=20) == 0
    assert throttle.wait("alice", "1.1.1.1", now=59) == 1
    assert throttle.wait("alice", "1.1.1.1", now=61) == 0  # the first failure has left the window
    throttle.failed("alice", "1.1.1.1", now=72)
    throttle.succeeded("alice", "1.1.1.1")
    assert throttle.wait("alice", "1.1.1.1", now=73) == 0


def test_csrf_less_posts_are_refused(anon_client, client):
    refused = anon_client.post("/login", data={"name": INVESTIGATOR[0], "password": INVESTIGATOR[1]})
    assert refused.status_code == 400 and "security token" in refused.get_data(as_text=True)
    assert anon_client.get("/search").status_code == 302  # not logged in
    assert client.post("/settings", data={"timezone": "Asia/Tokyo"}).status_code == 400
    assert client.post("/settings.json", data={"timezone": "Asia/Tokyo"}).get_json()["reason"]
    assert client.post("/export", data={"q": "whitewash"}).status_code == 400
    header = client.post("/settings.json", data={"timezone": "Asia/Tokyo"}, headers={"X-CSRFToken": csrf_token(client)})
    assert header.status_code == 200  # the token may come as a header (for scripts on our own pages)


def test_a_session_cookie_from_another_case_does_not_work(demo_app, hostile_app):
    mine = Logins(demo_app).client("investigator")
    assert mine.get("/search").status_code == 200
    value = mine.get_cookie(demo_app.config["SESSION_COOKIE_NAME"]).value
    other = hostile_app.test_client()  # same user names and passwords exist in that case too
    other.set_cookie(hostile_app.config["SESSION_COOKIE_NAME"], value)
    response = other.get("/search")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert other.get("/search.json").status_code == 401
    assert demo_app.config["SESSION_COOKIE_NAME"] != hostile_app.config["SESSION_COOKIE_NAME"]
    assert demo_app.config["SECRET_KEY"] != hostile_app.config["SECRET_KEY"]


def test_cookies_are_secure_over_https(demo_app):
    client = demo_app.test_client()
    response = client.get("/login", base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    plain = demo_app.test_client().get("/login")
    assert "Secure" not in plain.headers["Set-Cookie"] and "Strict-Transport-Security" not in plain.headers


def test_behind_a_proxy_the_forwarded_scheme_and_address_count(demo_case_dir):
    app = make_app(demo_case_dir, TRUST_PROXY=1)
    try:
        client = app.test_client()
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        response = client.get("/login", headers=headers)
        assert "Secure" in response.headers["Set-Cookie"]
        token = csrf_token(client)
        login_response = client.post("/login", headers={**headers, "Referer": "https://localhost/login"},
                                     data={"name": INVESTIGATOR[0], "password": INVESTIGATOR[1], "csrf_token": token})
        assert login_response.status_code == 302
        assert last_entry(demo_case_dir, "login")["address"] == "203.0.113.7"
    finally:
        app.extensions["discovery_cases"].close()


def test_pages_are_not_cached(client):
    assert client.get("/search?q=whitewash").headers["Cache-Control"] == "no-store"
    static = client.get("/static/app.css")
    static.close()
    assert static.headers.get("Cache-Control") != "no-store"


@pytest.fixture
def token(private_app: Any) -> str:
    case = Case(folder(private_app))
    try:
        return users.new_token(case, INVESTIGATOR[0])
    finally:
        case.close()


def test_bearer_token_for_the_json_api(private_app, token):
    client = private_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.get("/search.json?q=whitewash", headers=headers)
    assert response.status_code == 200 and response.get_json()["total"] == 4
    assert "Set-Cookie" not in response.headers
    entry = last_entry(folder(private_app), "search")
    assert entry["actor"] == INVESTIGATOR[0] and entry["details"]["via"] == "web-token"
    posted = client.post("/settings.json", data={"timezone": "Asia/Tokyo"}, headers=headers)  # no CSRF token needed
    assert posted.status_code == 200
    assert client.get("/search").status_code == 302  # the token opened no session


def test_bad_or_revoked_tokens_and_disabled_accounts(private_app, token):
    client = private_app.test_client()
    bad = client.get("/search.json", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert client.get("/search.json", headers={"Authorization": f"Basic {token}"}).status_code == 401
    case = Case(folder(private_app))
    try:
        users.new_token(case, INVESTIGATOR[0])  # replaces (revokes) the old one
        assert client.get("/search.json", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        fresh = users.new_token(case, INVESTIGATOR[0])
        assert client.get("/search.json", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
        users.set_disabled(case, INVESTIGATOR[0])
        assert client.get("/search.json", headers={"Authorization": f"Bearer {fresh}"}).status_code == 401
    finally:
        case.close()


def test_a_bad_token_is_not_rescued_by_a_cookie(private_app):
    client = Logins(private_app).client("auditor")
    assert client.get("/search.json").status_code == 200
    assert client.get("/search.json", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_secret_key_stays_out_of_the_repository(demo_case_dir):
    import subprocess

    root = Path(__file__).resolve().parents[1]
    ignored = subprocess.run(["git", "check-ignore", "-q", "demo-case/secret_key"], cwd=root, check=False)
    assert ignored.returncode == 0, "demo-case/ (and its secret_key) must be ignored by git"
