"""Saved searches in a real browser: save the search on screen, find it in the list, rerun it.

The server runs on a private copy of the demo case (this test writes a saved search), as in
test_browser_review.py.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def shown_hits(page: Any) -> list[str]:
    """The hits on the results page, as their 'open in conversation' links (message ids and all)."""
    return page.locator(".msg.hit").evaluate_all("items => items.map(item => item.dataset.open)")


def test_save_the_search_see_it_listed_and_rerun_it(private_page):
    page, server = private_page
    page.goto(server.url + "/search?q=whitewash&context=1&sort=time_asc&edited=0")
    before = shown_hits(page)
    assert before
    page.locator(".save-search summary").click()
    page.fill("#save-name", "whitewash, oldest first")
    page.get_by_role("button", name="Save search").click()
    page.wait_for_url("**/saved?saved=*")
    assert "Saved “whitewash, oldest first”" in page.locator("#saved-notice").inner_text()
    row = page.locator("tr", has=page.locator(".saved-name", has_text="whitewash, oldest first"))
    assert row.locator(".hits-then").inner_text() == str(len(before))
    assert row.locator(".hits-now").inner_text() == str(len(before))
    row.get_by_role("button", name="Rerun").click()
    page.wait_for_url("**/search?**")
    assert "q=whitewash" in page.url and "context=1" in page.url and "sort=time_asc" in page.url
    assert shown_hits(page) == before
    page.goto(server.url + "/saved")
    assert page.locator("tr", has_text="whitewash, oldest first").locator("td.num").nth(1).inner_text().startswith(
        str(len(before)))  # the last run, recorded
    assert page.errors == []
