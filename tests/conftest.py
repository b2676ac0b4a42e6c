"""Shared fixtures, by section: cases, web app, live server, browser.

Keep each section's fixtures together; add new sections below the last one.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
ARTIFACTS = ROOT / "test-artifacts"


# ---------------------------------------------------------------------------------------------- cases


def ingest_folder(source: Path, case_dir: Path, custodian: str = "Demo custodian") -> Path:
    """Ingest SOURCE into a new case at CASE_DIR (bad records are recorded, as `discovery ingest` does)."""
    from discovery.case import Case
    from discovery.ingest import ingest

    case = Case(case_dir, create=True)
    try:
        ingest(case, [str(source)], custodian=custodian, copy_originals=False)
    finally:
        case.close()
    return case_dir


@pytest.fixture(scope="session")
def demo_case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo case: fixtures/lark ingested once per test session. Tests do not change its evidence; the
    web fixtures add accounts (WEB_USERS) and web requests append to its audit trail. A test that must
    write, tamper or lock accounts works on a private_copy."""
    return ingest_folder(FIXTURES / "lark", tmp_path_factory.mktemp("demo") / "case")


# Every place a Lark export lets text in: message text, sender name, chat name, file name, link.
XSS = {
    "script": "<script>window.__xss=1;alert(1)</script>",
    "img": '<img src=x onerror="window.__xss=2;alert(2)">',
    "link": "javascript:window.__xss=3;alert(3)",
    "svg": '<svg onload="window.__xss=4">',
    "quote": '"><script>window.__xss=5</script>',
}


def write_hostile_export(folder: Path) -> Path:
    """A Lark-shaped export whose text, sender, chat and file names are HTML/JS payloads."""
    folder.mkdir(parents=True, exist_ok=True)
    chat, user, other = "oc_hostile", "ou_hostile", "ou_victim"
    (folder / "chats.json").write_text(json.dumps({"code": 0, "msg": "success", "data": {"has_more": False, "items": [
        {"chat_id": chat, "name": XSS["img"] + " " + XSS["quote"]}]}}), encoding="utf-8")
    (folder / "members.json").write_text(json.dumps({"code": 0, "msg": "success", "data": {"has_more": False, "items": [
        {"member_id_type": "open_id", "member_id": user, "name": XSS["script"]},
        {"member_id_type": "open_id", "member_id": other, "name": "Victim"}]}}), encoding="utf-8")

    def message(n: int, msg_type: str, content: dict[str, Any], sender: str = user) -> dict[str, Any]:
        at = 1_717_200_000_000 + n * 60_000
        return {"message_id": f"om_hostile{n:03d}", "msg_type": msg_type, "create_time": str(at),
                "update_time": str(at), "deleted": False, "updated": False, "chat_id": chat,
                "sender": {"id": sender, "id_type": "open_id", "sender_type": "user", "tenant_key": "tk"},
                "body": {"content": json.dumps(content)}}

    records = [
        message(1, "text", {"text": f"payload {XSS['script']} whitewash"}),
        message(2, "text", {"text": f"payload {XSS['img']} whitewash"}, sender=other),
        message(3, "text", {"text": f"click {XSS['link']} whitewash"}),
        message(4, "file", {"file_key": "file_k1", "file_name": XSS["img"] + ".pdf"}),
        message(5, "text", {"text": f"{XSS['svg']} {XSS['quote']} whitewash"}),
        message(6, "post", {"title": XSS["script"], "content": [[
            {"tag": "a", "text": "whitewash link", "href": XSS["link"]},
            {"tag": "text", "text": XSS["img"]}]]}),
    ]
    (folder / "messages.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def hostile_case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    return ingest_folder(write_hostile_export(base / "export"), base / "case")


# -------------------------------------------------------------------------------------------- web app

# Accounts every web test case gets (discovery.users; the passwords exist only in the test cases).
WEB_USERS = {
    "admin": ("test-admin", "admin-password-123"),
    "investigator": ("test-investigator", "investigator-password-123"),
    "auditor": ("test-auditor", "auditor-password-123"),
}
DISABLED_USER = ("test-disabled", "disabled-password-123")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_web_users(case_dir: Path) -> None:
    """The WEB_USERS (and a disabled investigator) in the case at CASE_DIR, once."""
    from discovery import users
    from discovery.case import Case

    case = Case(case_dir)
    try:
        for role, (name, password) in WEB_USERS.items():
            if users.get(case, name) is None:
                users.add(case, name, role, password)
        if users.get(case, DISABLED_USER[0]) is None:
            users.add(case, DISABLED_USER[0], "investigator", DISABLED_USER[1])
            users.set_disabled(case, DISABLED_USER[0])
    finally:
        case.close()


def make_app(case_dir: Path, **config: Any) -> Any:
    from discovery.web import create_app

    add_web_users(case_dir)
    return create_app(case=case_dir, config={"TESTING": True, **config})


def csrf_token(client: Any) -> str:
    """The CSRF token of CLIENT's session, read from a form the way a browser gets it."""
    response = client.get("/login")
    if response.status_code == 302:  # logged in: any page with a form has it
        response = client.get("/settings")
    found = CSRF_FIELD.search(response.get_data(as_text=True))
    assert found, f"no csrf_token on the page ({response.status_code})"
    return found.group(1)


def with_csrf(client: Any, **fields: Any) -> dict[str, Any]:
    """Form FIELDS plus the CSRF token of CLIENT's session, as a page's form would send them."""
    return {**fields, "csrf_token": csrf_token(client)}


def login(client: Any, name: str, password: str, **environ: Any) -> Any:
    """Log CLIENT in through the login form (CSRF token and all); returns the POST's response."""
    token = csrf_token(client)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token},
                       environ_base=environ)


