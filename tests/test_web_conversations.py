"""Conversation list and transcript view (paged, opened at a message), with their JSON twins."""

from __future__ import annotations

import pytest

ATLAS = "oc_63608005d31756c05765d230523d14c5"
DM = "oc_49d253a07242793cd85b567a8218aac4"
FINANCE = "oc_fe9668390e2d13938ff2a3142b546d02"  # where the merged-forward bundle was posted
FORWARDED_FROM = "oc_2fc9f3340f494a4f4601160a4f219080"  # the chat the bundle's messages came from


def first_hit(client, query="whitewash"):
    return client.get("/search.json", query_string={"q": query, "sort": "time_asc"}).get_json()["hits"][0]["message"]


def test_conversation_list_and_twin(client):
    html = client.get("/conversations").get_data(as_text=True)
    assert "Atlas 产品组 / Atlas Product Team" in html
    assert f">{FORWARDED_FROM}</a>" not in html  # an unnamed conversation is named by its members
    assert "Unnamed conversation: " in html
    data = client.get("/conversations.json").get_json()
    rows = {row["id"]: row for row in data["conversations"]}
    assert rows[ATLAS]["messages"] > 0 and rows[ATLAS]["type"] == "group"


def test_transcript_opens_at_a_message_highlighted(client):
    hit = first_hit(client)
    response = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'class="msg anchor" id="msg-{hit["id"]}"' in html
    assert 'aria-current="true"' in html
    assert "Details and source" in html and hit["source"]["sha256"] in html


def test_transcript_json_twin(client):
    hit = first_hit(client)
    data = client.get(f"/c/{hit['conversation_id']}.json?at={hit['id']}").get_json()
    assert data["anchor"] == hit["id"]
    assert hit["id"] in [m["id"] for m in data["messages"]]
    assert data["conversation"]["id"] == hit["conversation_id"]
    same = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}", headers={"Accept": "application/json"})
    assert same.get_json() == data


def test_transcript_is_paged_not_loaded_whole(client):
    data = client.get(f"/c/{ATLAS}.json?size=5").get_json()
    assert len(data["messages"]) == 5
    assert data["has_later"] and not data["has_earlier"]
    later = client.get(f"/c/{ATLAS}.json?size=5&after={data['messages'][-1]['id']}").get_json()
    assert len(later["messages"]) == 5 and later["has_earlier"]
    assert not {m["id"] for m in later["messages"]} & {m["id"] for m in data["messages"]}
    times = [m["sent_at"] for m in data["messages"] + later["messages"]]
    assert times == sorted(times)
    earlier = client.get(f"/c/{ATLAS}.json?size=5&before={later['messages'][0]['id']}").get_json()
    assert [m["id"] for m in earlier["messages"]] == [m["id"] for m in data["messages"]]


def test_load_more_links_and_partial(client):
    hit = first_hit(client)
    html = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}&size=3").get_data(as_text=True)
    assert 'data-load="earlier"' in html or 'data-load="later"' in html
    page = client.get(f"/c/{ATLAS}?size=3&partial=1").get_data(as_text=True)
    assert page.lstrip().startswith("<") and "<html" not in page
    assert page.count('class="msg') >= 3


def test_merged_forward_bundle_nests_under_its_carrier(client):
    data = client.get(f"/c/{FINANCE}.json").get_json()
    carriers = [m for m in data["messages"] if m.get("bundle")]
    assert carriers, "the forward message carries its bundle"
    children = carriers[0]["bundle"]
    assert any("whitewashed version" in child["text"] for child in children)
    html = client.get(f"/c/{FINANCE}").get_data(as_text=True)
    assert "Merged-forward bundle" in html


def test_opening_a_forwarded_message_goes_where_it_was_forwarded(client):
    hit = first_hit(client, '"whitewashed version"')
    assert hit["bundle_id"]
    response = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}")
    assert response.status_code == 302
    assert f"/c/{FINANCE}?at={hit['id']}" in response.headers["Location"]
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f'id="msg-{hit["id"]}"' in html and "anchor" in html
    only_bundles = client.get(f"/c/{FORWARDED_FROM}").get_data(as_text=True)
    assert "only inside merged-forward bundles" in only_bundles


def test_thread_replies_show_their_root(client):
    hit = first_hit(client, '"Refund ledger export"')
    html = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}").get_data(as_text=True)
    assert "In reply to" in html and "Audit evidence checklist" in html


@pytest.mark.parametrize("url, status", [
    ("/c/oc_nope", 404), ("/c/oc_nope.json", 404), (f"/c/{ATLAS}?at=mnope", 404),
    (f"/c/{ATLAS}.json?before=mnope", 404),
    (f"/c/{ATLAS}?size=0", 400), (f"/c/{ATLAS}?size=x", 400), (f"/c/{ATLAS}?size=100000", 400),
    (f"/c/{ATLAS}.json?at=m1&before=m2", 400),
])
def test_bad_conversation_requests(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    if url.split("?")[0].endswith(".json"):
        assert response.get_json()["error"]


def test_message_of_another_conversation_is_not_found_here(client):
    hit = first_hit(client)
    other = DM if hit["conversation_id"] != DM else ATLAS
    assert client.get(f"/c/{other}?before={hit['id']}").status_code == 404


def test_the_search_that_led_here_is_highlighted_in_the_transcript(client):
    hit = first_hit(client)
    html = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}&q=whitewash").get_data(as_text=True)
    assert "<mark>whitewash</mark>" in html.lower()
    assert 'q=whitewash' in html  # kept on the load earlier/later links
    plain = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}").get_data(as_text=True)
    assert "<mark>" not in plain
    broken = client.get(f"/c/{hit['conversation_id']}?at={hit['id']}&q=(whitewash")
    assert broken.status_code == 200 and "<mark>" not in broken.get_data(as_text=True)
