"""Generic CSV/JSONL through a column map: exact values, the one clear error for a bad map, encodings."""

import codecs
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from discovery.model import Message, SourceError
from discovery.sources import MIN_SCORE, detect, get_adapter
from discovery.sources.base import ParseOptions
from discovery.sources.files import expand
from discovery.sources.generic import ADAPTER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CSV = FIXTURES / "generic" / "chatvault_finance-close_2024-10.csv"
JSONL = FIXTURES / "generic" / "matrix_ops-retention.jsonl"
UTF16 = FIXTURES / "broken" / "excel_utf16.csv"
CSV_MAP = {"native_id": "Message ID", "conversation": "Chat", "kind": "Type", "sender": "From", "sent_at": "Date",
           "text": "Body", "thread_id": "Thread", "reply_to": "Reply To", "edited": "Edited", "deleted": "Deleted",
           "attachment": "Attachment"}
JSONL_MAP = {"native_id": "event_id", "sent_at": "origin_server_ts", "conversation": "room_name",
             "sender_id": "sender", "sender_name": "sender_display", "text": "content.body",
             "reply_to": "in_reply_to", "thread_id": "thread_root"}


def parse(path, column_map, timezone=None):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions(timezone=timezone, column_map=column_map)))
    messages = {m.native_id: m for _, m in out if isinstance(m, Message)}
    errors = [m for _, m in out if isinstance(m, SourceError)]
    return out, messages, errors


def write(folder, name, data):
    path = Path(folder) / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# ----------------------------------------------------------------------------- routing


def test_generic_never_wins_the_auction_but_can_be_forced():
    for path in (CSV, JSONL, UTF16):
        [file] = list(expand(str(path)))
        assert ADAPTER.sniff(file) == 5 < MIN_SCORE
        assert detect(file)[0] is None
    assert get_adapter("generic") is ADAPTER


# ----------------------------------------------------------------------------- the CSV (BOM, CRLF, quoted newlines)


def test_csv_counts_and_order():
    out, messages, errors = parse(CSV, CSV_MAP)
    assert (len(messages), len(errors)) == (11, 1)
    assert [item.locator for _, item in out][:6] == ["line 2", "line 3", "line 4", "line 5", "line 7", "line 8"]


def test_csv_values():
    _, messages, _ = parse(CSV, CSV_MAP, timezone="Europe/Berlin")
    first = messages["CV-000481"]
    assert first.text == "Refund table v2 is in the close folder. The 380k manual adjustments are gone from it."
    assert (first.sender_id, first.sender_name, first.sender_kind) == ("generic:Wang Fang", "Wang Fang", "user")
    assert (first.conversation_id, first.conversation_name) == ("generic:finance-close", "finance-close")
    assert (first.source_format, first.edited) == ("generic_csv", True)
    assert first.sent_at == datetime(2024, 10, 15, 7, 12, tzinfo=UTC)
    assert first.sent_at_raw == "15/10/2024 09:12"
    assert first.tz_assumption == ("Europe/Berlin (from --timezone); day/month order DD/MM "
                                   "(a day field > 12 on line 2)")
    assert first.raw.startswith("CV-000481,finance-close,message,Wang Fang,")


def test_csv_threads_replies_multiline_and_flags():
    _, messages, _ = parse(CSV, CSV_MAP)
    multi = messages["CV-000483"]
    assert (multi.thread_id, multi.reply_to) == ("CV-000481", "CV-000482")
    assert multi.text == "Moved into FX rounding. It nets out.\nDon't reopen this before the audit."
    assert multi.locator == "line 5" and multi.raw.count("\n") == 1
    deleted = messages["CV-000487"]
    assert (deleted.deleted, deleted.text) == (True, "")
    system = messages["CV-000480"]
    assert (system.kind, system.sender_id, system.sender_kind) == ("system", None, "system")
    attachment = messages["CV-000486"]
    assert (attachment.kind, [a.name for a in attachment.attachments]) == \
        ("file", ["refund_adjustments_original.xlsx"])
    assert [(m.id, m.name) for m in messages["CV-000485"].mentions] == [("generic:Wang Fang", "Wang Fang")]
    assert messages["CV-000485"].text == "@Wang Fang can you send me the original table? 我需要原始数据。"


def test_csv_bad_time_is_one_error_with_its_line():
    _, messages, errors = parse(CSV, CSV_MAP)
    [error] = errors
    assert error.locator == "line 11" and "not recorded" in str(error) and "'Date'" in str(error)
    assert error.raw.startswith("CV-000488,")
    assert "CV-000489" in messages


# ----------------------------------------------------------------------------- the JSONL (nested, epoch ms)


def test_jsonl_values_dotted_paths_and_epoch_times():
    out, messages, errors = parse(JSONL, JSONL_MAP)
    assert (len(messages), len(errors)) == (6, 1)
    reply = messages["$Bz7pL0sNe3Ra:matrix.nimbus.example"]
    assert reply.text == "Don't write that here. This room is archived."
    assert (reply.thread_id, reply.reply_to) == ("$q1Xv9aLr2kP0:matrix.nimbus.example",
                                                 "$Wm4c2Tn8yQe1:matrix.nimbus.example")
    assert reply.sent_at == datetime(2024, 10, 18, 1, 4, 10, tzinfo=UTC)
    assert (reply.sent_at_raw, reply.tz_assumption) == ("1729213450000", "UTC (epoch milliseconds)")
    assert (reply.sender_id, reply.sender_name, reply.source_format) == \
        ("@tom.becker:matrix.nimbus.example", "Tom Becker", "generic_jsonl")
    asked = messages["$Cc1dE2fG3hI4:matrix.nimbus.example"]
    assert [(m.id, m.name) for m in asked.mentions] == [("@li.wei:matrix.nimbus.example", "Li Wei")]
    assert [item.locator for _, item in out] == [f"line {n}" for n in range(1, 8)]
    [error] = errors
    assert error.locator == "line 5" and "not valid JSON" in str(error)


