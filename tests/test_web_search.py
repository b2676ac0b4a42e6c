"""The search page and its JSON twin, on the demo case (fixtures/lark)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from discovery.case import Case
from discovery.search import search
from tests.conftest import with_csrf


class Marks(HTMLParser):
    """Collects the text inside <mark> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.marks: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "mark":
            self.inside += 1
            self.marks.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self.inside -= 1

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.marks[-1] += data


def marks(html: str) -> list[str]:
    parser = Marks()
    parser.feed(html)
    return parser.marks


def test_root_redirects_to_search(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/search")


def test_empty_search_shows_the_case_overview(client):
    response = client.get("/search")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="q"' in html and "This case" in html
    assert "Atlas 产品组 / Atlas Product Team" in html
    data = client.get("/search.json").get_json()
    assert data["total"] == 0 and data["hits"] == []
    assert data["overview"]["stats"]["messages"] > 0


def test_search_html_shows_hits_with_context_and_highlights(client):
    response = client.get("/search?q=whitewash")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    found = marks(html)
    assert found and all(mark.lower() == "whitewash" for mark in found)
    assert html.count('class="msg hit"') == 4
    assert 'class="msg context"' in html
    assert re.search(r"4 hits", html)
    assert "Open in conversation" in html
    assert 'class="timeline-chart"' in html and "<rect" in html
    assert "Senders" in html and "Mark Ellison" in html


def test_json_twin_has_the_cli_contract_shape(client, demo_case_dir):
    data = client.get("/search.json?q=whitewash&context=2").get_json()
    case = Case(demo_case_dir)
    try:
        expected = search(case, "whitewash", context=2, limit=20).to_dict()
    finally:
        case.close()
    for key in ("query", "total", "offset", "sort", "context_size"):
        assert data[key] == expected[key]
    assert [hit["message"]["id"] for hit in data["hits"]] == [hit["message"]["id"] for hit in expected["hits"]]
    assert data["hits"][0].keys() == expected["hits"][0].keys()
    assert data["hits"][0]["context"] == expected["hits"][0]["context"]
    assert data["hits"][0]["message"]["highlights"]
    assert {"facets", "timeline", "blocks", "filters", "timezone"} <= data.keys()


def test_accept_header_asks_for_json(client):
    response = client.get("/search?q=whitewash", headers={"Accept": "application/json"})
    assert response.is_json
    assert response.get_json()["total"] == 4
    assert "Accept" in response.headers["Vary"]


def test_html_and_json_show_the_same_hits(client):
    data = client.get("/search.json?q=whitewash&sort=time_asc").get_json()
    html = client.get("/search?q=whitewash&sort=time_asc").get_data(as_text=True)
    hit_ids = re.findall(r'data-open="/c/[^"?]+\?at=(m[0-9a-f]+)', html)
    assert hit_ids == [hit["message"]["id"] for hit in data["hits"]]


def test_cjk_and_mixed_script_terms_are_highlighted(client):
    html = client.get("/search?q=洗白").get_data(as_text=True)
    assert "洗白" in marks(html)
    html = client.get("/search?q=whitewash OR 洗白").get_data(as_text=True)
    found = set(marks(html))
    assert "洗白" in found and any(mark.lower() == "whitewash" for mark in found)


def test_sort_by_time_both_ways(client):
    newest = client.get("/search.json?q=whitewash&sort=time_desc").get_json()["hits"]
    oldest = client.get("/search.json?q=whitewash&sort=time_asc").get_json()["hits"]
    times = [hit["message"]["sent_at"] for hit in newest]
    assert times == sorted(times, reverse=True)
    assert [hit["message"]["id"] for hit in oldest] == [hit["message"]["id"] for hit in reversed(newest)]


def test_pagination(client):
    first = client.get("/search.json?q=whitewash&per_page=3").get_json()
    second = client.get("/search.json?q=whitewash&per_page=3&page=2").get_json()
    assert first["total"] == second["total"] == 4
    assert len(first["hits"]) == 3 and len(second["hits"]) == 1
    assert second["offset"] == 3
    html = client.get("/search?q=whitewash&per_page=3").get_data(as_text=True)
    assert 'rel="next"' in html and "page=2" in html
    beyond = client.get("/search?q=whitewash&page=50")
    assert beyond.status_code == 200 and "No hits on this page" in beyond.get_data(as_text=True)


def test_context_size_is_chosen_on_the_page(client):
    none = client.get("/search.json?q=whitewash&context=0").get_json()
    assert all(len(hit["context"]) == 1 for hit in none["hits"])
    five = client.get("/search.json?q=whitewash&context=5").get_json()
    assert max(len(hit["context"]) for hit in five["hits"]) > 7
    html = client.get("/search?q=whitewash&context=0").get_data(as_text=True)
    assert 'class="msg context"' not in html


def test_overlapping_windows_merge_into_one_block(client):
    data = client.get("/search.json?q=whitewash&context=3").get_json()
    html = client.get("/search?q=whitewash&context=3").get_data(as_text=True)
    merged = [block for block in data["blocks"] if len(block["hit_ids"]) > 1]
    assert merged, "hits 3 and 4 (Atlas group, two minutes apart) share their context"
    assert len(data["blocks"]) < len(data["hits"])
    assert html.count('<li class="block">') == len(data["blocks"])
    ids = merged[0]["message_ids"]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("param, value", [
    ("sender", "Mark Ellison"), ("sender", "ou_76927bc596a3349ded94c92ecd8131a1"),
])
def test_filter_by_sender(client, param, value):
    data = client.get("/search.json", query_string={"q": "whitewash", param: value}).get_json()
    assert data["total"] == 2
    assert {hit["message"]["sender_name"] for hit in data["hits"]} == {"Mark Ellison"}


def test_filter_by_conversation_type_format_custodian(client):
    atlas = client.get("/search.json",
                       query_string={"q": "whitewash", "conversation": "Atlas 产品组 / Atlas Product Team"})
    assert atlas.get_json()["total"] == 2
    assert client.get("/search.json?q=whitewash&type=dm").get_json()["total"] == 2
    assert client.get("/search.json?q=whitewash&format=lark_api").get_json()["total"] == 4
    assert client.get("/search.json?q=whitewash&format=slack_export").get_json()["total"] == 0
    assert client.get("/search.json?q=whitewash&custodian=Demo custodian").get_json()["total"] == 4
    assert client.get("/search.json?q=whitewash&custodian=Someone else").get_json()["total"] == 0


def test_filter_by_participant(client):
    everyone = client.get("/search.json?q=whitewash").get_json()["total"]
    data = client.get("/search.json", query_string={"q": "whitewash", "participant": "Priya Raman"}).get_json()
    assert 0 < data["total"] < everyone
    assert all(hit["message"]["conversation_type"] != "dm" for hit in data["hits"])


def test_filter_flags(client):
    edited = client.get("/search.json?edited=1").get_json()
    assert edited["total"] >= 1 and all(hit["message"]["edited"] for hit in edited["hits"])
    deleted = client.get("/search.json?deleted=1").get_json()
    assert deleted["total"] >= 1 and all(hit["message"]["deleted"] for hit in deleted["hits"])
    files = client.get("/search.json?has_attachment=1").get_json()
    assert files["total"] >= 1 and all(hit["message"]["attachments"] for hit in files["hits"])


def test_filter_by_date_range(client):
    assert client.get("/search.json?q=whitewash&from=2024-09-18&to=2024-09-18").get_json()["total"] == 1
    assert client.get("/search.json?q=whitewash&to=2024-09-10").get_json()["total"] == 3
    assert client.get("/search.json?q=whitewash&from=2024-09-11").get_json()["total"] == 1


def test_date_range_is_read_in_the_display_time_zone(client):
    # The 2024-09-18 03:20 UTC hit is on 2024-09-17 in Los Angeles.
    client.post("/settings", data=with_csrf(client, timezone="America/Los_Angeles"))
    la = client.get("/search.json?q=whitewash&from=2024-09-17&to=2024-09-17").get_json()
    assert la["total"] == 1 and la["timezone"] == "America/Los_Angeles"
    assert client.get("/search.json?q=whitewash&from=2024-09-18&to=2024-09-18").get_json()["total"] == 0


def test_facets_count_the_whole_result_set_and_filter_when_clicked(client):
    data = client.get("/search.json?q=whitewash&per_page=1").get_json()
    senders = {v["label"]: v["count"] for v in data["facets"]["senders"]}
    assert senders["Mark Ellison"] == 2 and sum(senders.values()) == data["total"] == 4
    assert sum(v["count"] for v in data["facets"]["formats"]) == 4
    assert data["facets"]["months"] == [{"value": "2024-09", "label": "2024-09", "count": 4}]
    html = client.get("/search?q=whitewash&per_page=1").get_data(as_text=True)
    link = re.search(r'<a href="([^"]*sender=ou_76927bc596a3349ded94c92ecd8131a1[^"]*)">Mark Ellison</a>', html)
    assert link
    filtered = client.get(link.group(1).replace("&amp;", "&"))
    assert "2 hits" in filtered.get_data(as_text=True)


def test_timeline_covers_the_result_and_bars_narrow_the_dates(client):
    data = client.get("/search.json?q=whitewash").get_json()
    timeline = data["timeline"]
    assert timeline["interval"] == "day"
    assert sum(bucket["count"] for bucket in timeline["buckets"]) == 4
    assert timeline["buckets"][0]["from"] == "2024-09-10" and timeline["buckets"][-1]["to"] == "2024-09-18"
    html = client.get("/search?q=whitewash").get_data(as_text=True)
    bar = re.search(r'<a href="([^"]*from=2024-09-18&amp;to=2024-09-18[^"]*)"', html)
    assert bar
    narrowed = client.get(bar.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "1 hit" in narrowed
    monthly = client.get("/search.json?q=whitewash&interval=month").get_json()["timeline"]
    assert monthly["interval"] == "month" and monthly["buckets"][0]["count"] == 4


def test_malformed_query_shows_the_message_and_a_caret(client):
    response = client.get("/search?q=whitewash (refund")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "The query could not be read" in html
    assert re.search(r"whitewash \(refund\n +\^", html)
    data = client.get("/search.json?q=whitewash (refund").get_json()
    assert set(data) >= {"error", "position"} and isinstance(data["position"], int)


@pytest.mark.parametrize("query", [
    "context=x", "context=-1", "context=51", "sort=sideways", "page=0", "page=two", "per_page=0", "per_page=100000",
    "from=yesterday", "to=2024-13-01", "from=2024-09-20&to=2024-09-01", "edited=maybe", "interval=fortnight",
    "q=" + "x" * 2001,
])
def test_bad_parameters_are_clear_400s(client, query):
    args = query if query.startswith("q=") else "q=whitewash&" + query
    response = client.get("/search.json?" + args)
    assert response.status_code == 400
    data = response.get_json()
    assert data["error"] and data.get("param")
    html = client.get("/search?" + args)
    assert html.status_code == 400
    assert data["param"] in html.get_data(as_text=True)


@pytest.mark.parametrize("query", ['"unclosed', "AND", "OR whitewash", "date:2024-99-99", "w/3", "has:nothing",
                                   "((((", "sender:", "\x00", "%%%", "*"])
def test_odd_queries_never_500(client, query):
    response = client.get("/search.json", query_string={"q": query})
    assert response.status_code in (200, 400)
    html = client.get("/search", query_string={"q": query})
    assert html.status_code == response.status_code


def test_edited_recalled_reply_and_bundle_markers(client):
    html = client.get("/search?q=whitewash&context=5").get_data(as_text=True)
    assert "badge-edited" in html and "badge-recalled" in html  # both sit near the DM's first hit
    assert "In reply to" in html  # Priya's "Whitewash?" replies to Mark's message
    bundle = client.get("/search?q=manual adjustment").get_data(as_text=True)
    assert "Forwarded inside a merged bundle" in bundle


def test_attachments_show_name_type_and_size(client):
    html = client.get("/search?q=has:attachment&per_page=50").get_data(as_text=True)
    assert "Q3_audit_report.final.xlsx" in html
    assert re.search(r"· (file|image) · ", html)


def test_server_timing_header(client):
    response = client.get("/search?q=whitewash")
    assert re.fullmatch(r"app;dur=\d+\.\d+", response.headers["Server-Timing"])


def test_senders_of_one_name_are_told_apart_by_their_ids(tmp_path, demo_case_dir):
    """Mark Ellison has a Lark account and a Teams one: two senders, both shown, each with its id."""
    from discovery.ingest import ingest
    from tests.conftest import FIXTURES, WEB_USERS, login, make_app, private_copy

    folder = private_copy(demo_case_dir, tmp_path / "case")
    case = Case(folder)
    ingest(case, [str(FIXTURES / "teams" / "graph")], copy_originals=False)
    case.close()
    app = make_app(folder)
    try:
        client = app.test_client()
        assert login(client, *WEB_USERS["investigator"]).status_code == 302
        query = "q=sender:%22Mark+Ellison%22+OR+sender:%22Tom+Becker%22&per_page=1"
        senders = client.get(f"/search.json?{query}").get_json()["facets"]["senders"]
        marks_ids = sorted(v["value"] for v in senders if v["label"] == "Mark Ellison")
        assert len(marks_ids) == 2 and len(senders) > 2
        html = client.get(f"/search?{query}").get_data(as_text=True)
        facet = html[html.index('<aside class="facets"'):html.index("</aside>")]
        qualifiers = re.findall(r'">Mark Ellison</a><small class="facet-qualifier" title="sender id">([^<]*)</small>',
                                facet)
        assert sorted(qualifiers) == marks_ids
        labels = [v["label"] for v in senders]
        assert len(set(labels)) > 1  # and a name shown once carries no id:
        assert facet.count('class="facet-qualifier"') == sum(labels.count(label) > 1 for label in labels)
    finally:
        app.extensions["discovery_cases"].close()


def test_an_incomplete_index_is_said_on_the_page_its_twin_and_the_audit_trail(private_app):
    from pathlib import Path

    from discovery import index_state
    from tests.conftest import WEB_USERS, login

    client = private_app.test_client()
    assert login(client, *WEB_USERS["investigator"]).status_code == 302
    assert "warning-box" not in client.get("/search?q=whitewash").get_data(as_text=True)
    assert client.get("/search.json?q=whitewash").get_json()["index_complete"] is True
    case = Case(Path(private_app.config["CASE_FOLDER"]))
    index_state.begin(case, "ingest run 9")  # an ingest writing now, or one that died
    for query in ("whitewash", ""):  # a search, and the case overview
        html = client.get(f"/search?q={query}").get_data(as_text=True)
        assert '<p class="warning-box" role="status">The index does not hold every message' in html
        assert client.get(f"/search.json?q={query}").get_json()["index_complete"] is False
    details = case.db.execute("SELECT details FROM audit_log WHERE action = 'search' ORDER BY seq DESC").fetchone()[0]
    assert '"index_complete": false' in details
    case.close()
