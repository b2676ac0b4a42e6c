"""`discovery terms`: the search term report on the Lark fixtures, in JSON, CSV and text."""

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from discovery.case import Case
from discovery.cli import cli
from discovery.ingest import ingest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lark"


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("str")
    case = Case(folder, create=True)
    ingest(case, [str(FIXTURES)])
    case.close()
    return str(folder)


@pytest.fixture
def terms_file(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_text('\ufeffwhitewash*\n\n洗白\n"debug logs"\nwhitewash OR 洗白\n', encoding="utf-8")
    return str(path)


def test_json_report_follows_the_contract(case_dir, terms_file):
    result = CliRunner().invoke(cli, ["terms", terms_file, "--case", case_dir, "--json", "--context", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [set(row) for row in report["terms"]] == [{"term", "messages", "with_context", "conversations",
                                                       "unique"}] * 4
    rows = {row["term"]: row for row in report["terms"]}
    # checked against the golden table: 9 whitewash* hits, 4 洗白, 3 "debug logs"
    assert [rows[t]["messages"] for t in ("whitewash*", "洗白", '"debug logs"')] == [9, 4, 3]
    # with no context, with_context equals the hits themselves
    assert all(row["with_context"] == row["messages"] for row in report["terms"])
    # whitewash* shares its 4 exact "whitewash" hits with the OR term; 洗白 shares all of its hits
    assert rows["whitewash*"]["unique"] == 5 and rows["洗白"]["unique"] == 0 and rows['"debug logs"']["unique"] == 3
    assert report["total"] == {"messages": 16, "with_context": 16, "conversations": 4}


def test_context_counts_grow_with_the_window(case_dir, terms_file):
    zero = json.loads(CliRunner().invoke(cli, ["terms", terms_file, "--case", case_dir, "--json",
                                               "--context", "0"]).output)
    three = json.loads(CliRunner().invoke(cli, ["terms", terms_file, "--case", case_dir, "--json"]).output)
    assert three["total"]["with_context"] > zero["total"]["with_context"]
    assert three["total"]["messages"] == zero["total"]["messages"]


def test_csv_opens_cleanly_in_excel_with_a_link_per_row(case_dir, terms_file):
    result = CliRunner().invoke(cli, ["terms", terms_file, "--case", case_dir, "--csv"])
    raw = result.stdout_bytes
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["term", "messages", "with_context", "conversations", "unique", "search"]
    assert rows[1][0] == "whitewash*" and rows[1][5] == "/search?q=whitewash%2A&context=3"
    assert rows[-1][0] == "TOTAL" and rows[-1][1] == "16"


def test_a_bad_term_names_its_line_and_exits_2(case_dir, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("whitewash\n(scrub AND\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["terms", str(path), "--case", case_dir])
    assert result.exit_code == 2
    assert "term 2" in result.output and "Traceback" not in result.output
