"""Saved searches on the web: save from the search form, list with counts then and now, rerun, share, delete.

Every test writes, so each works on a private copy of the demo case (``private_app``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

from discovery import audit, review, users
from discovery.case import Case
from discovery.ingest import ingest
from discovery.query.parser import parse
from discovery.web import zones
from discovery.web.params import SearchParams
from discovery.web.saved import filter_texts
from tests.conftest import Logins, with_csrf
from tests.lark_factory import message, write_directory, write_jsonl

OTHER = ("second-investigator", "second-password-123")


@pytest.fixture
def logins(private_app: Any) -> Logins:
    return Logins(private_app)


@pytest.fixture
def case_dir(private_app: Any, tmp_path: Path) -> Path:
    """The private case's folder (private_app copies the demo case to tmp_path/case)."""
    return tmp_path / "case"


def save(client: Any, name: str, **fields: Any) -> Any:
    return client.post("/saved", data=with_csrf(client, name=name, **{"q": "whitewash", **fields}))


def listed(client: Any) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in client.get("/saved.json").get_json()["saved"]}


def add_whitewash(case_dir: Path, folder: Path, count: int = 2) -> None:
    """Ingest COUNT new 'whitewash' messages into the case (what a later ingest adds)."""
    folder.mkdir()
    write_directory(folder, {"oc_late": "Late chat"}, {"ou_alice": "Alice Chen"})
    write_jsonl(folder / "messages.jsonl",
                [message(n, f"late whitewash number {n}", chat="oc_late") for n in range(1, count + 1)])
    case = Case(case_dir)
    try:
        ingest(case, [str(folder)], copy_originals=False)
    finally:
        case.close()


def entries(case_dir: Path, action: str) -> list[dict[str, Any]]:
    case = Case(case_dir)
    try:
        return audit.entries(case, action=action)
    finally:
        case.close()


# ---------------------------------------------------------------------------------------------- save and list


def test_save_from_the_search_form_then_see_it_listed(logins, case_dir):
    client = logins.client("investigator")
    total = client.get("/search.json?q=whitewash&context=2&sort=time_asc").get_json()["total"]
    response = save(client, "cover-up", context="2", sort="time_asc")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/saved?saved=")
    row = listed(client)["cover-up"]
    assert (row["query"], row["context"], row["sort"], row["owner"], row["shared"]) == (
        "whitewash", 2, "time_asc", "test-investigator", False)
    assert row["hits_at_save"] == row["hits_now"] == total > 0
    assert (row["new_since_saved"], row["new_since_last_run"], row["last_run_at"]) == (0, None, None)
    page = client.get(location).get_data(as_text=True)
    assert "Saved “cover-up”" in page and 'id="saved-notice"' in page
    added = entries(case_dir, "saved_add")[-1]
    assert (added["actor"], added["address"], added["details"]["name"]) == ("test-investigator", "127.0.0.1",
                                                                           "cover-up")


def test_the_search_page_offers_the_save_form_to_savers_only(logins):
    html = logins.client("investigator").get("/search?q=whitewash&context=1&sort=time_desc&edited=1").get_data(
        as_text=True)
    assert 'action="/saved"' in html and 'name="sort" value="time_desc"' in html
    assert 'name="edited" value="1"' in html and 'name="context" value="1"' in html
    auditor = logins.client("auditor").get("/search?q=whitewash").get_data(as_text=True)
    assert 'action="/saved"' not in auditor
    nav = logins.client("auditor").get("/saved").get_data(as_text=True)
    assert 'href="/saved"' in nav and "No saved searches yet." in nav


def test_counts_then_and_now_after_a_new_ingest(logins, case_dir, tmp_path):
    client = logins.client("investigator")
    save(client, "late additions")
    then = listed(client)["late additions"]["hits_at_save"]
    add_whitewash(case_dir, tmp_path / "late")
    row = listed(client)["late additions"]
    assert (row["hits_at_save"], row["hits_now"], row["new_since_saved"]) == (then, then + 2, 2)
    html = client.get("/saved").get_data(as_text=True)
    assert "+2</span>" in html and "since saved" in html
    ran = client.post(f"/saved/{row['id']}/run.json", data=with_csrf(client)).get_json()
    assert (ran["hits_then"], ran["hits_now"], ran["new_since_saved"]) == (then, then + 2, 2)
    row = listed(client)["late additions"]
    assert (row["last_run_hits"], row["last_run_by"], row["new_since_last_run"]) == (then + 2, "test-investigator", 0)


