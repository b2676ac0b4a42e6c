"""The review pages in a real browser (the session's one Chromium): tag a hit, bulk-tag with confirmation
(filters included), notes beside hits (JavaScript off too), an admin's coloured tag."""

from __future__ import annotations

from tests.conftest import XSS, LiveServer, browser_login, new_page


def test_tag_a_hit_from_the_results(private_page):
    page, server = private_page
    page.goto(server.url + "/search?q=whitewash")
    first = page.locator(".msg.hit").first
    first.locator(".tag-form select").select_option("responsive")
    first.get_by_role("button", name="Tag", exact=True).click()
    page.wait_for_url("**/search?q=whitewash")
    assert page.locator(".msg.hit").first.locator(".hit-tags .tag").inner_text() == "responsive"
    assert page.errors == []


def test_bulk_tag_with_the_stated_count(private_page):
    page, server = private_page
    page.goto(server.url + "/search?q=whitewash")
    total = page.locator(".msg.hit").count()  # the demo's whitewash hits fit on one page
    page.fill(".bulk-tag input[name=tag]", "privileged")
    page.get_by_role("button", name="Review count").click()
    assert page.locator("#bulk-count").inner_text() == str(total)
    page.get_by_role("button", name=f"Tag {total} messages").click()
    page.wait_for_url("**/search?**")
    assert page.locator(".hit-tags .tag", has_text="privileged").count() == total
    assert page.errors == []


def test_walk_a_set_with_the_1_key(private_page):
    page, server = private_page
    page.goto(server.url + "/sets")
    page.fill(".new-set input[name=name]", "browser pass")
    page.fill(".new-set input[name=q]", "whitewash")
    page.get_by_role("button", name="Make review set").click()
    assert page.locator("#progress").inner_text().startswith("Reviewed 0 of ")
    first_tag = page.locator(".review-buttons button[data-key='1']").get_attribute("value")
    page.keyboard.press("1")
    page.wait_for_url("**pos=2")
    assert page.locator("#progress").inner_text().startswith("Reviewed 1 of ")
    page.goto(page.url.split("?")[0] + "?pos=1")
    assert page.locator(".item-tags .tag").inner_text() == first_tag
    assert page.errors == []


def test_add_a_note_beside_a_hit_with_javascript_off(browser, private_app):
    """A note written under a hit appears beside it after the form comes back (no script needed)."""
    with LiveServer(private_app) as server:
        page = browser_login(new_page(browser, java_script_enabled=False), server)
        try:
            page.goto(server.url + "/search?q=whitewash")
            first = page.locator(".msg.hit").first
            first.locator(".note-add summary").click()
            first.get_by_label("Note on this message").fill("Call the custodian about this one")
            first.get_by_role("button", name="Save note").click()
            page.wait_for_url("**/search?q=whitewash#notes-*")
            note = page.locator(".msg.hit").first.locator(".note")
            assert note.locator(".note-text").inner_text() == "Call the custodian about this one"
            assert note.locator(".note-author").inner_text() == "test-investigator"
            assert "UTC" in note.locator("time").inner_text()
        finally:
            page.context.close()


def test_a_hostile_note_stays_text(private_page):
    page, server = private_page
    page.goto(server.url + "/search?q=whitewash")
    first = page.locator(".msg.hit").first
    first.locator(".note-add summary").click()
    first.get_by_label("Note on this message").fill(XSS["script"] + " " + XSS["img"])
    first.get_by_role("button", name="Save note").click()
    page.wait_for_url("**/search?q=whitewash#notes-*")
    assert XSS["script"] in page.locator(".msg.hit").first.locator(".note-text").inner_text()
    message_url = page.locator(".msg.hit").first.get_by_role("link", name="Details and source").get_attribute("href")
    page.goto(server.url + message_url)
    assert XSS["img"] in page.locator(".note-text").inner_text()
    assert page.evaluate("window.__xss === undefined")
    assert page.errors == []


def test_bulk_tag_with_a_filter_tags_exactly_the_filtered_hits(private_page):
    page, server = private_page
    found = page.request.get(server.url + "/search.json?q=whitewash&per_page=200").json()
    senders = [h["message"]["sender_id"] for h in found["hits"]]
    sender = max(set(senders), key=senders.count)
    page.goto(server.url + f"/search?q=whitewash&sender={sender}")
    filtered = page.locator(".msg.hit").count()
    assert 0 < filtered < found["total"]
    page.fill(".bulk-tag input[name=tag]", "hot")
    page.get_by_role("button", name="Review count").click()
    assert page.locator("#bulk-count").inner_text() == str(filtered)
    page.get_by_role("button", name=f"Tag {filtered} messages").click()
    page.wait_for_url(f"**/search?q=whitewash&sender={sender}")
    assert page.locator(".hit-tags .tag", has_text="hot").count() == filtered
    page.goto(server.url + '/search?q=tag:"hot"')
    assert page.locator(".msg.hit").count() == filtered
    assert page.locator(".facet-tags li", has_text="hot").locator(".count").inner_text() == str(filtered)
    assert page.errors == []


def test_an_admin_adds_a_coloured_tag(browser, private_app):
    with LiveServer(private_app) as server:
        page = browser_login(new_page(browser), server, role="admin")
        try:
            page.goto(server.url + "/tags")
            page.fill("#new-tag-name", "Board minutes")
            page.fill("#new-tag-colour", "#00897b")
            page.get_by_role("button", name="Add tag").click()
            page.wait_for_url("**/tags")
            chip = page.locator(".tags-table .tag", has_text="Board minutes")
            assert chip.locator("circle").get_attribute("fill") == "#00897b"
            page.goto(server.url + "/search?q=whitewash")
            page.locator(".msg.hit").first.locator(".tag-form select").select_option("Board minutes")
            page.locator(".msg.hit").first.get_by_role("button", name="Tag", exact=True).click()
            page.wait_for_url("**/search?q=whitewash")
            chip = page.locator(".msg.hit").first.locator(".hit-tags .tag", has_text="Board minutes")
            assert chip.locator("circle").get_attribute("fill") == "#00897b"
            assert page.errors == []
        finally:
            page.context.close()
