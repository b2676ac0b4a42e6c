"""Search term reports: the JSON contract, counted by hand on a small case and against case.window."""

from __future__ import annotations

import pytest

from discovery.search import parse_query
from discovery.terms import TermError, csv_rows, read_terms, term_report
from tests.test_export_fixtures import build_case


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    case = build_case(tmp_path_factory.mktemp("terms"))
    yield case
    case.close()


def test_report_contract_and_hand_counted_values(case):
    report = term_report(case, ["whitewash", "洗白", "numbers"], context=1)
    assert set(report) == {"terms", "total"}
    assert [set(row) for row in report["terms"]] == [{"term", "messages", "with_context", "conversations",
                                                       "unique"}] * 3
    assert report["terms"] == [
        # om_0004 (alpha), om_0030 (alpha, next day), om_0041 (DM); om_0004 is also hit by "numbers"
        {"term": "whitewash", "messages": 3, "with_context": 9, "conversations": 2, "unique": 2},
        {"term": "洗白", "messages": 1, "with_context": 3, "conversations": 1, "unique": 1},
        {"term": "numbers", "messages": 1, "with_context": 3, "conversations": 1, "unique": 0},
    ]
    # windows of om_0002 and om_0004 overlap on om_0003: 11 distinct messages, not 12
    assert report["total"] == {"messages": 4, "with_context": 11, "conversations": 2}


@pytest.mark.parametrize("context", [0, 2, 5])
def test_with_context_equals_the_search_windows(case, context):
    report = term_report(case, ["whitewash", "filler"], context=context)
    for row in report["terms"]:
        ids = case.engine().all_ids(parse_query(case, row["term"]))
        windows = {m["id"] for message_id in ids for m in case.window(message_id, context, context)}
        assert row["with_context"] == len(windows)
        assert row["messages"] == len(ids)


def test_scope_is_anded_with_every_term(case):
    scope = parse_query(case, "conversation:oc_dm")
    report = term_report(case, ["whitewash", "洗白"], context=0, scope=scope)
    assert [(r["messages"], r["conversations"]) for r in report["terms"]] == [(1, 1), (0, 0)]
    assert report["total"] == {"messages": 1, "with_context": 1, "conversations": 1}


def test_a_bad_term_names_its_line(case):
    with pytest.raises(TermError) as caught:
        term_report(case, ["whitewash", '"unclosed'], context=0)
    assert caught.value.line == 2 and caught.value.position is not None
    assert "term 2" in str(caught.value)


def test_empty_list_and_no_hits(case):
    assert term_report(case, [], context=3) == {"terms": [], "total": {"messages": 0, "with_context": 0,
                                                                      "conversations": 0}}
    report = term_report(case, ["zzzznothing"], context=3)
    assert report["terms"][0] == {"term": "zzzznothing", "messages": 0, "with_context": 0, "conversations": 0,
                                  "unique": 0}


def test_read_terms_skips_blank_lines_and_bom(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_bytes("\ufeffwhitewash\r\n\r\n  洗白  \n#phonic stays\n".encode())
    assert read_terms(path) == ["whitewash", "洗白", "#phonic stays"]


def test_csv_rows_end_with_total(case):
    rows = csv_rows(term_report(case, ["whitewash"], context=0))
    assert rows == [["whitewash", 3, 3, 2, 3], ["TOTAL", 3, 3, 2, ""]]  # alone, every hit is unique