# ----------------------------------------------------------------------------- the map


def test_a_missing_mapped_column_is_one_clear_error():
    out, messages, errors = parse(CSV, {**CSV_MAP, "sender": "Author"})
    assert not messages
    [error] = errors
    assert str(error) == ("column 'Author' (mapped to sender) is not in this file; columns found: Message ID, Chat, "
                          "Type, From, Date, Body, Thread, Reply To, Edited, Deleted, Attachment")
    _, _, errors = parse(JSONL, {**JSONL_MAP, "text": "content.html"})
    assert len(errors) == 1 and "'content.html' (mapped to text)" in str(errors[0])


def test_required_fields_and_unknown_fields():
    _, _, errors = parse(CSV, {})
    assert len(errors) == 1 and str(errors[0]).startswith("no column for sent_at, text: map it with --map sent_at=")
    _, _, errors = parse(CSV, {"sent_at": "Date", "text": "Body", "mood": "Type"})
    assert len(errors) == 1 and "unknown field(s) in --map: mood" in str(errors[0])


def test_columns_named_like_fields_need_no_map_and_ids_default_to_lines():
    data = "sent_at;text;sender\n2024-10-18T09:00:00+08:00;semicolons work;Ana\n2024-10-18 10:00;naive;Bo\n"
    with tempfile.TemporaryDirectory() as folder:
        out, messages, errors = parse(write(folder, "t.csv", data), {}, timezone="Asia/Shanghai")
    assert not errors
    first, second = messages["line 2"], messages["line 3"]
    assert (first.text, first.sent_at, first.tz_assumption) == \
        ("semicolons work", datetime(2024, 10, 18, 1, tzinfo=UTC), None)
    assert (second.sent_at, second.tz_assumption) == (datetime(2024, 10, 18, 2, tzinfo=UTC),
                                                      "Asia/Shanghai (from --timezone)")
    assert first.conversation_id.startswith("generic:") and first.conversation_name == "t.csv"


def test_line_ids_are_qualified_when_the_conversation_is_a_column():
    data = "when,body,room\n1729213450,epoch seconds,ops\n"
    with tempfile.TemporaryDirectory() as folder:
        column_map = {"sent_at": "when", "text": "body", "conversation": "room"}
        _, messages, _ = parse(write(folder, "t.csv", data), column_map)
    [message] = messages.values()
    assert message.native_id.endswith(":line 2") and len(message.native_id) == len("0123456789ab:line 2")
    assert (message.sent_at, message.tz_assumption) == (datetime(2024, 10, 18, 1, 4, 10, tzinfo=UTC),
                                                        "UTC (epoch seconds)")


# ----------------------------------------------------------------------------- encodings


def test_utf16_csv_is_read_when_forced():
    _, messages, errors = parse(UTF16, {"sent_at": "Date", "text": "Body", "sender": "From"})
    [message] = messages.values()
    assert not errors and message.text == "Excel re-saved this file as UTF-16 \u2014 洗白"


def test_cp1252_fallback_is_recorded_on_each_message():
    data = "Date,Body\r\n2024-10-18 09:00,caf\u00e9 \u20ac whitewash\r\n".encode("cp1252")
    with tempfile.TemporaryDirectory() as folder:
        _, messages, _ = parse(write(folder, "t.csv", data), {"sent_at": "Date", "text": "Body"})
    [message] = messages.values()
    assert message.text == "café € whitewash"
    assert message.tz_assumption == ("UTC (assumed: no --timezone given); text decoded as cp1252 "
                                     "(the file is not valid UTF-8 or UTF-16)")


def test_a_bom_is_not_part_of_the_first_column():
    data = codecs.BOM_UTF8 + b"sent_at,text\n2024-10-18 09:00,x\n"
    with tempfile.TemporaryDirectory() as folder:
        _, messages, errors = parse(write(folder, "t.csv", data), {})
    assert not errors and list(messages) == ["line 2"]


# ----------------------------------------------------------------------------- never raises


def _parse_bytes(data, name):
    with tempfile.TemporaryDirectory() as folder:
        files = [f for f in expand(str(write(folder, name, data))) if not isinstance(f, SourceError)]
        ADAPTER.sniff(files[0])
        options = ParseOptions(timezone="Europe/Berlin", column_map={"sent_at": "a", "text": "b", "sender": "c.d"})
        return list(ADAPTER.parse(files, options))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    for name in ("x.csv", "x.jsonl"):
        for _, item in _parse_bytes(data, name):
            assert isinstance(item, Message | SourceError)


_CELL = st.text(max_size=15) | st.sampled_from(["2024-10-18", "13/13/13", "1729213450", "99999999999999999",
                                                 "10/11/12 1 PM", "", "\"", "a,b", "true"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(_CELL, min_size=1, max_size=4), max_size=6), st.sampled_from([",", ";", "\t"]))
def test_arbitrary_tables_never_raise(rows, sep):
    text = "\n".join(sep.join(row) for row in [["a", "b", "c.d"], *rows])
    for _, item in _parse_bytes(text.encode("utf-8"), "x.csv"):
        assert isinstance(item, Message | SourceError)
