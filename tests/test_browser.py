"""The UI in a real headless Chromium (Debian's), against the app served by waitress.

The results page screenshot is saved to test-artifacts/search-results.png for a person to look at.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def search(page, server, query: str = "whitewash", **params: str) -> None:
    extra = "".join(f"&{key}={value}" for key, value in params.items())
    page.goto(f"{server.url}/search?q={query}{extra}")


def test_search_whitewash_shows_hits_with_context(browser_page, live_server, artifacts):
    page = browser_page
    page.goto(live_server.url + "/search")
    page.fill("#q", "whitewash")
    page.press("#q", "Enter")
    page.wait_for_url("**/search?q=whitewash*")
    hits = page.locator(".msg.hit")
    assert hits.count() == 4
    assert page.locator(".msg.context").count() >= 6
    marks = page.locator(".msg.hit mark").all_inner_texts()
    assert marks and all(mark.lower() == "whitewash" for mark in marks)
    assert page.locator("h1#results-title").inner_text().startswith("4 hits")
    assert page.locator(".timeline-chart rect.bar").count() >= 2
    assert page.locator(".facets").is_visible()
    title = page.locator(".msg.hit time").first.get_attribute("title")
    assert title and title.endswith(" UTC")
    page.screenshot(path=str(artifacts / "search-results.png"), full_page=True)
    assert page.errors == []  # no script errors, no CSP violations


def test_filter_by_sender_from_the_facets(browser_page, live_server):
    page = browser_page
    search(page, live_server)
    page.locator(".facets").get_by_role("link", name="Mark Ellison", exact=True).click()
    page.wait_for_url(re.compile(r"sender=ou_"))
    assert page.locator(".msg.hit").count() == 2
    assert set(page.locator(".msg.hit .sender").all_inner_texts()) == {"Mark Ellison"}
    assert "Mark Ellison" in page.locator(".active-filters").inner_text()
    page.locator(".active-filters a").first.click()
    page.wait_for_load_state()
    assert page.locator(".msg.hit").count() == 4


def test_filter_by_sender_with_the_form(browser_page, live_server):
    page = browser_page
    search(page, live_server)
    page.click(".filters summary")
    page.fill("#f-sender", "Priya Raman")
    page.press("#f-sender", "Enter")
    page.wait_for_url(re.compile(r"sender=Priya"))
    assert set(page.locator(".msg.hit .sender").all_inner_texts()) == {"Priya Raman"}


def test_j_k_move_between_hits_and_o_opens_the_conversation(browser_page, live_server):
    page = browser_page
    search(page, live_server, sort="time_asc")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == "hit-1"
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == "hit-3"
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.id") == "hit-2"
    expected = page.locator("#hit-2").get_attribute("data-open")
    page.keyboard.press("o")
    page.wait_for_url(re.compile(r"/c/.+\?at=m"))
    assert expected.split("#")[0] in page.url
    anchor = page.locator(".msg.anchor")
    assert anchor.count() == 1 and anchor.is_visible()
    assert "whitewash" in anchor.inner_text().lower()
    assert page.evaluate("document.activeElement.classList.contains('anchor')")


def test_open_the_conversation_at_a_hit_by_link(browser_page, live_server):
    page = browser_page
    search(page, live_server)
    page.locator(".msg.hit a.open").first.click()
    page.wait_for_url(re.compile(r"/c/"))
    assert page.locator(".msg.anchor").is_visible()
    page.locator(".msg.anchor .detail-panel > summary").click()
    assert "SHA-256" in page.locator(".msg.anchor .provenance").inner_text()


def test_slash_focuses_the_search_box(browser_page, live_server):
    page = browser_page
    search(page, live_server)
    page.locator("h1").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"


def test_load_earlier_and_later_messages_in_place(browser_page, live_server):
    page = browser_page
    search(page, live_server, sort="time_asc")
    url = page.locator("#hit-2").get_attribute("data-open")  # mid-way through the Atlas group
    page.goto(live_server.url + url.replace("?at=", "?size=4&at="))
    before = page.locator(".transcript-wrap > ol.transcript > li").count()
    assert before == 4
    items = page.locator(".transcript-wrap > ol.transcript > li")
    page.click("a[data-load=earlier]")
    items.nth(4).wait_for()  # (no wait_for_function: its polling evals strings, which our CSP forbids)
    page.click("a[data-load=later]")
    items.nth(8).wait_for()
    assert "/c/" in page.url and "before=" not in page.url  # spliced in place, not navigated
    assert page.locator(".msg.anchor").count() == 1
    assert page.errors == []


def test_timeline_bar_narrows_the_dates(browser_page, live_server):
    page = browser_page
    search(page, live_server)
    page.locator(".timeline-chart a").last.click()
    page.wait_for_url(re.compile(r"from=2024-09-18&to=2024-09-18"))
    assert page.locator(".msg.hit").count() == 1


def test_pages_work_with_javascript_off(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/search")
        page.fill("#q", "whitewash")
        page.press("#q", "Enter")
        page.wait_for_url("**q=whitewash*")
        assert page.locator(".msg.hit").count() == 4
        page.locator(".msg.hit a.open").first.click()
        page.wait_for_url(re.compile(r"/c/"))
        assert page.locator(".msg.anchor").count() == 1
    finally:
        context.close()


def test_malformed_query_shows_where(browser_page, live_server):
    page = browser_page
    page.goto(live_server.url + "/search?q=whitewash%20(refund")
    box = page.locator(".error-box")
    assert box.is_visible()
    assert "^" in box.locator(".caret").inner_text()


def test_hostile_content_stays_inert(browser_page, hostile_server):
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(hostile_server.url + "/search?q=whitewash&context=10")
    assert page.locator(".msg.hit").count() >= 4
    assert "<script>window.__xss=1;alert(1)</script>" in page.locator("main").inner_text()
    page.locator(".msg.hit a.open").first.click()
    page.wait_for_url(re.compile(r"/c/"))
    for details in page.locator("details.detail-panel").all():
        details.locator("> summary").click()
    page.goto(hostile_server.url + "/conversations")
    page.goto(hostile_server.url + "/search?q=has:attachment")
    assert dialogs == []
    assert page.evaluate("window.__xss === undefined")


def test_choose_the_display_time_zone(browser_page, live_server):
    page = browser_page
    search(page, live_server)
    page.get_by_role("link", name=re.compile("Times in")).click()
    page.select_option("#timezone", "Asia/Shanghai")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/search\?q=whitewash"))  # back where we were
    first = page.locator(".msg.hit time").first
    assert first.inner_text().endswith(" CST")
    assert first.get_attribute("title").endswith(" UTC")
    assert "Asia/Shanghai" in page.locator(".site-header").inner_text()
