"""The review pages: tag one message, bulk-tag with a confirmed count (409 when it changed), who may."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Logins, with_csrf


@pytest.fixture
def logins(private_app: Any) -> Logins:
    return Logins(private_app)


def first_hit(client: Any, q: str = "whitewash") -> str:
    return client.get(f"/search.json?q={q}").get_json()["hits"][0]["message"]["id"]


def test_tag_one_message_and_take_it_off(logins):
    client = logins.client("investigator")
    mid = first_hit(client)
    response = client.post(f"/m/{mid}/tags", data=with_csrf(client, tag="responsive", next="/search?q=whitewash"))
    assert response.status_code == 302 and response.headers["Location"] == "/search?q=whitewash"
    tags = client.post(f"/m/{mid}/tags.json", data=with_csrf(client, tag="responsive")).get_json()["tags"]
    assert [t["name"] for t in tags] == ["responsive"] and tags[0]["added_by"] == "test-investigator"
    gone = client.post(f"/m/{mid}/tags.json", data=with_csrf(client, tag="responsive", action="remove")).get_json()
    assert gone["tags"] == [] and gone["change"]["changed_count"] == 1


def test_unknown_tag_is_a_clear_400(logins):
    client = logins.client("investigator")
    response = client.post(f"/m/{first_hit(client)}/tags.json", data=with_csrf(client, tag="no-such-tag"))
    assert response.status_code == 400 and "no-such-tag" in response.get_json()["error"]


def test_bulk_tag_states_the_count_then_applies_it(logins):
    client = logins.client("investigator")
    total = client.get("/search.json?q=whitewash").get_json()["total"]
    assert total > 1
    page = client.get("/tag-bulk?q=whitewash&context=0&tag=privileged")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f'<strong id="bulk-count">{total}</strong>' in html
    assert f'name="expected" value="{total}"' in html
    count = client.get("/tag-bulk.json?q=whitewash&context=0&tag=privileged").get_json()["count"]
    assert count == {"hits": total, "context": 0, "messages": total}
    done = client.post("/tag-bulk.json", data=with_csrf(client, q="whitewash", context="0", tag="privileged",
                                                        expected=str(total))).get_json()
    assert done["changed"] == total and done["batch"]
    again = client.post("/tag-bulk", data=with_csrf(client, q="whitewash", context="0", tag="privileged",
                                                    expected=str(total)))
    assert again.status_code == 302 and "/search?" in again.headers["Location"]


def test_bulk_tag_refuses_a_changed_count_with_409(logins):
    client = logins.client("investigator")
    total = client.get("/search.json?q=whitewash").get_json()["total"]
    response = client.post("/tag-bulk", data=with_csrf(client, q="whitewash", context="0", tag="privileged",
                                                       expected=str(total + 1)))
    assert response.status_code == 409
    assert f"now finds {total} messages, not the {total + 1}" in response.get_data(as_text=True)
    assert client.post("/tag-bulk.json", data=with_csrf(client, q="whitewash", context="0", tag="privileged",
                                                         expected=str(total + 1))).status_code == 409
    mid = first_hit(client)
    assert client.post(f"/m/{mid}/tags.json", data=with_csrf(client, tag="privileged", action="remove")
                       ).get_json()["change"]["changed_count"] == 0  # nothing was tagged


def test_auditor_may_not_tag(logins):
    client = logins.client("auditor")
    mid = first_hit(client)
    assert client.post(f"/m/{mid}/tags", data=with_csrf(client, tag="responsive")).status_code == 403
    assert client.get("/tag-bulk?q=whitewash&tag=responsive").status_code == 403
    assert client.post("/tag-bulk", data=with_csrf(client, q="whitewash", tag="responsive",
                                                   expected="1")).status_code == 403
    assert "Tag all" not in client.get("/search?q=whitewash").get_data(as_text=True)


def test_posts_without_csrf_are_refused(logins):
    client = logins.client("investigator")
    mid = first_hit(client)
    assert client.post(f"/m/{mid}/tags", data={"tag": "responsive"}).status_code in (400, 403)
    assert client.post("/tag-bulk", data={"q": "whitewash", "tag": "responsive", "expected": "1"}
                       ).status_code in (400, 403)
    tags = client.post(f"/m/{mid}/tags.json", data=with_csrf(client, tag="responsive", action="remove")).get_json()
    assert tags["change"]["changed_count"] == 0


def test_search_page_links_to_bulk_tagging(logins):
    html = logins.client("investigator").get("/search?q=whitewash").get_data(as_text=True)
    assert "Tag all" in html and 'action="/tag-bulk"' in html


def test_each_hit_shows_its_tags_and_a_tag_form(logins):
    client = logins.client("investigator")
    mid = first_hit(client)
    client.post(f"/m/{mid}/tags", data=with_csrf(client, tag="responsive"))
    html = client.get("/search?q=whitewash").get_data(as_text=True)
    assert f'action="/m/{mid}/tags"' in html and 'name="next" value="/search?q=whitewash"' in html
    chip = re.search(r'<span class="tag" title="tagged by test-investigator"><svg class="swatch"[^>]*>'
                     r'<circle [^>]*fill="(#[0-9a-f]{6})"></circle></svg>responsive</span>', html)
    assert chip and chip.group(1) == "#2e7d32"  # the default colour of "responsive"
    auditor = logins.client("auditor").get("/search?q=whitewash").get_data(as_text=True)
    assert "</svg>responsive</span>" in auditor and "tag-form" not in auditor


def test_walk_a_review_set(logins):
    client = logins.client("investigator")
    total = client.get("/search.json?q=whitewash").get_json()["total"]
    made = client.post("/sets", data=with_csrf(client, name="whitewash pass", q="whitewash", context="0"))
    assert made.status_code == 302
    url = made.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    assert f"Reviewed 0 of {total}" in page and 'data-key="1"' in page and "Item 1 of" in page
    first = client.get(url + ".json").get_json()
    assert first["progress"]["reviewed"] == 0 and first["item"]["position"] == 1
    tag1 = first["choices"][0]["name"]
    step = client.post(f"{url}/items/1", data=with_csrf(client, tag=tag1))
    assert step.status_code == 302 and step.headers["Location"].endswith("pos=2")
    after = client.get(url + ".json").get_json()
    assert after["progress"]["reviewed"] == 1 and after["item"]["position"] == 2
    assert [t["name"] for t in client.get(url + ".json?pos=1").get_json()["tags"]] == [tag1]
    assert f"Reviewed 1 of {total}" in client.get(url).get_data(as_text=True)
    assert client.get("/sets.json").get_json()["sets"][0]["reviewed"] == 1
    auditor = logins.client("auditor")
    assert auditor.get(url).status_code == 200 and 'data-key="1"' not in auditor.get(url).get_data(as_text=True)
    assert auditor.post(f"{url}/items/2", data=with_csrf(auditor, tag=tag1)).status_code == 403
    assert auditor.post("/sets", data=with_csrf(auditor, name="x", q="whitewash")).status_code == 403
    assert client.get("/sets/99").status_code == 404


def test_a_set_of_nothing_is_a_clear_400(logins):
    client = logins.client("investigator")
    response = client.post("/sets.json", data=with_csrf(client, name="empty", q="zzzznothingmatches"))
    assert response.status_code == 400 and "finds no messages" in response.get_json()["error"]