def test_rerun_opens_the_search_with_its_filters_context_and_sort(logins, case_dir):
    client = logins.client("investigator")
    hit = client.get("/search.json?q=whitewash").get_json()["hits"][0]["message"]
    form = {"context": "1", "sort": "time_desc", "sender": hit["sender_id"], "from": "2020-01-01"}
    search = client.get("/search.json", query_string={"q": "whitewash", **form}).get_json()
    saved_id = int(save(client, "one sender", **form).headers["Location"].split("saved=")[1].split("#")[0])
    response = client.post(f"/saved/{saved_id}/run", data=with_csrf(client))
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/search"
    assert {k: v[0] for k, v in parse_qs(target.query).items()} == {"q": "whitewash", **form}
    again = client.get(f"{target.path}.json?{target.query}").get_json()
    assert again["total"] == search["total"] == listed(client)["one sender"]["hits_at_save"]
    assert [h["message"]["id"] for h in again["hits"]] == [h["message"]["id"] for h in search["hits"]]
    run = entries(case_dir, "saved_run")[-1]
    assert (run["actor"], run["details"]["saved"]) == ("test-investigator", saved_id)


def test_a_search_saved_by_the_cli_reruns_with_its_filters_in_the_query(logins, case_dir):
    case = Case(case_dir)
    try:
        saved = review.save_search(case, "cli one", "whitewash", filters=["date:2020.."], shared=True, actor="cli:x")
    finally:
        case.close()
    auditor = logins.client("auditor")
    response = auditor.post(f"/saved/{saved.id}/run", data=with_csrf(auditor))
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["q"] == ["(whitewash) AND (date:2020..)"]


# ---------------------------------------------------------------------------------------------- who may


def test_share_makes_it_visible_and_unshare_hides_it(logins):
    owner, auditor, admin = logins.client("investigator"), logins.client("auditor"), logins.client("admin")
    save(owner, "private one")
    saved_id = listed(owner)["private one"]["id"]
    assert "private one" not in listed(auditor) and "private one" not in listed(admin)
    response = owner.post(f"/saved/{saved_id}/share", data=with_csrf(owner, shared="1"))
    assert response.status_code == 302 and response.headers["Location"] == f"/saved#saved-{saved_id}"
    seen = listed(auditor)["private one"]
    assert seen["shared"] and not seen["mine"] and not seen["can_change"]
    assert auditor.post(f"/saved/{saved_id}/run", data=with_csrf(auditor)).status_code == 302  # auditors rerun
    assert owner.post(f"/saved/{saved_id}/share.json", data=with_csrf(owner, shared="0")).get_json()["shared"] is False
    assert "private one" not in listed(auditor)
    hidden = auditor.post(f"/saved/{saved_id}/run", data=with_csrf(auditor))
    assert hidden.status_code == 404  # not shared any more: not even said to exist


def test_only_the_owner_or_an_admin_changes_or_deletes(logins, private_app, case_dir):
    case = Case(case_dir)
    try:
        users.add(case, OTHER[0], "investigator", OTHER[1])
    finally:
        case.close()
    owner, admin, auditor = logins.client("investigator"), logins.client("admin"), logins.client("auditor")
    save(owner, "shared one", shared="1")
    save(owner, "mine to delete")
    shared_id, own_id = listed(owner)["shared one"]["id"], listed(owner)["mine to delete"]["id"]
    other = private_app.test_client()
    from tests.conftest import login

    login(other, *OTHER)
    refused = other.post(f"/saved/{shared_id}/delete.json", data=with_csrf(other))
    assert refused.status_code == 403 and "test-investigator" in refused.get_json()["error"]
    assert other.post(f"/saved/{shared_id}/share.json", data=with_csrf(other, shared="0")).status_code == 403
    assert auditor.post(f"/saved/{shared_id}/delete", data=with_csrf(auditor)).status_code == 403
    assert "shared one" in listed(auditor)
    deleted = admin.post(f"/saved/{shared_id}/delete.json", data=with_csrf(admin)).get_json()["deleted"]
    assert deleted["name"] == "shared one" and "shared one" not in listed(owner)
    response = owner.post(f"/saved/{own_id}/delete", data=with_csrf(owner))
    assert response.status_code == 302 and response.headers["Location"] == "/saved"
    assert listed(owner) == {}
    gone = [(e["actor"], e["details"]["name"]) for e in entries(case_dir, "saved_delete")]
    assert gone == [("test-admin", "shared one"), ("test-investigator", "mine to delete")]


