"""Walking a review set in a real browser (the session's one Chromium): j / k and the Previous / Next
links (JavaScript off too), search-page j / k unchanged, and what a bulk change says afterwards."""

from __future__ import annotations

from tests.conftest import LiveServer, browser_login, new_page


def make_set(page, server, name: str = "walk pass") -> str:
    """A review set of the demo's whitewash hits made through the Review sets form; its walk URL."""
    page.goto(server.url + "/sets")
    page.fill(".new-set input[name=name]", name)
    page.fill(".new-set input[name=q]", "whitewash")
    page.get_by_role("button", name="Make review set").click()
    page.wait_for_selector("#item-title")
    return page.url.split("?")[0]


def item_title(page) -> str:
    return page.locator("#item-title").inner_text()


def test_j_and_k_walk_the_set_and_stop_at_its_ends(private_page):
    page, server = private_page
    url = make_set(page, server)
    total = int(page.locator("#progress").inner_text().rsplit(" ", 1)[1])
    assert total >= 3 and item_title(page).startswith(f"Item 1 of {total}")
    page.keyboard.press("j")
    page.wait_for_url(f"{url}?pos=2")
    assert item_title(page).startswith(f"Item 2 of {total}")
    page.keyboard.press("j")
    page.wait_for_url(f"{url}?pos=3")
    page.keyboard.press("k")
    page.wait_for_url(f"{url}?pos=2")
    page.keyboard.press("k")
    page.wait_for_url(f"{url}?pos=1")
    assert item_title(page).startswith(f"Item 1 of {total}")
    page.keyboard.press("k")  # nothing before item 1: the page stays
    page.wait_for_timeout(300)
    assert page.url == f"{url}?pos=1" and page.get_by_role("link", name="‹ Previous").count() == 0
    page.goto(f"{url}?pos={total}")
    page.keyboard.press("j")  # nothing after the last item
    page.wait_for_timeout(300)
    assert page.url == f"{url}?pos={total}" and page.get_by_role("link", name="Next ›").count() == 0
    assert page.errors == []


def test_go_back_with_k_to_an_item_just_tagged(private_page):
    page, server = private_page
    url = make_set(page, server, "back pass")
    first_tag = page.locator(".review-buttons button[data-key='1']").get_attribute("value")
    page.keyboard.press("1")  # tags item 1 and moves on to item 2
    page.wait_for_url(f"{url}?pos=2")
    page.keyboard.press("k")
    page.wait_for_url(f"{url}?pos=1")
    assert page.locator(".item-tags .tag").inner_text() == first_tag
    assert "reviewed by test-investigator" in item_title(page)
    assert page.errors == []


def test_keys_typed_into_a_field_do_not_walk(private_page):
    page, server = private_page
    url = make_set(page, server, "typing pass")
    page.goto(f"{url}?pos=2")
    # a field on the page (made here: the walk page has none of its own, the note forms are elsewhere)
    page.evaluate("() => { const i = document.createElement('input'); i.id = 'probe';"
                  " document.querySelector('main').prepend(i); }")
    page.focus("#probe")
    page.keyboard.type("jk1")
    page.wait_for_timeout(300)
    assert page.url == f"{url}?pos=2" and page.input_value("#probe") == "jk1"
    assert page.locator("#progress").inner_text().startswith("Reviewed 0 of ")
    assert page.errors == []


def test_previous_and_next_links_work_without_javascript(browser, private_app):
    with LiveServer(private_app) as server:
        page = browser_login(new_page(browser, java_script_enabled=False), server)
        try:
            url = make_set(page, server, "no-script pass")
            page.get_by_role("link", name="Next ›").click()
            page.wait_for_url(f"{url}?pos=2")
            assert item_title(page).startswith("Item 2 of")
            page.get_by_role("link", name="Next ›").click()
            page.wait_for_url(f"{url}?pos=3")
            page.get_by_role("link", name="‹ Previous").click()
            page.wait_for_url(f"{url}?pos=2")
            page.get_by_role("link", name="‹ Previous").click()
            page.wait_for_url(f"{url}?pos=1")
            assert page.get_by_role("link", name="‹ Previous").count() == 0
        finally:
            page.context.close()


def test_search_page_j_and_k_still_move_between_hits(signed_in_page, live_server):
    page = signed_in_page
    page.goto(live_server.url + "/search?q=whitewash")
    hits = page.locator(".msg.hit[id^='hit-']")
    assert hits.count() >= 2
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == hits.nth(0).get_attribute("id")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == hits.nth(1).get_attribute("id")
    assert "current" in (hits.nth(1).get_attribute("class") or "")
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.id") == hits.nth(0).get_attribute("id")
    assert page.url.endswith("/search?q=whitewash") and page.errors == []


def test_a_bulk_change_says_what_it_did_and_an_unknown_tag_keeps_the_search(private_page):
    page, server = private_page
    page.goto(server.url + "/search?q=whitewash")
    total = page.locator(".msg.hit").count()
    page.fill(".bulk-tag input[name=tag]", "privilegd")  # a typo
    page.get_by_role("button", name="Review count").click()
    assert page.locator(".error-box h2").inner_text() == "There is no tag “privilegd” in this case"
    assert page.errors == ["Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"]
    page.errors.clear()  # the page is a 400 (as a bad term on the term report is): Chromium logs that
    page.locator("#bulk-tag-choice").select_option("privileged")
    page.get_by_role("button", name="Review count").click()
    assert page.locator("#bulk-count").inner_text() == str(total)
    page.get_by_role("button", name=f"Tag {total} messages").click()
    page.wait_for_url("**/search?q=whitewash")
    assert page.locator("p.notice[role=status]").inner_text() == f"Tagged {total} messages as “privileged”."
    assert page.locator(".hit-tags .tag", has_text="privileged").count() == total
    page.reload()
    assert page.locator("p.notice").count() == 0  # said once
    assert page.errors == []
