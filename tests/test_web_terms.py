"""The search term report page /terms and its twins /terms.json and /terms.csv, on the demo case."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any
from urllib.parse import urlencode

import pytest

from discovery import audit
from discovery.case import Case
from discovery.commands.terms import search_link
from discovery.terms import CSV_COLUMNS, term_report
from tests.conftest import WEB_USERS, XSS

TERMS = ["whitewash*", "洗白", '"debug logs"', "whitewash OR 洗白"]


def url(path: str, terms: list[str] | str, context: int | None = None) -> str:
    text = terms if isinstance(terms, str) else "\n".join(terms)
    params: dict[str, Any] = {"terms": text}
    if context is not None:
        params["context"] = context
    return f"{path}?{urlencode(params)}"


@pytest.fixture(scope="module")
def expected(demo_case_dir) -> dict[str, Any]:
    case = Case(demo_case_dir)
    try:
        return {context: term_report(case, TERMS, context=context) for context in (0, 3)}
    finally:
        case.close()


def last_audit(demo_case_dir) -> dict[str, Any]:
    case = Case(demo_case_dir)
    try:
        return audit.entries(case, action="search_term_report")[-1]
    finally:
        case.close()


def cells(page: str) -> list[list[str]]:
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S)
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)] for row in rows]


def test_the_page_shows_the_table_with_links_and_the_total(client, expected):
    response = client.get(url("/terms", TERMS, 0))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    table = cells(page)
    assert table[0] == ["Term", "Messages", "With context", "Conversations", "Unique"]
    report = expected[0]
    assert table[1:-1] == [[row["term"], str(row["messages"]), str(row["with_context"]), str(row["conversations"]),
                            str(row["unique"])] for row in report["terms"]]
    total = report["total"]
    assert table[-1] == ["TOTAL", str(total["messages"]), str(total["with_context"]), str(total["conversations"]), ""]
    assert table[1][:2] == ["whitewash*", "9"] and table[-1][:2] == ["TOTAL", "16"]  # the golden numbers
    for term in TERMS:  # each term links to the search it stands for
        assert f'href="{html.escape(search_link(term, 0))}"' in page
    assert 'name="terms"' in page and "<textarea" in page and 'method="get"' in page
    assert "/terms.csv?terms=" in page and "/terms.json?terms=" in page  # the twins of this very report


def test_the_empty_form_runs_nothing(client):
    response = client.get("/terms")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<textarea" in page and "TOTAL" not in page
    assert 'href="/terms"' in client.get("/search").get_data(as_text=True)  # the nav links here


def test_json_is_exactly_the_library_contract(client, expected, demo_case_dir):
    for context in (0, 3):
        response = client.get(url("/terms.json", TERMS, context))
        assert response.status_code == 200 and response.is_json
        assert response.get_json() == expected[context]
    assert client.get(url("/terms.json", TERMS)).get_json() == expected[3]  # context defaults to 3
    accept = client.get(url("/terms", TERMS, 3), headers={"Accept": "application/json"})
    assert accept.get_json() == expected[3]
    entry = last_audit(demo_case_dir)
    assert entry["actor"] == WEB_USERS["investigator"][0] and entry["outcome"] == "ok"
    assert entry["details"]["terms"] == TERMS and entry["details"]["total"] == expected[3]["total"]


def test_blank_lines_are_skipped(client, expected):
    text = "\r\n".join(["", TERMS[0], "  ", TERMS[1], TERMS[2], "", TERMS[3], ""])
    assert client.get(url("/terms.json", text, 0)).get_json() == expected[0]


def test_csv_has_a_bom_a_header_links_and_neutralised_formulas(client, demo_case_dir):
    terms = ["whitewash", "=cmd|' /C calc'!A0"]
    response = client.get(url("/terms.csv", terms, 2))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == [*CSV_COLUMNS, "search"]
    assert rows[1][0] == "whitewash" and rows[1][-1] == search_link("whitewash", 2)
    assert rows[2][0] == "'" + terms[1]  # shown as text by a spreadsheet, never run
    assert rows[2][-1] == search_link(terms[1], 2)
    assert rows[3][0] == "TOTAL" and rows[3][4] == "" and rows[3][5] == ""
    assert not any(cell.startswith("=") for row in rows for cell in row)
    entry = last_audit(demo_case_dir)
    assert entry["details"]["terms"] == terms and entry["details"]["format"] == "csv"


def test_a_bad_term_is_a_400_naming_its_line_and_position(client, demo_case_dir):
    text = "whitewash\n\n(unclosed AND"
    response = client.get(url("/terms", text))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "A term could not be read" in page and "line 3" in page and "TOTAL" not in page
    data = client.get(url("/terms.json", text)).get_json()
    assert data["line"] == 3 and data["term"] == "(unclosed AND" and isinstance(data["position"], int)
    assert data["error"].startswith("line 3 ")
    assert client.get(url("/terms.csv", text)).status_code == 400
    entry = last_audit(demo_case_dir)
    assert entry["outcome"] == "error" and "line 3" in entry["details"]["error"]


def test_bad_parameters_are_400(client):
    assert client.get(url("/terms", ["whitewash"], 99)).status_code == 400
    assert client.get("/terms?terms=whitewash&context=x").status_code == 400
    assert client.get("/terms.csv").status_code == 400  # no terms: nothing to download (/terms.json: the empty report)


def test_not_logged_in_is_sent_to_log_in(anon_client):
    response = anon_client.get(url("/terms", ["whitewash"]))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/terms")
    for path in ("/terms.json", "/terms.csv"):
        response = anon_client.get(url(path, ["whitewash"]), headers={"Accept": "application/json"})
        assert response.status_code == 401


@pytest.mark.parametrize("role", ["admin", "investigator", "auditor"])
def test_every_reader_may_run_it(client_as, role):
    assert client_as(role).get(url("/terms", ["whitewash"])).status_code == 200


def test_hostile_term_text_is_escaped(hostile_logins):
    client = hostile_logins.client("investigator")
    terms = (XSS["script"], XSS["svg"] + " whitewash", "whitewash " + XSS["quote"], XSS["script"] + " (")
    statuses = []
    for term in terms:
        response = client.get(url("/terms", [term]))
        page = response.get_data(as_text=True)
        statuses.append(response.status_code)
        for payload in XSS.values():
            if payload.startswith("javascript:"):
                continue
            assert payload not in page, (term, payload)
        assert "&lt;" in page
    assert statuses[0] == 200 and statuses[-1] == 400  # escaped in the table and in the error box alike
