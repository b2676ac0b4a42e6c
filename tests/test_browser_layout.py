"""Layout on a phone: every page fits a 390 px wide viewport (no sideways scrolling of the page: wide tables
scroll inside their own box), Log out stays on screen, and the desktop header keeps its one row. Also the
contrast of the review keys' <kbd> labels and of the hit numbers, and the timeline's labels.

The browser tests use the session's one Chromium; the pages that need data of their own (a saved search, a
review set) run on a private copy of the demo case, as an admin (who also sees the tag forms).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import Any

import pytest

from discovery import facets
from discovery.web.timeline import CHAR_WIDTH, chart
from tests.conftest import LiveServer, browser_login, new_page

PHONE = {"width": 390, "height": 844}

FITS = """() => {
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-scroll'))
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, wide};
}"""


def phone_page(browser: Any, **context_options: Any) -> Any:
    page = new_page(browser, **context_options)
    page.set_viewport_size(PHONE)
    return page


def assert_fits(page: Any, path: str) -> None:
    """PAGE (at PATH) is no wider than the viewport and its Log out button is wholly on screen."""
    fit = page.evaluate(FITS)
    assert fit["scroll"] <= fit["inner"], f"{path} is {fit['scroll']} px wide at {fit['inner']} px: {fit['wide']}"
    box = page.get_by_role("button", name="Log out").bounding_box()
    assert box is not None, f"no Log out button on {path}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= fit["inner"], f"Log out is off screen on {path}: {box}"
    for link in page.locator(".site-header nav a").all():  # every navigation link is reachable, not cut off
        link_box = link.bounding_box()
        assert link_box and link_box["x"] >= 0 and link_box["x"] + link_box["width"] <= fit["inner"], path


def luminance(css: str) -> float:
    channels = [int(value) / 255 for value in re.findall(r"[\d.]+", css)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def colours(locator: Any) -> tuple[str, str]:
    return locator.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")


# ------------------------------------------------------------------------------------------ phone width


@pytest.mark.browser
@pytest.mark.parametrize("path", [
    "/search?q=whitewash",
    "/search",  # the case overview, with its table of conversations
    "/search?q=whitewash&from=2024-09-01&sender=Mark",  # the filters open: date fields, checkboxes
    "/search?q=the",  # a timeline of many days
    "conversation",
    "message",
    "/conversations",
    "/terms?terms=whitewash%0Arefund%0A%22debug+logs%22&context=1",
    "/saved",
    "/sets",
    "/settings",
])
def test_every_page_fits_a_phone(browser, live_server, investigator_state, path):
    page = phone_page(browser, storage_state=investigator_state)
    try:
        if path in ("conversation", "message"):
            page.goto(live_server.url + "/search?q=whitewash")
            link = ".msg.hit a.open" if path == "conversation" else ".msg.hit a[href^='/m/']"
            path = page.locator(link).first.get_attribute("href")
        page.goto(live_server.url + path)
        assert_fits(page, path)
        if path.startswith("/c/"):  # the Tag / Untag forms wrap under their message instead of running off
            tag_form = page.locator(".msg .tag-form").first.bounding_box()
            assert tag_form and tag_form["x"] + tag_form["width"] <= PHONE["width"]
        assert page.errors == []
    finally:
        page.context.close()


@pytest.mark.browser
def test_admin_pages_with_data_fit_a_phone(browser, private_app):
    """A long saved-search name, a review set and the admin's tag forms, at 390 px: the tables scroll in their
    own box, the page does not. The review buttons' key labels are readable."""
    with LiveServer(private_app) as server:
        page = browser_login(new_page(browser), server, role="admin")
        try:
            page.goto(server.url + "/search?q=whitewash")
            page.locator(".save-search summary").click()
            page.fill("#save-name", "a saved search named with_one_very_long_word_" + "x" * 60)
            page.get_by_role("button", name="Save search").click()
            page.wait_for_url("**/saved?saved=*")
            page.goto(server.url + "/sets")
            page.fill(".new-set input[name=name]", "phone pass")
            page.fill(".new-set input[name=q]", "whitewash")
            page.get_by_role("button", name="Make review set").click()
            page.wait_for_selector("#progress")
            walk = page.url.removeprefix(server.url)
            page.set_viewport_size(PHONE)
            for path in ("/saved", "/sets", walk, "/tags", "/tag-bulk?q=whitewash", "/search?q=whitewash"):
                page.goto(server.url + path)
                assert_fits(page, path)
            page.goto(server.url + "/saved")
            scroller = page.locator(".table-scroll").first
            assert scroller.evaluate("e => getComputedStyle(e).overflowX") == "auto"
            page.goto(server.url + walk)
            for kbd in page.locator(".review-buttons button kbd").all():
                fore, back = colours(kbd)
                assert contrast(fore, back) >= 4.5, (kbd.inner_text(), fore, back)
            assert page.errors == []
        finally:
            page.context.close()


