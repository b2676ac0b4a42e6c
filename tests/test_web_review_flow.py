"""The review workflow's rough edges: Previous / Next through a review set, the message a bulk change
leaves on the page it lands on, an unknown tag answered beside the form, the empty term report's JSON
twin, and who is refused bulk tagging (403, not 400)."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest

from tests.conftest import ROOT, Logins, with_csrf

STATIC = ROOT / "templates" / "static"
NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.S)


@pytest.fixture
def logins(private_app: Any) -> Logins:
    return Logins(private_app)


def whitewash_ids(client: Any) -> list[str]:
    return [h["message"]["id"] for h in client.get("/search.json?q=whitewash&per_page=200").get_json()["hits"]]


def notices(client: Any, url: str) -> list[str]:
    return [htmllib.unescape(text) for text in NOTICE.findall(client.get(url).get_data(as_text=True))]


def bulk(client: Any, expected: int, **fields: str) -> Any:
    return client.post("/tag-bulk", data=with_csrf(client, q="whitewash", context="0", expected=str(expected),
                                                   **fields))


# ------------------------------------------------------------------------------ Previous / Next in a set


def nav_links(page: str) -> dict[str, str]:
    """rel -> href of the walk page's Previous / Next links."""
    nav = re.search(r'<nav class="pagination walk-nav"[^>]*>(.*?)</nav>', page, re.S)
    if nav is None:
        return {}
    links = re.findall(r'<a href="([^"]+)" rel="(prev|next)"', nav.group(1))
    return {rel: htmllib.unescape(href) for href, rel in links}


def test_walk_page_links_to_the_previous_and_next_item(logins):
    client = logins.client("investigator")
    total = len(whitewash_ids(client))
    assert total >= 3
    url = client.post("/sets", data=with_csrf(client, name="prev-next", q="whitewash", context="0")).headers["Location"]
    first = client.get(url).get_data(as_text=True)
    assert "Item 1 of" in first and nav_links(first) == {"next": f"{url}?pos=2"}  # nothing before item 1
    middle = client.get(f"{url}?pos=2").get_data(as_text=True)
    assert "Item 2 of" in middle and nav_links(middle) == {"prev": f"{url}?pos=1", "next": f"{url}?pos=3"}
    last = client.get(f"{url}?pos={total}").get_data(as_text=True)
    assert f"Item {total} of {total}" in last and nav_links(last) == {"prev": f"{url}?pos={total - 1}"}
    twin = client.get(f"{url}.json?pos=2").get_json()
    assert (twin["previous"], twin["next"]) == (1, 3)
    # the links lead where they say: item 1's tags, reviewed on the way, show when going back
    tag = twin["choices"][0]["name"]
    assert client.post(f"{url}/items/1", data=with_csrf(client, tag=tag)).headers["Location"] == f"{url}?pos=2"
    back = client.get(nav_links(client.get(f"{url}?pos=2").get_data(as_text=True))["prev"]).get_data(as_text=True)
    assert "Item 1 of" in back and "reviewed by test-investigator" in back
    assert client.get(url + ".json?pos=1").get_json()["tags"][0]["name"] == tag
    # the key hint is there, for auditors too (they walk, they do not tag)
    auditor = logins.client("auditor").get(f"{url}?pos=2").get_data(as_text=True)
    assert nav_links(auditor) == {"prev": f"{url}?pos=1", "next": f"{url}?pos=3"}
    assert "<kbd>j</kbd> / <kbd>k</kbd>" in auditor


def test_a_finished_set_links_back_to_its_last_item(logins):
    client = logins.client("investigator")
    total = len(whitewash_ids(client))
    url = client.post("/sets", data=with_csrf(client, name="finish", q="whitewash", context="0")).headers["Location"]
    for position in range(1, total + 1):
        client.post(f"{url}/items/{position}", data=with_csrf(client, tag=""))
    done = client.get(url).get_data(as_text=True)
    assert "Every item of this set is reviewed." in done and f"Reviewed {total} of {total}" in done
    assert nav_links(done) == {"prev": f"{url}?pos={total}"}
    twin = client.get(url + ".json").get_json()
    assert twin["item"] is None and (twin["previous"], twin["next"]) == (total, None)


def test_walk_page_loads_its_keys_from_files_only(logins):
    client = logins.client("investigator")
    url = client.post("/sets", data=with_csrf(client, name="csp", q="whitewash", context="0")).headers["Location"]
    response = client.get(url)
    page = response.get_data(as_text=True)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert sorted(re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts) == [
        "/static/app.js", "/static/review.js"]
    assert all(body.strip() == "" for _, body in scripts)  # no inline script
    review_js, app_js = ((STATIC / name).read_text(encoding="utf-8") for name in ("review.js", "app.js"))
    assert "window.discovery.typing = typing" in app_js and "function typing" not in review_js  # one definition
    assert "a[data-walk='" in review_js and 'data-walk="next"' in page


# ------------------------------------------------------------------------------------- bulk outcome


def test_bulk_tagging_says_how_many_were_tagged_once(logins):
    client = logins.client("investigator")
    ids = whitewash_ids(client)
    total = len(ids)
    client.post(f"/m/{ids[0]}/tags", data=with_csrf(client, tag="responsive"))  # one already carries it
    done = bulk(client, total, tag="responsive", next="/search?q=whitewash")
    assert done.status_code == 302 and done.headers["Location"] == "/search?q=whitewash"
    assert notices(client, "/search?q=whitewash") == [
        f"Tagged {total - 1} messages as “responsive”; 1 already had it."]
    assert notices(client, "/search?q=whitewash") == []  # shown once
    tagged = client.get('/search.json?q=tag:"responsive"').get_json()["total"]
    assert tagged == total  # the count said is what the library did

    removed = bulk(client, total, tag="responsive", action="remove")
    assert removed.status_code == 302 and removed.headers["Location"].startswith("/search?q=whitewash")
    assert notices(client, removed.headers["Location"]) == [f"Removed the tag “responsive” from {total} messages."]
    assert client.get('/search.json?q=tag:"responsive"').get_json()["total"] == 0


