"""The message detail page: provenance, raw source record, ids, context; and its JSON twin."""

from __future__ import annotations

import json

from discovery.case import Case
from discovery.search import show


def a_hit(client):
    return client.get("/search.json?q=whitewash&sort=time_asc").get_json()["hits"][0]["message"]


def test_detail_page_shows_provenance_and_raw_record(client):
    hit = a_hit(client)
    response = client.get(f"/m/{hit['id']}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for value in (hit["id"], hit["native_id"], hit["source"]["sha256"], hit["source"]["locator"], hit["sent_at_raw"]):
        assert value in html
    assert "Raw source record" in html
    assert json.loads(hit["raw"])["message_id"] in html
    assert 'class="msg hit"' in html and 'class="msg context"' in html


def test_detail_json_twin_matches_discovery_show(client, demo_case_dir):
    hit = a_hit(client)
    data = client.get(f"/m/{hit['id']}.json?context=2").get_json()
    case = Case(demo_case_dir)
    try:
        expected = show(case, hit["id"], 2)
    finally:
        case.close()
    assert data["message"] == expected["message"]
    assert data["context"] == expected["context"]
    assert {"related", "carried_in"} <= data.keys()
    accept = client.get(f"/m/{hit['id']}?context=2", headers={"Accept": "application/json"}).get_json()
    assert accept == data


def test_unknown_message_is_404_and_bad_context_400(client):
    assert client.get("/m/mnope").status_code == 404
    missing = client.get("/m/mnope.json")
    assert missing.status_code == 404 and "mnope" in missing.get_json()["error"]
    hit = a_hit(client)
    bad = client.get(f"/m/{hit['id']}.json?context=lots")
    assert bad.status_code == 400 and bad.get_json()["param"] == "context"


def test_forwarded_message_names_its_carrier(client):
    hit = client.get('/search.json?q="whitewashed version"').get_json()["hits"][0]["message"]
    data = client.get(f"/m/{hit['id']}.json").get_json()
    assert data["carried_in"]
    assert data["related"][hit["id"]]["bundle"]["found"] is True
    html = client.get(f"/m/{hit['id']}").get_data(as_text=True)
    assert "Forwarded inside a merged bundle" in html
