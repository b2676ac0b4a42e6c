"""Notes beside messages, tag administration with colours, the tag facet, and bulk-tagging a filtered
search (Flask test client; the browser's side is in test_browser_review.py)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from discovery import audit, users
from discovery.case import Case
from discovery.web.review import with_clause
from tests.conftest import XSS, Logins, login, with_csrf
from tests.test_web_security import live_markup


@pytest.fixture
def logins(private_app: Any) -> Logins:
    return Logins(private_app)


def hits(client: Any, query: str = "q=whitewash") -> dict[str, Any]:
    return client.get(f"/search.json?{query}&per_page=200").get_json()


def audited(app: Any, action: str) -> list[dict[str, Any]]:
    case = Case(app.config["CASE_FOLDER"])
    try:
        return audit.entries(case, action=action)
    finally:
        case.close()


# ---------------------------------------------------------------------------------------------- notes


def test_a_note_is_added_edited_and_deleted_beside_its_message(logins, private_app):
    client = logins.client("investigator")
    hit = hits(client)["hits"][0]["message"]
    mid = hit["id"]
    back = "/search?q=whitewash"
    added = client.post(f"/m/{mid}/notes", data=with_csrf(client, text="Check with legal\nbefore Friday", next=back))
    assert added.status_code == 302 and added.headers["Location"] == back
    page = client.get(back).get_data(as_text=True)
    assert 'class="note-text">Check with legal\nbefore Friday</div>' in page
    assert '<span class="note-author">test-investigator</span>' in page
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ UTC">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [^<]+</time>', page)
    notes = hits(client)["notes"][mid]
    assert [n["text"] for n in notes] == ["Check with legal\nbefore Friday"]
    note_id = notes[0]["id"]
    for url in (f"/m/{mid}", f"/c/{hit['conversation_id']}?at={mid}"):
        assert "Check with legal" in client.get(url).get_data(as_text=True), url
    assert client.get(f"/m/{mid}.json").get_json()["notes"][mid][0]["id"] == note_id
    assert client.get(f"/c/{hit['conversation_id']}.json?at={mid}").get_json()["notes"][mid][0]["id"] == note_id

    edited = client.post(f"/notes/{note_id}.json", data=with_csrf(client, text="Legal says: hot")).get_json()
    assert edited["note"]["text"] == "Legal says: hot" and edited["note"]["revisions"] == 2
    assert "edited by test-investigator" in client.get(f"/m/{mid}").get_data(as_text=True)
    deleted = client.post(f"/notes/{note_id}/delete", data=with_csrf(client, next=f"/m/{mid}"))
    assert deleted.status_code == 302 and deleted.headers["Location"] == f"/m/{mid}"
    assert client.get(f"/m/{mid}.json").get_json()["notes"][mid] == []
    assert "Legal says" not in client.get(f"/m/{mid}").get_data(as_text=True)
    for action in ("note_add", "note_edit", "note_delete"):
        entry = audited(private_app, action)[-1]
        assert entry["actor"] == "test-investigator" and entry["address"] == "127.0.0.1", action
        assert entry["details"]["message_id"] == mid and entry["details"]["note"] == note_id


def test_the_note_query_field_finds_a_note_added_on_the_web(logins):
    client = logins.client("investigator")
    mid = hits(client)["hits"][0]["message"]["id"]
    client.post(f"/m/{mid}/notes", data=with_csrf(client, text="zebra-crossing memo"))
    found = hits(client, "q=note:zebra")
    assert [h["message"]["id"] for h in found["hits"]] == [mid]


def test_auditors_read_notes_but_may_not_write_them(logins):
    client = logins.client("investigator")
    mid = hits(client)["hits"][0]["message"]["id"]
    note = client.post(f"/m/{mid}/notes.json", data=with_csrf(client, text="seen by audit")).get_json()["note"]
    auditor = logins.client("auditor")
    page = auditor.get(f"/m/{mid}").get_data(as_text=True)
    assert "seen by audit" in page and "Add a note" not in page and "Edit or delete" not in page
    assert auditor.post(f"/m/{mid}/notes", data=with_csrf(auditor, text="x")).status_code == 403
    assert auditor.post(f"/notes/{note['id']}", data=with_csrf(auditor, text="x")).status_code == 403
    assert auditor.post(f"/notes/{note['id']}/delete", data=with_csrf(auditor)).status_code == 403
    investigator_page = client.get(f"/m/{mid}").get_data(as_text=True)
    assert "Add a note" in investigator_page and f'action="/notes/{note["id"]}/delete"' in investigator_page


OTHER = ("second-investigator", "second-password-123")


def test_only_a_notes_author_or_an_admin_edits_or_deletes_it(logins, private_app):
    case = Case(private_app.config["CASE_FOLDER"])
    try:
        users.add(case, OTHER[0], "investigator", OTHER[1])
    finally:
        case.close()
    author, admin = logins.client("investigator"), logins.client("admin")
    other = private_app.test_client()
    login(other, *OTHER)
    mid = hits(author)["hits"][0]["message"]["id"]
    note = author.post(f"/m/{mid}/notes.json", data=with_csrf(author, text="the author's reasoning")).get_json()["note"]
    edit_form, delete_form = f'action="/notes/{note["id"]}"', f'action="/notes/{note["id"]}/delete"'
    for client, shown in ((author, True), (admin, True), (other, False)):
        page = client.get(f"/m/{mid}").get_data(as_text=True)
        assert "the author&#39;s reasoning" in page and "Add a note" in page
        assert (edit_form in page, delete_form in page) == (shown, shown)
    own = other.post(f"/m/{mid}/notes.json", data=with_csrf(other, text="second opinion")).get_json()["note"]
    assert f'action="/notes/{own["id"]}/delete"' in other.get(f"/m/{mid}").get_data(as_text=True)
    assert f'action="/notes/{own["id"]}/delete"' not in author.get(f"/m/{mid}").get_data(as_text=True)

    message = "only its author (test-investigator) or an admin may edit this note"
    refused = other.post(f"/notes/{note['id']}.json", data=with_csrf(other, text="rewritten"))
    assert refused.status_code == 403 and refused.get_json()["error"] == message
    page = other.post(f"/notes/{note['id']}", data=with_csrf(other, text="rewritten", next=f"/m/{mid}"))
    assert page.status_code == 403 and "only its author (test-investigator) or an admin" in page.get_data(as_text=True)
    gone = other.post(f"/notes/{note['id']}/delete.json", data=with_csrf(other))
    assert gone.status_code == 403 and "may delete this note" in gone.get_json()["error"]
    assert other.post(f"/notes/{note['id']}/delete", data=with_csrf(other)).status_code == 403
    texts = [n["text"] for n in author.get(f"/m/{mid}.json").get_json()["notes"][mid]]
    assert texts == ["the author's reasoning", "second opinion"]
    assert len(audited(private_app, "note_edit")) == 0 and len(audited(private_app, "note_delete")) == 0

    edited = admin.post(f"/notes/{note['id']}.json", data=with_csrf(admin, text="checked by admin")).get_json()
    assert edited["note"]["updated_by"] == "test-admin" and edited["note"]["created_by"] == "test-investigator"
    assert author.post(f"/notes/{note['id']}.json", data=with_csrf(author, text="author again")).status_code == 200
    assert other.post(f"/notes/{own['id']}/delete.json", data=with_csrf(other)).status_code == 200
    assert admin.post(f"/notes/{note['id']}/delete.json", data=with_csrf(admin)).status_code == 200
    assert author.get(f"/m/{mid}.json").get_json()["notes"][mid] == []
    assert [e["actor"] for e in audited(private_app, "note_delete")] == [OTHER[0], "test-admin"]


def test_bad_note_requests_are_clear(logins):
    client = logins.client("investigator")
    mid = hits(client)["hits"][0]["message"]["id"]
    empty = client.post(f"/m/{mid}/notes.json", data=with_csrf(client, text="   "))
    assert empty.status_code == 400 and "needs some text" in empty.get_json()["error"]
    assert client.post("/m/nosuchmessage/notes.json", data=with_csrf(client, text="x")).status_code == 400
    assert client.post("/notes/424242.json", data=with_csrf(client, text="x")).status_code == 404
    assert client.post(f"/m/{mid}/notes", data={"text": "no token"}).status_code in (400, 403)
    off_site = client.post(f"/m/{mid}/notes", data=with_csrf(client, text="ok", next="//evil.example/x"))
    assert off_site.headers["Location"] == f"/m/{mid}"


def test_hostile_note_text_is_inert(logins):
    client = logins.client("investigator")
    hit = hits(client)["hits"][0]["message"]
    mid = hit["id"]
    payload = " ".join(XSS.values())
    client.post(f"/m/{mid}/notes", data=with_csrf(client, text=payload))
    for url in ("/search?q=whitewash", f"/m/{mid}", f"/c/{hit['conversation_id']}?at={mid}"):
        html = client.get(url).get_data(as_text=True)
        assert live_markup(html) == [], url
        assert "&lt;script&gt;window.__xss=1;alert(1)&lt;/script&gt;" in html, url
        assert " style=" not in html, url
    assert hits(client)["notes"][mid][0]["text"] == payload  # the JSON twin keeps it verbatim


# ----------------------------------------------------------------------------------- tag administration


def test_an_admin_adds_a_coloured_tag_and_recolours_it(logins, private_app):
    admin = logins.client("admin")
    made = admin.post("/tags", data=with_csrf(admin, name="Escalate", colour="#12AB3c", description="to the GC"))
    assert made.status_code == 302 and made.headers["Location"] == "/tags"
    listed = {t["name"]: t for t in admin.get("/tags.json").get_json()["tags"]}
    assert listed["Escalate"]["colour"] == "#12ab3c" and listed["Escalate"]["description"] == "to the GC"
    page = admin.get("/tags").get_data(as_text=True)
    assert re.search(r'fill="#12ab3c"></circle></svg>Escalate</span>', page) and " style=" not in page
    changed = admin.post("/tags/update.json", data=with_csrf(admin, tag="escalate", colour="#000080",
                                                             description="")).get_json()
    assert changed["colour"] == "#000080" and changed["description"] == ""
    bad = admin.post("/tags.json", data=with_csrf(admin, name="x", colour="red"))
    assert bad.status_code == 400 and "#rrggbb" in bad.get_json()["error"]
    again = admin.post("/tags.json", data=with_csrf(admin, name="ESCALATE"))
    assert again.status_code == 400 and "already exists" in again.get_json()["error"]
    defined, updated = audited(private_app, "tag_define")[-1], audited(private_app, "tag_update")[-1]
    assert defined["actor"] == "test-admin" and defined["details"]["colour"] == "#12ab3c"
    assert updated["details"]["after"]["colour"] == "#000080"
    investigator = logins.client("investigator")
    mid = hits(investigator)["hits"][0]["message"]["id"]
    investigator.post(f"/m/{mid}/tags", data=with_csrf(investigator, tag="Escalate"))
    assert 'fill="#000080"></circle></svg>Escalate</span>' in investigator.get("/search?q=whitewash").get_data(
        as_text=True)


def test_only_admins_define_or_change_tags(logins):
    client = logins.client("investigator")
    page = client.get("/tags").get_data(as_text=True)
    assert "responsive" in page and "Add a tag" not in page and "Only an admin" in page
    assert client.post("/tags", data=with_csrf(client, name="mine")).status_code == 403
    assert client.post("/tags/update", data=with_csrf(client, tag="hot", colour="#000000")).status_code == 403
    auditor = logins.client("auditor")
    assert auditor.get("/tags.json").status_code == 200
    assert auditor.post("/tags", data=with_csrf(auditor, name="mine")).status_code == 403


# ---------------------------------------------------------------------------------------------- facet


def test_the_tag_facet_counts_the_whole_result_and_narrows_it(logins):
    client = logins.client("investigator")
    found = hits(client)
    total = found["total"]
    two = [h["message"]["id"] for h in found["hits"][:2]]
    for mid in two:
        client.post(f"/m/{mid}/tags", data=with_csrf(client, tag="hot"))
    facet = client.get("/search.json?q=whitewash&per_page=1").get_json()["tag_facet"]  # not just the page
    counts = {t["name"]: t["count"] for t in facet["tags"]}
    assert counts["hot"] == 2 and counts["responsive"] == 0
    assert facet == {**facet, "total": total, "tagged": 2, "untagged": total - 2}
    html = client.get("/search?q=whitewash").get_data(as_text=True)
    links = dict(re.findall(r'<a href="(/search\?[^"]+)">(?:<svg[^>]*>.*?</svg>)? ?(hot|untagged)</a>', html))
    by_name = {name: parse_qs(urlsplit(url.replace("&amp;", "&")).query)["q"][0] for url, name in links.items()}
    assert by_name == {"hot": 'whitewash tag:"hot"', "untagged": "whitewash is:untagged"}
    assert client.get("/search.json?q=" + by_name["hot"]).get_json()["total"] == 2
    assert client.get("/search.json?q=" + by_name["untagged"]).get_json()["total"] == total - 2
    chosen = client.get('/search?q=whitewash tag:"hot"').get_data(as_text=True)
    assert re.search(r'<strong aria-current="true"><svg[^>]*>.*?</svg> hot</strong>', chosen)


def test_narrowing_an_or_query_keeps_its_meaning():
    assert with_clause("", 'tag:"hot"') == 'tag:"hot"'
    assert with_clause("a b", "is:untagged") == "a b is:untagged"
    assert with_clause("a OR b", 'tag:"hot"') == '(a OR b) tag:"hot"'
    assert with_clause("-a", "is:untagged") == "-a is:untagged"
    assert with_clause('"unclosed', "is:untagged") == '("unclosed) is:untagged'


# ---------------------------------------------------------------------------------------------- bulk


def _filtered(client: Any) -> tuple[str, int, int]:
    """A filter (the first hit's sender) that keeps some whitewash hits and drops others."""
    found = hits(client)
    senders = [h["message"]["sender_id"] for h in found["hits"]]
    sender = max(set(senders), key=senders.count)
    filtered = hits(client, f"q=whitewash&sender={sender}")["total"]
    assert 0 < filtered < found["total"], "the demo case should have whitewash hits from several senders"
    return sender, filtered, found["total"]


def test_bulk_tag_applies_the_search_filters(logins, private_app):
    client = logins.client("investigator")
    sender, filtered, _ = _filtered(client)
    form = client.get(f"/search?q=whitewash&sender={sender}").get_data(as_text=True)
    bulk = form[form.index('<form class="bulk-tag"'):]
    bulk = bulk[:bulk.index("</form>")]
    assert f'name="sender" value="{sender}"' in bulk and "filters applied" in bulk
    confirm = client.get(f"/tag-bulk?q=whitewash&sender={sender}&context=0&tag=hot")
    html = confirm.get_data(as_text=True)
    assert f'<strong id="bulk-count">{filtered}</strong>' in html
    assert re.search(rf"Sender: [^<(]+ \({sender}\)", html)  # the person's name, and the id given
    assert f'name="sender" value="{sender}"' in html
    done = client.post("/tag-bulk.json", data=with_csrf(client, q="whitewash", sender=sender, context="0", tag="hot",
                                                        expected=str(filtered))).get_json()
    assert done["changed"] == filtered
    tagged = hits(client, 'q=tag:"hot"')
    assert tagged["total"] == filtered and {h["message"]["sender_id"] for h in tagged["hits"]} == {sender}
    entry = audited(private_app, "tag_add")[-1]
    assert entry["details"]["count"] == filtered and entry["details"]["filters"]


def test_bulk_tag_with_context_tags_what_the_search_page_shows(logins):
    client = logins.client("investigator")
    sender, _, _ = _filtered(client)
    query = f"q=whitewash&sender={sender}&from=2000-01-01&context=2"
    shown = hits(client, query)
    ids = {i for block in shown["blocks"] for i in block["message_ids"]}
    count = client.get(f"/tag-bulk.json?{query}&tag=privileged").get_json()["count"]
    assert count["messages"] == len(ids) and count["hits"] == shown["total"]
    client.post("/tag-bulk", data=with_csrf(client, q="whitewash", sender=sender, context="2", tag="privileged",
                                            expected=str(len(ids)), **{"from": "2000-01-01"}))
    tagged = hits(client, 'q=tag:privileged&context=0')
    assert {h["message"]["id"] for h in tagged["hits"]} == ids


def test_bulk_tag_of_filters_alone_and_the_way_back(logins):
    client = logins.client("investigator")
    sender, _, _ = _filtered(client)
    everything = hits(client, f"sender={sender}")["total"]
    assert client.get(f"/tag-bulk.json?sender={sender}&tag=hot").get_json()["count"]["messages"] == everything
    back = f"/search?sender={sender}&page=1"
    done = client.post("/tag-bulk", data=with_csrf(client, sender=sender, tag="hot", expected=str(everything),
                                                   next=back))
    assert done.status_code == 302 and done.headers["Location"] == back
    nothing = client.get("/tag-bulk.json?tag=hot")
    assert nothing.status_code == 400 and nothing.get_json()["param"] == "q"
    stale = client.post("/tag-bulk.json", data=with_csrf(client, q="whitewash", sender=sender, tag="hot",
                                                         expected="1"))
    assert stale.status_code == 409
