"""Search with context windows, through a real case on disk."""

import pytest

from discovery.case import Case
from discovery.ingest import ingest
from discovery.query import QueryError
from discovery.search import search, show
from tests.lark_factory import message, write_directory, write_jsonl

CONTRACT_KEYS = {
    "id", "native_id", "source_format", "conversation_id", "conversation_name", "conversation_type", "sender_id",
    "sender_name", "sent_at", "text", "edited", "deleted", "thread_id", "reply_to", "attachments", "source",
}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    write_directory(folder, {"oc_a": "Finance", "oc_b": "Ops"}, {"ou_alice": "Alice Chen", "ou_bob": "Bob Wang"})
    chat_a = [message(n, f"finance message {n}", chat="oc_a") for n in range(10)]
    chat_a[0] = message(0, "whitewash at the very start", chat="oc_a")
    chat_a[5] = message(5, "we should whitewash the report", chat="oc_a", sender="ou_bob")
    chat_a[6] = message(6, "whitewashing is a crime", chat="oc_a")
    chat_a[9] = message(9, "white-wash at the very end", chat="oc_a")
    chat_b = [
        message(0, "上线前把debug logs清理掉", chat="oc_b"),
        message(1, "ＷＨＩＴＥＷＡＳＨ in full width", chat="oc_b"),
        message(2, "This message was recalled", chat="oc_b", deleted=True),
        message(3, "see Q3_audit_report.final.xlsx", chat="oc_b"),
        message(4, "把证据洗白", chat="oc_b"),
    ]
    write_jsonl(folder / "a.jsonl", chat_a)
    write_jsonl(folder / "b.jsonl", chat_b)
    opened = Case(tmp_path_factory.mktemp("case"), create=True)
    ingest(opened, [str(folder)])
    yield opened
    opened.close()


def texts(result):
    return sorted(hit.message["text"] for hit in result.hits)


def test_terms_match_whole_words_and_wildcards_extend_them(case):
    assert texts(search(case, "whitewash")) == [
        "we should whitewash the report", "whitewash at the very start", "ＷＨＩＴＥＷＡＳＨ in full width",
    ]
    assert "whitewashing is a crime" in texts(search(case, "whitewash*"))
    assert texts(search(case, '"white wash"')) == ["white-wash at the very end"]


def test_json_contract_fields_and_hit_marking(case):
    result = search(case, "whitewash", context=2, sort="time_asc").to_dict()
    assert result["query"] == "whitewash" and result["total"] == 3
    first = result["hits"][0]
    assert set(first["message"]) >= CONTRACT_KEYS
    assert set(first["message"]["source"]) >= {"sha256", "path", "locator"}
    assert first["message"]["sent_at"].endswith("Z")
    assert [m["hit"] for m in first["context"]].count(True) == 1


def test_context_window_is_clipped_at_the_start_of_a_conversation(case):
    hit = next(h for h in search(case, "start", context=3).hits)
    assert [m["text"] for m in hit.context][:2] == ["whitewash at the very start", "finance message 1"]
    assert len(hit.context) == 4 and hit.context[0]["hit"]


def test_context_window_is_clipped_at_the_end_of_a_conversation(case):
    hit = search(case, '"very end"', context=3).hits[0]
    assert len(hit.context) == 4 and hit.context[-1]["hit"]
    assert [m["text"] for m in hit.context[:3]] == ["whitewashing is a crime", "finance message 7",
                                                    "finance message 8"]


def test_context_window_in_the_middle_is_n_before_and_after_in_time_order(case):
    hit = search(case, "report", context=2).hits[0]
    assert [m["text"] for m in hit.context] == [
        "finance message 3", "finance message 4", "we should whitewash the report", "whitewashing is a crime",
        "finance message 7",
    ]
    assert all(m["conversation_id"] == "oc_a" for m in hit.context)


def test_mixed_script_sentence_is_found_by_its_latin_and_its_chinese_words(case):
    for query in ("logs", "清理", "debug", '"debug logs"', "上线"):
        assert texts(search(case, query)) == ["上线前把debug logs清理掉"], query


def test_chinese_term_inside_an_unspaced_sentence_and_a_single_character(case):
    assert texts(search(case, "洗白")) == ["把证据洗白"]
    assert texts(search(case, "证")) == ["把证据洗白"]


def test_exact_file_names_are_searchable(case):
    assert texts(search(case, "Q3_audit_report.final.xlsx")) == ["see Q3_audit_report.final.xlsx"]
    assert texts(search(case, "xlsx")) == ["see Q3_audit_report.final.xlsx"]


def test_a_recalled_message_placeholder_never_produces_a_hit(case):
    assert search(case, "recalled").total == 0
    assert search(case, '"This message was recalled"').total == 0


def test_highlights_point_at_the_matched_words(case):
    hit = search(case, "debug OR 清理").hits[0].message
    assert [hit["text"][s:e] for s, e in hit["highlights"]] == ["debug", "清理"]
    adjacent = search(case, "logs OR 清理").hits[0].message  # touching matches form one mark
    assert [adjacent["text"][s:e] for s, e in adjacent["highlights"]] == ["logs清理"]


def test_total_counts_every_hit_not_just_the_page(case):
    result = search(case, "finance", limit=2)
    assert result.total == 6 and len(result.hits) == 2


def test_malformed_query_raises_with_a_position(case):
    with pytest.raises(QueryError) as caught:
        search(case, "(whitewash AND")
    assert caught.value.position is not None


def test_bad_options_are_refused(case):
    with pytest.raises(ValueError, match="context"):
        search(case, "x", context=-1)


def test_show_returns_the_message_with_context_and_provenance(case):
    hit = search(case, "report").hits[0].message
    shown = show(case, hit["id"], context=1)
    assert shown["message"]["id"] == hit["id"] and len(shown["context"]) == 3
    assert shown["message"]["source"]["locator"] == "line 6"
    assert show(case, "m-nope") is None