class Logins:
    """One real login per role per app, its session cookie copied into each new test client (fast)."""

    def __init__(self, app: Any):
        self.app = app
        self.cookies: dict[str, str] = {}

    def client(self, role: str | None) -> Any:
        client = self.app.test_client()
        if role is None:
            return client
        name = self.app.config["SESSION_COOKIE_NAME"]
        if role not in self.cookies:
            fresh = self.app.test_client()
            response = login(fresh, *WEB_USERS[role])
            assert response.status_code == 302, response.get_data(as_text=True)
            self.cookies[role] = fresh.get_cookie(name).value
        client.set_cookie(name, self.cookies[role])
        return client


def private_copy(case_dir: Path, dest: Path) -> Path:
    """A copy of the case at CASE_DIR (users, audit trail and all) at DEST, without its session key.

    case.db is copied with SQLite's backup API, never as a file: opening and closing the file of a
    database this process has open would drop this process's POSIX locks on it (all of them, that is
    how fcntl locks work), and another process closing it then would delete the WAL under our feet.
    """
    import shutil
    import sqlite3

    shutil.copytree(case_dir, dest, ignore=shutil.ignore_patterns("secret_key", "case.db", "case.db-*"))
    source, target = sqlite3.connect(case_dir / "case.db"), sqlite3.connect(dest / "case.db")
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return dest


@pytest.fixture
def private_app(tmp_path: Path, demo_case_dir: Path) -> Iterator[Any]:
    """An app on a private copy of the demo case: a test may write to it, tamper with it, lock accounts."""
    app = make_app(private_copy(demo_case_dir, tmp_path / "case"), LOGIN_MAX_FAILURES=3,
                   LOGIN_MAX_FAILURES_PER_ADDRESS=5)
    yield app
    app.extensions["discovery_cases"].close()


@pytest.fixture(scope="session")
def demo_app(demo_case_dir: Path) -> Iterator[Any]:
    app = make_app(demo_case_dir)
    yield app
    app.extensions["discovery_cases"].close()


@pytest.fixture(scope="session")
def demo_logins(demo_app: Any) -> Logins:
    return Logins(demo_app)


@pytest.fixture
def client(demo_logins: Logins) -> Any:
    """A Flask test client on the demo case, logged in as an investigator (its own cookie jar)."""
    return demo_logins.client("investigator")


@pytest.fixture
def client_as(demo_logins: Logins) -> Any:
    """client_as(role) -> a test client on the demo case logged in with ROLE (None: not logged in)."""
    return demo_logins.client


@pytest.fixture
def anon_client(demo_app: Any) -> Any:
    return demo_app.test_client()


@pytest.fixture(scope="session")
def hostile_app(hostile_case_dir: Path) -> Iterator[Any]:
    app = make_app(hostile_case_dir)
    yield app
    app.extensions["discovery_cases"].close()


@pytest.fixture(scope="session")
def hostile_logins(hostile_app: Any) -> Logins:
    return Logins(hostile_app)


# ---------------------------------------------------------------------------------------- live server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """The real app served by waitress in a thread on 127.0.0.1 (a free port); .url is its base URL."""

    def __init__(self, app: Any):
        self.app = app
        self.url = ""

    def __enter__(self) -> LiveServer:
        from discovery.web.bench import ServerThread

        self.server = ServerThread(self.app)
        self.url = self.server.url
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def live_server(demo_app: Any) -> Iterator[LiveServer]:
    with LiveServer(demo_app) as server:
        yield server


@pytest.fixture(scope="session")
def hostile_server(hostile_app: Any) -> Iterator[LiveServer]:
    with LiveServer(hostile_app) as server:
        yield server


# -------------------------------------------------------------------------------------------- browser

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make test` installs it); never `playwright install`
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """ONE headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


def new_page(browser: Any, **context_options: Any) -> Any:
    """A page in a fresh context at a laptop-sized viewport; console errors are collected in .errors."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US", **context_options)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


@pytest.fixture
def browser_page(browser: Any) -> Iterator[Any]:
    """A fresh page (own cookies, not logged in)."""
    page = new_page(browser)
    yield page
    page.context.close()


def browser_login(page: Any, server: Any, role: str = "investigator") -> Any:
    """Log PAGE in to SERVER through its login form, as a person would; returns the page."""
    name, password = WEB_USERS[role]
    page.goto(server.url + "/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector(".site-header .account")
    return page


@pytest.fixture
def private_page(browser: Any, private_app: Any) -> Iterator[tuple[Any, LiveServer]]:
    """An investigator's page on a live server of a private case copy, for browser tests that write."""
    with LiveServer(private_app) as server:
        page = browser_login(new_page(browser), server)
        yield page, server
        page.context.close()


@pytest.fixture(scope="session")
def investigator_state(browser: Any, live_server: Any) -> dict[str, Any]:
    """The cookies of one real login through the form (as an investigator), for signed_in_page to reuse."""
    page = browser_login(new_page(browser), live_server)
    state = page.context.storage_state()
    page.context.close()
    return dict(state)


@pytest.fixture
def signed_in_page(browser: Any, live_server: Any, investigator_state: dict[str, Any]) -> Iterator[Any]:
    """A fresh page logged in to live_server (the demo case) as an investigator. Do not log out with it."""
    page = new_page(browser, storage_state=investigator_state)
    yield page
    page.context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