def test_the_json_twin_and_a_refused_change_leave_no_message(logins):
    client = logins.client("investigator")
    total = len(whitewash_ids(client))
    answer = client.post("/tag-bulk.json", data=with_csrf(client, q="whitewash", context="0", tag="hot",
                                                          expected=str(total))).get_json()
    assert answer["changed"] == total
    assert bulk(client, total + 1, tag="privileged").status_code == 409
    assert notices(client, "/search?q=whitewash") == []


def test_the_message_is_text_not_markup(logins):
    admin = logins.client("admin")
    name = "<b>bold</b> & co"
    assert admin.post("/tags", data=with_csrf(admin, name=name, colour="#123456")).status_code == 302
    total = len(whitewash_ids(admin))
    bulk(admin, total, tag=name)
    page = admin.get("/search?q=whitewash").get_data(as_text=True)
    assert (f'<p class="notice" role="status">Tagged {total} messages as “&lt;b&gt;bold&lt;/b&gt; &amp; co”.</p>'
            in page)


def test_the_message_comes_from_the_session_not_the_url(logins):
    client = logins.client("investigator")
    page = client.get("/search?q=whitewash&notice=Tagged+999+messages&_flashes=x").get_data(as_text=True)
    assert NOTICE.search(page) is None


# --------------------------------------------------------------------------------- unknown tag


def test_an_unknown_tag_is_answered_beside_a_form_keeping_the_search(logins):
    client = logins.client("investigator")
    sender = client.get("/search.json?q=whitewash").get_json()["hits"][0]["message"]["sender_id"]
    response = client.get(f"/tag-bulk?q=whitewash&sender={sender}&context=2&tag=respnsive"
                          "&next=%2Fsearch%3Fq%3Dwhitewash%26sender%3D" + sender)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "There is no tag “respnsive” in this case" in page and 'class="error-box" role="alert"' in page
    form = re.search(r'<form class="bulk-tag" method="get" action="/tag-bulk">(.*?)</form>', page, re.S)
    assert form, "no form to choose the tag again"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1)))
    assert fields == {"q": "whitewash", "sender": sender, "context": "2",
                      "next": f"/search?q=whitewash&amp;sender={sender}"}
    options = re.findall(r'<option value="([^"]+)">', form.group(1))
    assert options == ["responsive", "not responsive", "privileged", "hot", "needs second look"]
    assert 'name="expected"' not in page  # nothing to confirm yet
    # choosing a listed tag in that form gives the confirmation with the filtered count
    filtered = client.get(f"/search.json?q=whitewash&sender={sender}").get_json()["total"]
    chosen = client.get(f"/tag-bulk?q=whitewash&sender={sender}&context=0&tag=responsive")
    assert chosen.status_code == 200 and f'<strong id="bulk-count">{filtered}</strong>' in chosen.get_data(as_text=True)
    twin = client.get("/tag-bulk.json?q=whitewash&tag=respnsive")
    assert twin.status_code == 400 and "no tag 'respnsive'" in twin.get_json()["error"]


def test_no_tag_asks_for_one_without_an_error(logins):
    client = logins.client("investigator")
    response = client.get("/tag-bulk?q=whitewash&action=remove")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Choose the tag to remove" in page and "error-box" not in page
    assert '<input type="hidden" name="action" value="remove">' in page
    assert client.get("/tag-bulk.json?q=whitewash").status_code == 400  # the API still needs the tag


# ----------------------------------------------------------------------------------- who may


def test_admins_may_bulk_tag_and_auditors_get_a_403(logins):
    admin = logins.client("admin")
    assert admin.get("/tag-bulk?q=whitewash").status_code == 200  # the crawl's 400: no tag was given
    total = len(whitewash_ids(admin))
    confirm = admin.get("/tag-bulk?q=whitewash&tag=hot&context=0")
    assert confirm.status_code == 200 and f'<strong id="bulk-count">{total}</strong>' in confirm.get_data(as_text=True)
    auditor = logins.client("auditor")
    for url in ("/tag-bulk?q=whitewash", "/tag-bulk?q=whitewash&tag=hot", "/tag-bulk"):
        refused = auditor.get(url)
        assert refused.status_code == 403 and "Your role (auditor) may not use this page." in refused.get_data(
            as_text=True)
    twin = auditor.get("/tag-bulk.json?q=whitewash&tag=nosuch")
    assert twin.status_code == 403 and twin.get_json()["error"] == "Your role (auditor) may not use this page."


# ------------------------------------------------------------------------------ empty term report


def test_the_empty_term_report_twin_is_the_empty_report_and_the_hint(client):
    page = client.get("/terms")
    answer = client.get("/terms.json")
    assert page.status_code == answer.status_code == 200
    data = answer.get_json()
    assert data["terms"] == [] and data["total"] == {"messages": 0, "with_context": 0, "conversations": 0}
    help_text = re.search(r'<p id="terms-help" class="help">(.*?)</p>', page.get_data(as_text=True), re.S).group(1)
    shown = " ".join(re.sub(r"<[^>]+>", "", help_text).split())
    assert shown == "Each line is a full query (word*, quoted phrases, AND, OR, NOT, fields). Blank lines are skipped."
    assert data["hint"].endswith(shown) and "one query per line" in data["hint"]
    blank = client.get("/terms.json?terms=%0A%20%0A")  # blank lines only: the same
    assert blank.status_code == 200 and blank.get_json() == data
