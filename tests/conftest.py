"""Shared fixtures, by section: cases, web app, live server, browser.

Keep each section's fixtures together; add new sections below the last one.
"""

from __future__ import annotations

import json
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
    """The demo case: fixtures/lark ingested once per test session (read-only for tests)."""
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


def make_app(case_dir: Path, **config: Any) -> Any:
    from discovery.web import create_app

    return create_app(case=case_dir, config={"TESTING": True, **config})


@pytest.fixture(scope="session")
def demo_app(demo_case_dir: Path) -> Iterator[Any]:
    app = make_app(demo_case_dir)
    yield app
    app.extensions["discovery_cases"].close()


@pytest.fixture
def client(demo_app: Any) -> Any:
    """A Flask test client on the demo case (its own cookie jar, so its own session)."""
    return demo_app.test_client()


@pytest.fixture(scope="session")
def hostile_app(hostile_case_dir: Path) -> Iterator[Any]:
    app = make_app(hostile_case_dir)
    yield app
    app.extensions["discovery_cases"].close()


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


@pytest.fixture
def browser_page(browser: Any) -> Iterator[Any]:
    """A fresh page (own cookies) at a laptop-sized viewport; console errors are collected in .errors."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
