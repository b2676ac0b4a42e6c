"""Hostile content renders as inert text everywhere; every response carries the security headers."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from discovery.web.render import highlight, safe_href, safe_next
from tests.conftest import XSS, with_csrf


class LiveMarkup(HTMLParser):
    """What a browser would run: script elements without src, on* handlers, javascript: URLs, injected tags."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("img", "iframe", "object", "embed"):  # the UI itself uses none of these
            self.problems.append(f"<{tag}>")
        if tag == "script" and not dict(attrs).get("src"):
            self.problems.append("inline <script>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if tag != "link" and name in ("href", "src", "action", "formaction") and value and \
                    value.strip().lower().startswith(("javascript:", "data:", "vbscript:")):
                self.problems.append(f"<{tag} {name}={value!r}>")


def live_markup(html: str) -> list[str]:
    parser = LiveMarkup()
    parser.feed(html)
    return parser.problems


def hostile_pages(client) -> dict[str, str]:
    data = client.get("/search.json?q=whitewash&context=5").get_json()
    hit = data["hits"][0]["message"]
    everything = client.get("/search.json?q=payload OR click OR whitewash").get_json()
    assert everything["total"] >= 4
    pages = {
        "search": "/search?q=whitewash&context=5",
        "search-all": "/search?q=has:attachment OR whitewash&context=10",
        "overview": "/search",
        "conversations": "/conversations",
        "conversation": f"/c/{hit['conversation_id']}",
        "message": f"/m/{hit['id']}",
        "settings": "/settings",
        "filtered": f"/search?q=whitewash&sender={hit['sender_id']}&conversation={hit['conversation_id']}",
        "error-query": "/search?q=" + XSS["script"].replace(" ", "%20") + "(",
        "not-found": "/m/" + XSS["img"],
    }
    return {name: client.get(url).get_data(as_text=True) for name, url in pages.items()}


@pytest.fixture
def hostile_client(hostile_logins):
    return hostile_logins.client("investigator")


def test_payloads_are_in_the_case(hostile_client):
    data = hostile_client.get("/search.json?q=whitewash&context=10").get_json()
    texts = " ".join(m["text"] + m["sender_name"] + m["conversation_name"]
                     for hit in data["hits"] for m in hit["context"])
    assert XSS["script"] in texts and XSS["img"] in texts and "javascript:" in texts


def test_hostile_text_is_escaped_on_every_page(hostile_client):
    for name, html in hostile_pages(hostile_client).items():
        assert live_markup(html) == [], name
        assert "<svg onload" not in html.lower(), name
    html = hostile_client.get("/search?q=whitewash&context=5").get_data(as_text=True)
    assert "&lt;script&gt;window.__xss=1;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html


def test_file_names_and_titles_are_escaped(hostile_client):
    html = hostile_client.get("/search?q=has:attachment").get_data(as_text=True)
    assert "&lt;img src=x onerror=" in html and ".pdf" in html
    assert not re.search(r"<img[^>]*onerror", html)


def test_json_twins_keep_the_payloads_verbatim(hostile_client):
    data = hostile_client.get("/search.json?q=whitewash").get_json()
    assert any(XSS["script"] in hit["message"]["text"] for hit in data["hits"])


def test_only_script_src_self_and_other_headers(client, hostile_client):
    for url, user in (("/search?q=whitewash", client), ("/search.json?q=x", client), ("/m/nope", client),
                      ("/static/app.css", client), ("/static/app.js", client), ("/conversations", hostile_client)):
        response = user.get(url)
        response.close()
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_inline_script_or_style_in_pages(client):
    for url in ("/search?q=whitewash", "/search", "/conversations", "/settings"):
        html = client.get(url).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\ssrc=)", html), url
        assert " style=" not in html and "<style" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url


def test_session_cookie_is_httponly_and_samesite(client):
    response = client.post("/settings", data=with_csrf(client, timezone="UTC"))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain HTTP here


def test_settings_refuse_a_post_without_the_csrf_token(client):
    response = client.post("/settings", data={"timezone": "Asia/Tokyo"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 400 and "security token" in response.get_data(as_text=True)
    assert client.post("/settings", data={"timezone": "Asia/Tokyo", "csrf_token": "forged"}).status_code == 400
    assert client.get("/settings.json").get_json()["timezone"] == "UTC"
    same = client.post("/settings", data=with_csrf(client, timezone="Asia/Tokyo"))
    assert same.status_code == 302


def test_highlight_escapes_every_segment():
    text = '<b>x</b> whitewash & "y" <script>'
    out = highlight(text, [[9, 18]])
    assert isinstance(out, Markup)
    assert str(out) == '&lt;b&gt;x&lt;/b&gt; <mark>whitewash</mark> &amp; &#34;y&#34; &lt;script&gt;'


def test_highlight_clips_bad_spans():
    assert str(highlight("abcdef", [[4, 99], [-3, 1], [0, 2], [5, 5]])) == "<mark>ab</mark>cd<mark>ef</mark>"
    assert str(highlight("洗白了", [[0, 2]])) == "<mark>洗白</mark>了"
    assert str(highlight(None, None)) == ""


@pytest.mark.parametrize("url, ok", [
    ("https://example.com/a?b=1", True), ("http://example.com", True), ("javascript:alert(1)", False),
    ("JAVASCRIPT:alert(1)", False), (" javascript:alert(1)", False), ("java\tscript:alert(1)", False),
    ("data:text/html,x", False), ("//example.com", False), ("/relative", False), ("vbscript:x", False),
    ("https:///nohost", False), ("", False), (None, False),
])
def test_safe_href(url, ok):
    assert (safe_href(url) is not None and safe_href(url) == url) is ok


@pytest.mark.parametrize("target, ok", [
    ("/search?q=x", True), ("//evil.example", False), ("/\\evil.example", False), ("https://evil.example", False),
    ("search", False), ("/x\r\nLocation: y", False), (None, False),
])
def test_safe_next(target, ok):
    assert (safe_next(target) is not None and safe_next(target) == target) is ok