@pytest.mark.browser
def test_hostile_long_names_fit_a_phone(browser, hostile_server):
    page = browser_login(phone_page(browser), hostile_server)
    try:
        for path in ("/search?q=whitewash&context=10", "/conversations"):
            page.goto(hostile_server.url + path)
            assert_fits(page, path)
        page.goto(hostile_server.url + "/search?q=whitewash")
        conversation = page.locator(".msg.hit a.open").first.get_attribute("href")
        page.goto(hostile_server.url + conversation)
        assert_fits(page, conversation)
    finally:
        page.context.close()


@pytest.mark.browser
def test_the_audit_trail_fits_a_phone(browser, live_server):
    page = browser_login(phone_page(browser), live_server, role="auditor")
    try:
        page.goto(live_server.url + "/audit")
        assert page.locator("table.audit").count() == 1
        assert_fits(page, "/audit")
    finally:
        page.context.close()


# -------------------------------------------------------------------------------------------- desktop


@pytest.mark.browser
def test_the_desktop_header_keeps_one_row(signed_in_page, live_server):
    page = signed_in_page  # 1366 px wide
    page.goto(live_server.url + "/search?q=whitewash")
    brand = page.locator(".site-header .brand").bounding_box()
    logout = page.get_by_role("button", name="Log out").bounding_box()
    links = [link.bounding_box() for link in page.locator(".site-header nav a").all()]
    middles = {round(box["y"] + box["height"] / 2) for box in [brand, logout, *links]}
    assert max(middles) - min(middles) <= 4  # all on one line
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.browser
def test_hit_numbers_are_readable(signed_in_page, live_server):
    page = signed_in_page
    page.goto(live_server.url + "/search?q=whitewash")
    fore, back = colours(page.locator(".hit-number").first)
    assert contrast(fore, back) >= 4.5, (fore, back)


# ------------------------------------------------------------------------------------------- timeline


def test_contrast_helper():
    assert contrast("rgb(255, 255, 255)", "rgb(0, 0, 0)") == pytest.approx(21)
    assert contrast("rgb(255, 255, 255)", "rgb(183, 121, 31)") < 4.5  # the old hit number (#b7791f)


def test_timeline_bars_say_1_hit_and_2_hits():
    buckets = facets.timeline(Counter({date(2024, 1, 1): 1, date(2024, 1, 2): 2}), "day")
    drawn = chart(buckets)
    assert [bar.description for bar in drawn.bars] == ["2024-01-01: 1 hit", "2024-01-02: 2 hits"]


def test_timeline_page_says_1_hit(client):
    html = client.get("/search?q=whitewash").get_data(as_text=True)
    assert 'aria-label="2024-09-18: 1 hit"' in html and "1 hits" not in html
    assert "<title>2024-09-18: 1 hit</title>" in html


@pytest.mark.parametrize("days", [2, 9, 31, 40, 365])
def test_timeline_end_labels_stay_inside_the_chart(days):
    start = date(2024, 1, 1)
    counts = Counter({date.fromordinal(start.toordinal() + n): 1 + n % 3 for n in range(days)})
    drawn = chart(facets.timeline(counts, "day"))
    assert drawn.labels and drawn.labels[0].text == "2024-01-01"
    for label in drawn.labels:
        width = len(label.text) * CHAR_WIDTH
        left = {"start": label.x, "middle": label.x - width / 2, "end": label.x - width}[label.anchor]
        assert left >= 0 and left + width <= drawn.width, label
    if days >= 31:  # many thin bars: the first label starts at the left edge instead of being cut in half
        assert (drawn.labels[0].x, drawn.labels[0].anchor) == (0, "start")


def test_timeline_last_label_at_the_right_edge_ends_there():
    buckets = facets.timeline(Counter({date(2024, 1, 1): 1, date(2024, 1, 31): 1}), "day")
    drawn = chart(buckets[:25])  # 25 days, labels every 5th: the last one (day 21) is well inside
    assert drawn.labels[-1].anchor == "middle"
    drawn = chart(buckets[:31])  # 31 days, labels every 6th: the last one is day 31, under the last bar
    assert drawn.labels[-1].text == "2024-01-31"
    assert (drawn.labels[-1].x, drawn.labels[-1].anchor) == (drawn.width, "end")
