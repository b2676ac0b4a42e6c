"""The UI in a real headless Chromium (Debian's), against the app served by waitress.

Every test logs in through the login form first (signed_in_page). Screenshots for a person to look
at: test-artifacts/search-results.png, login.png and audit.png.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import DISABLED_USER, WEB_USERS, LiveServer, browser_login, make_app, new_page, private_copy

pytestmark = pytest.mark.browser


def search(page, server, query: str = "whitewash", **params: str) -> None:
    extra = "".join(f"&{key}={value}" for key, value in params.items())
    page.goto(f"{server.url}/search?q={query}{extra}")


def test_search_whitewash_shows_hits_with_context(signed_in_page, live_server, artifacts):
    page = signed_in_page
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


def test_filter_by_sender_from_the_facets(signed_in_page, live_server):
    page = signed_in_page
    search(page, live_server)
    page.locator(".facets").get_by_role("link", name="Mark Ellison", exact=True).click()
    page.wait_for_url(re.compile(r"sender=ou_"))
    assert page.locator(".msg.hit").count() == 2
    assert set(page.locator(".msg.hit .sender").all_inner_texts()) == {"Mark Ellison"}
    assert "Mark Ellison" in page.locator(".active-filters").inner_text()
    page.locator(".active-filters a").first.click()
    page.wait_for_load_state()
    assert page.locator(".msg.hit").count() == 4


def test_filter_by_sender_with_the_form(signed_in_page, live_server):
    page = signed_in_page
    search(page, live_server)
    page.click(".filters summary")
    page.fill("#f-sender", "Priya Raman")
    page.press("#f-sender", "Enter")
    page.wait_for_url(re.compile(r"sender=Priya"))
    assert set(page.locator(".msg.hit .sender").all_inner_texts()) == {"Priya Raman"}


def test_j_k_move_between_hits_and_o_opens_the_conversation(signed_in_page, live_server):
    page = signed_in_page
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


def test_open_the_conversation_at_a_hit_by_link(signed_in_page, live_server):
    page = signed_in_page
    search(page, live_server)
    page.locator(".msg.hit a.open").first.click()
    page.wait_for_url(re.compile(r"/c/"))
    assert page.locator(".msg.anchor").is_visible()
    page.locator(".msg.anchor .detail-panel > summary").click()
    assert "SHA-256" in page.locator(".msg.anchor .provenance").inner_text()


def test_slash_focuses_the_search_box(signed_in_page, live_server):
    page = signed_in_page
    search(page, live_server)
    page.locator("h1").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"


def test_load_earlier_and_later_messages_in_place(signed_in_page, live_server):
    page = signed_in_page
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


def test_timeline_bar_narrows_the_dates(signed_in_page, live_server):
    page = signed_in_page
    search(page, live_server)
    page.locator(".timeline-chart a").last.click()
    page.wait_for_url(re.compile(r"from=2024-09-18&to=2024-09-18"))
    assert page.locator(".msg.hit").count() == 1


def test_pages_work_with_javascript_off(browser, live_server):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = browser_login(context.new_page(), live_server)  # the login form works without JavaScript too
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


def test_malformed_query_shows_where(signed_in_page, live_server):
    page = signed_in_page
    page.goto(live_server.url + "/search?q=whitewash%20(refund")
    box = page.locator(".error-box")
    assert box.is_visible()
    assert "^" in box.locator(".caret").inner_text()


def test_hostile_content_stays_inert(browser_page, hostile_server):
    page = browser_login(browser_page, hostile_server)
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


def test_choose_the_display_time_zone(signed_in_page, live_server):
    page = signed_in_page
    search(page, live_server)
    page.get_by_role("link", name=re.compile("Times in")).click()
    page.select_option("#timezone", "Asia/Shanghai")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/search\?q=whitewash"))  # back where we were
    first = page.locator(".msg.hit time").first
    assert first.inner_text().endswith(" CST")
    assert first.get_attribute("title").endswith(" UTC")
    assert "Asia/Shanghai" in page.locator(".site-header").inner_text()


def test_log_in_search_and_log_out(browser_page, live_server, artifacts):
    page = browser_page
    page.goto(live_server.url + "/search?q=whitewash")
    page.wait_for_url(re.compile(r"/login\?next="))  # nothing without an account
    assert page.locator("h1").inner_text().startswith("Log in to")
    assert page.evaluate("document.activeElement.id") == "name"
    page.screenshot(path=str(artifacts / "login.png"), full_page=True)
    name, password = WEB_USERS["investigator"]
    page.fill("#name", name)
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/search\?q=whitewash"))  # back where we were going
    assert page.locator(".msg.hit").count() == 4
    header = page.locator(".site-header").inner_text()
    assert name in header and "investigator" in header and "Audit trail" not in header
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login\?out=1"))
    assert "You are logged out" in page.locator("main").inner_text()
    page.goto(live_server.url + "/search?q=whitewash")
    page.wait_for_url(re.compile(r"/login"))
    assert page.context.cookies() == [] or all(c["httpOnly"] and c["sameSite"] == "Lax"
                                               for c in page.context.cookies())
    assert page.errors == []


def test_wrong_password_and_disabled_account_are_refused(browser_page, live_server):
    page = browser_page
    page.goto(live_server.url + "/login")
    page.fill("#name", WEB_USERS["investigator"][0])
    page.fill("#password", "not the password at all")
    page.get_by_role("button", name="Log in").click()
    assert "Wrong user name or password." in page.locator("[role=alert]").inner_text()
    page.fill("#name", DISABLED_USER[0])
    page.fill("#password", DISABLED_USER[1])
    page.get_by_role("button", name="Log in").click()
    assert "This account is disabled" in page.locator("[role=alert]").inner_text()
    page.goto(live_server.url + "/search")
    page.wait_for_url(re.compile(r"/login"))


def test_session_cookie_is_httponly_and_lax(signed_in_page, live_server):
    signed_in_page.goto(live_server.url + "/search")
    [cookie] = signed_in_page.context.cookies()
    assert cookie["name"].startswith("discovery_") and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["expires"] > 0  # a lifetime, not forever (and not secure: this server is plain HTTP)
    assert signed_in_page.evaluate("document.cookie") == ""  # out of reach of scripts


def test_a_post_without_the_csrf_token_is_refused(signed_in_page, live_server):
    response = signed_in_page.request.post(live_server.url + "/settings", form={"timezone": "Asia/Tokyo"})
    assert response.status == 400 and "security token" in response.text()
    signed_in_page.goto(live_server.url + "/settings")
    assert signed_in_page.locator("#timezone").input_value() != "Asia/Tokyo"


def test_investigator_cannot_open_the_audit_page(signed_in_page, live_server):
    response = signed_in_page.goto(live_server.url + "/audit")
    assert response.status == 403
    assert "may not use this page" in signed_in_page.locator("main").inner_text()


def test_auditor_reads_the_audit_trail(browser_page, live_server, artifacts):
    page = browser_login(browser_page, live_server, "auditor")
    page.get_by_role("link", name="Audit trail").click()
    page.wait_for_url(re.compile(r"/audit$"))
    assert "Chain intact" in page.locator(".verdict").inner_text()
    assert page.locator("table.audit tbody tr").count() > 3
    page.select_option("#a-action", "login")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"action=login"))
    actions = page.locator("table.audit tbody td:nth-child(5)").all_inner_texts()
    assert actions and set(actions) == {"login"}
    page.screenshot(path=str(artifacts / "audit.png"), full_page=False)
    assert page.errors == []


def test_export_button_downloads_a_verified_bundle(signed_in_page, live_server, tmp_path):
    from discovery.export.verify import verify_bundle

    page = signed_in_page
    search(page, live_server)
    with page.expect_download() as download_info:
        page.locator("#export-button").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert verify_bundle(saved).ok
    assert page.errors == []


def test_a_session_cookie_from_another_case_does_not_work(browser, signed_in_page, live_server, hostile_server):
    signed_in_page.goto(live_server.url + "/search")
    [cookie] = signed_in_page.context.cookies()
    other_name = hostile_server.app.config["SESSION_COOKIE_NAME"]
    page = new_page(browser)
    try:
        page.context.add_cookies([{"name": other_name, "value": cookie["value"], "url": hostile_server.url}])
        page.goto(hostile_server.url + "/search?q=whitewash")
        page.wait_for_url(re.compile(r"/login\?next="))  # the other case's key does not sign it
        assert page.locator(".msg").count() == 0
    finally:
        page.context.close()


def test_the_audit_chain_after_a_scripted_session_and_after_tampering(browser, demo_case_dir, tmp_path, artifacts):
    import sqlite3

    app = make_app(private_copy(demo_case_dir, tmp_path / "case"))
    try:
        with LiveServer(app) as server:
            page = browser_login(new_page(browser), server, "investigator")
            search(page, server)
            page.locator(".msg.hit a.open").first.click()
            page.wait_for_url(re.compile(r"/c/"))
            page.get_by_role("button", name="Log out").click()
            page.wait_for_url(re.compile(r"/login\?out=1"))
            page.context.close()
            page = browser_login(new_page(browser), server, "auditor")
            page.goto(server.url + "/audit?user=" + WEB_USERS["investigator"][0])
            assert "Chain intact" in page.locator(".verdict").inner_text()
            actions = page.locator("table.audit tbody td:nth-child(5)").all_inner_texts()
            assert actions[:4] == ["logout", "view_conversation", "search", "login"]
            seq = int(page.locator("table.audit tbody tr").nth(2).locator("td").first.inner_text())
            db = sqlite3.connect(tmp_path / "case" / "case.db")
            try:
                db.execute("DROP TRIGGER audit_log_no_update")
                db.execute("UPDATE audit_log SET details = '{\"query\": \"nothing to see\"}' WHERE seq = ?", (seq,))
                db.commit()
            finally:
                db.close()
            page.reload()
            verdict = page.locator(".verdict").inner_text()
            assert "The chain does not verify" in verdict and f"entry {seq} (search" in verdict
            page.screenshot(path=str(artifacts / "audit-tampered.png"))
            page.context.close()
    finally:
        app.extensions["discovery_cases"].close()
