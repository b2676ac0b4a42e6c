"""The review pages in a real browser (the session's one Chromium): tag a hit, bulk-tag with confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer, browser_login, new_page


@pytest.fixture
def review_page(browser: Any, private_app: Any) -> Iterator[tuple[Any, LiveServer]]:
    """An investigator's page on a live server of a private case copy (these tests write tags)."""
    with LiveServer(private_app) as server:
        page = browser_login(new_page(browser), server)
        yield page, server
        page.context.close()


def test_tag_a_hit_from_the_results(review_page):
    page, server = review_page
    page.goto(server.url + "/search?q=whitewash")
    first = page.locator(".msg.hit").first
    first.locator(".tag-form select").select_option("responsive")
    first.get_by_role("button", name="Tag", exact=True).click()
    page.wait_for_url("**/search?q=whitewash")
    assert page.locator(".msg.hit").first.locator(".hit-tags .tag").inner_text() == "responsive"
    assert page.errors == []


def test_bulk_tag_with_the_stated_count(review_page):
    page, server = review_page
    page.goto(server.url + "/search?q=whitewash")
    total = page.locator(".msg.hit").count()  # the demo's whitewash hits fit on one page
    page.fill(".bulk-tag input[name=tag]", "privileged")
    page.get_by_role("button", name="Review count").click()
    assert page.locator("#bulk-count").inner_text() == str(total)
    page.get_by_role("button", name=f"Tag {total} messages").click()
    page.wait_for_url("**/search?**")
    assert page.locator(".hit-tags .tag", has_text="privileged").count() == total
    assert page.errors == []


def test_walk_a_set_with_the_1_key(review_page):
    page, server = review_page
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