def test_an_auditor_cannot_save(logins):
    auditor = logins.client("auditor")
    response = save(auditor, "not allowed")
    assert response.status_code == 403 and "may not use this page" in response.get_data(as_text=True)
    assert listed(auditor) == {}


def test_without_the_csrf_token_nothing_is_saved(logins):
    client = logins.client("investigator")
    response = client.post("/saved", data={"name": "no token", "q": "whitewash"})
    assert response.status_code == 400 and listed(client) == {}


# ---------------------------------------------------------------------------------------------- answers


def test_json_twin_shape(logins):
    client = logins.client("investigator")
    created = client.post("/saved.json", data=with_csrf(client, name="twin", q="whitewash", context="0"))
    assert created.status_code == 201 and created.get_json()["name"] == "twin"
    body = client.get("/saved.json").get_json()
    assert body["user"] == "test-investigator" and len(body["saved"]) == 1
    row = body["saved"][0]
    assert set(row) >= {"id", "name", "query", "filters", "context", "sort", "view", "owner", "shared", "created_at",
                        "hits_at_save", "last_run_at", "last_run_by", "last_run_hits", "hits_now", "count_error",
                        "new_since_saved", "new_since_last_run", "mine", "can_change", "search_url"}
    assert row["search_url"] == "/search?q=whitewash&context=0&sort=relevance"
    html = client.get("/saved", headers={"Accept": "application/json"})
    assert html.is_json and html.get_json() == client.get("/saved.json").get_json()


@pytest.mark.parametrize("fields, status, words", [
    ({"name": ""}, 400, "name"),
    ({"name": "bad query", "q": "whitewash AND ("}, 400, "position"),
    ({"name": "quoted", "sender": 'say "hi"'}, 400, "double quote"),
    ({"name": "bad sort", "sort": "sideways"}, 400, "sort"),
])
def test_bad_saves_are_clear_400s(logins, fields, status, words):
    client = logins.client("investigator")
    response = client.post("/saved.json", data=with_csrf(client, **{"q": "whitewash", **fields}))
    assert response.status_code == status and words in response.get_json()["error"].lower()
    assert listed(client) == {}


def test_a_duplicate_name_and_a_missing_search(logins):
    client = logins.client("investigator")
    save(client, "twice")
    again = client.post("/saved.json", data=with_csrf(client, name="twice", q="other"))
    assert again.status_code == 400 and "already" in again.get_json()["error"]
    assert client.post("/saved/999/run.json", data=with_csrf(client)).status_code == 404
    assert client.post("/saved/999/delete", data=with_csrf(client)).status_code == 404


def test_a_hostile_name_and_query_are_escaped(logins):
    client = logins.client("investigator")
    name, query = "<script>window.__xss=1</script>", '"<img src=x onerror=alert(1)>"'
    response = save(client, name, q=query, shared="1")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)  # with the "Saved ..." notice
    assert 'id="saved-notice"' in html and " style=" not in html and "<style" not in html
    assert "<script>window" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html and "&lt;img src=x" in html
    assert listed(client)[name]["query"] == query  # the JSON keeps it verbatim


# ---------------------------------------------------------------------------------------------- units


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/New_York"])
def test_form_filters_become_query_strings_that_parse_back(zone):
    args = MultiDict({"q": "x", "from": "2024-01-01", "to": "2024-02-03", "sender": "Li Lei",
                      "custodian": "a (b)", "has_attachment": "1", "deleted": "1"})
    params = SearchParams.from_args(args)
    where = zones.zone(zone)
    assert [parse(text) for text in filter_texts(params, where)] == params.filter_nodes(where)
    open_ended = SearchParams.from_args(MultiDict({"to": "2024-02-03"}))
    assert [parse(t) for t in filter_texts(open_ended, where)] == open_ended.filter_nodes(where)
