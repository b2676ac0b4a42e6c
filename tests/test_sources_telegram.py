"""Telegram Desktop result.json: single-chat and whole-account exports parsed to exact values."""

import io
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from discovery.model import Message, SourceError
from discovery.sources import detect
from discovery.sources.base import ParseOptions
from discovery.sources.files import expand
from discovery.sources.telegram import ADAPTER, _EscapeRepair

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SINGLE = FIXTURES / "telegram" / "ChatExport_2024-10-20" / "result.json"
ACCOUNT = FIXTURES / "telegram" / "DataExport_2024-10-21" / "result.json"
TRUNCATED = FIXTURES / "broken" / "truncated_telegram_result.json"


def parse(path, timezone=None):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions(timezone=timezone)))
    messages = {m.native_id: m for _, m in out if isinstance(m, Message)}
    errors = [m for _, m in out if isinstance(m, SourceError)]
    return out, messages, errors


def repaired_document(path):
    with open(path, "rb") as raw:
        return json.loads(_EscapeRepair(raw).read(10**7))


def resolve(document, pointer):
    for part in pointer.split("/")[1:]:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


# ----------------------------------------------------------------------------- routing and counts


def test_the_auction_gives_both_shapes_to_telegram():
    for path in (SINGLE, ACCOUNT, TRUNCATED):
        [file] = list(expand(str(path)))
        adapter, score = detect(file)
        assert adapter is ADAPTER and score >= 90


def test_the_exports_media_files_are_claimed_and_read_through_result_json():
    files = list(expand(str(SINGLE.parent)))
    assert [(f.name, detect(f)) for f in files] == [("photo_1@08-10-2024_22-58-20.jpg", (ADAPTER, 30)),
                                                    ("result.json", (ADAPTER, 90))]
    assert {file.name for file, _ in ADAPTER.parse(files)} == {"result.json"}


def test_media_sizes_come_from_the_files_when_the_json_has_none(tmp_path):
    record = {"id": 1, "type": "message", "date": "2024-10-08T22:58:20", "date_unixtime": "1728399500",
              "from": "Li Wei", "from_id": "user6021933847", "file": "files/refund table.xlsx", "text": ""}
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "refund table.xlsx").write_bytes(b"PK" + b"\x00" * 98)
    (tmp_path / "files" / "unrelated.txt").write_text("not named by result.json")
    (tmp_path / "result.json").write_text(json.dumps({"name": "x", "type": "personal_chat", "id": 1,
                                                      "messages": [record]}))
    files = list(expand(str(tmp_path)))
    assert [detect(f)[0] for f in files] == [ADAPTER, None, ADAPTER]
    [(_, message)] = list(ADAPTER.parse([files[0], files[2]]))
    assert [(a.name, a.size, a.key) for a in message.attachments] == \
        [("refund table.xlsx", 100, "files/refund table.xlsx")]


def test_fixture_counts():
    _, messages, errors = parse(SINGLE)
    assert (len(messages), len(errors)) == (19, 1)
    _, messages, errors = parse(ACCOUNT)
    assert (len(messages), len(errors)) == (14, 1)


def test_every_locator_resolves_to_its_record():
    for path in (SINGLE, ACCOUNT):
        document = repaired_document(path)
        for _, item in parse(path)[0]:
            assert json.loads(item.raw) == resolve(document, item.locator)


# ----------------------------------------------------------------------------- single chat


def test_text_entities_are_flattened_with_mentions_and_links():
    _, messages, _ = parse(SINGLE)
    assert messages["3"].text == "OK. I'll whitewash the refund table tonight and re-export Q3_audit_report.final.xlsx."
    four = messages["4"]
    assert four.text == ("@Li Wei the debug logs are still in the audit bucket "
                         "(https://s3.console.example/atlas-debug-logs), 90 days retention.")
    assert [(m.id, m.name) for m in four.mentions] == [("user6021933847", "Li Wei")]
    assert messages["15"].text.startswith("@priya_raman_qa asked me")
    assert [(m.id, m.name, m.key) for m in messages["15"].mentions] == [(None, "priya_raman_qa", "@priya_raman_qa")]
    assert messages["16"].text == "Tell her it's standard housekeeping. Don't use the word whitewash anywhere."


def test_times_come_from_date_unixtime_and_keep_the_local_date():
    _, messages, _ = parse(SINGLE)
    three = messages["3"]
    assert three.sent_at == datetime(2024, 10, 8, 14, 43, 12, tzinfo=UTC)
    assert three.sent_at_raw == "1728398592"
    assert three.tz_assumption == ("UTC (date_unixtime, epoch seconds; date '2024-10-08T22:43:12' is the "
                                   "exporting PC's local time)")


def test_replies_edits_and_ids():
    _, messages, _ = parse(SINGLE)
    five = messages["5"]
    assert (five.reply_to, five.thread_id, five.edited) == ("3", None, True)
    assert five.edited_at == datetime(2024, 10, 8, 14, 47, 30, tzinfo=UTC)
    assert five.text == "Good. 洗白之后没人会问。"
    assert (five.conversation_id, five.conversation_name, five.conversation_type) == \
        ("telegram:2231907745", "Atlas off-record", "group")
    assert (five.sender_id, five.sender_name, five.sender_kind) == ("user5310472211", "Mark Ellison", "user")
    assert messages["13"].reply_to == "12"


def test_included_media_and_placeholders():
    _, messages, _ = parse(SINGLE)
    photo = messages["6"]
    assert (photo.kind, photo.text) == ("image", "before/after of the refund table")
    assert [(a.name, a.type, a.size, a.key) for a in photo.attachments] == \
        [("photo_1@08-10-2024_22-58-20.jpg", "image", 141, "photos/photo_1@08-10-2024_22-58-20.jpg")]
    log = messages["7"]
    assert (log.kind, log.text) == ("file", "")
    assert [(a.name, a.type, a.size, a.key) for a in log.attachments] == \
        [("atlas-debug-2024-10-08.log.gz", "file", 48213, None)]
    sticker = messages["10"]
    assert (sticker.kind, sticker.text, sticker.attachments[0].type) == ("sticker", "", "sticker")
    assert "File not included" not in " ".join(m.text for m in messages.values())


def test_service_messages_are_the_systems_voice():
    _, messages, _ = parse(SINGLE)
    created = messages["1"]
    assert (created.kind, created.sender_kind, created.sender_id) == ("service", "system", None)
    assert created.text == "Mark Ellison created group \u201cAtlas off-record\u201d with Li Wei, Tom Becker"
    assert messages["11"].text == "Mark Ellison added Chen Jing"
    assert messages["18"].text == "Chen Jing pinned message 17"


def test_reactions_polls_and_forwards():
    _, messages, _ = parse(SINGLE)
    [reaction] = messages["13"].reactions
    assert (reaction.emoji, reaction.count, reaction.users) == ("👍", 2, ["user5799310462", "user6021933847"])
    poll = messages["14"]
    assert (poll.kind, poll.text) == ("poll", "Do we tell Priya about the cleanup?\nYes, today\nAfter the audit")
    assert messages["17"].kind == "forward"


def test_invalid_control_escapes_are_repaired_and_recorded():
    _, messages, _ = parse(SINGLE)
    eight = messages["8"]
    assert eight.text == "pasted from the job log: refund_job ERROR\x07 manual_adjustment id=4471"
    assert eight.tz_assumption.endswith("repaired Telegram's invalid \\xHH escape(s) for control bytes "
                                        "before reading the JSON")
    assert "repaired" not in messages["9"].tz_assumption


def test_a_malformed_record_is_one_error_and_the_rest_is_read():
    out, messages, errors = parse(SINGLE)
    [error] = errors
    assert error.locator == "/messages/18"
    assert "2024-10-17T16:4" in error.raw and "Invalid isoformat" in str(error)
    assert "20" in messages  # the record after it


# ----------------------------------------------------------------------------- whole account


def test_whole_account_local_dates_use_the_timezone_given():
    _, messages, _ = parse(ACCOUNT, timezone="Asia/Shanghai")
    first = messages["201"]
    assert first.sent_at == datetime(2024, 10, 9, 1, 58, tzinfo=UTC)
    assert first.sent_at_raw == "2024-10-09T09:58:00"
    assert first.tz_assumption == "Asia/Shanghai (from --timezone); Telegram date has no offset"
    assert messages["205"].edited_at == datetime(2024, 10, 9, 2, 20, 41, tzinfo=UTC)


def test_whole_account_without_a_timezone_records_the_utc_assumption():
    _, messages, _ = parse(ACCOUNT)
    first = messages["201"]
    assert first.sent_at == datetime(2024, 10, 9, 9, 58, tzinfo=UTC)
    assert first.tz_assumption == "UTC (assumed: no --timezone given); Telegram date has no offset"


def test_whole_account_chats_ids_and_kinds():
    _, messages, errors = parse(ACCOUNT)
    assert messages["202"].sender_id == "user5799310462"  # old exports: a bare int from_id
    assert (messages["201"].conversation_id, messages["201"].conversation_type) == ("telegram:6021933847", "dm")
    call = messages["203"]
    assert (call.kind, call.text, call.sender_kind) == ("call", "Tom Becker phone call (312 s, hangup)", "system")
    assert messages["302"].sender_kind == "bot" and messages["301"].sender_kind == "user"
    assert messages["401"].conversation_name == "Saved Messages"
    assert messages["206"].text == "Thanks @Tom. After this the numbers are whitewashed 😅"
    assert messages["601"].locator == "/left_chats/list/0/messages/0"
    [error] = errors
    assert (error.locator, error.raw) == ("/chats/list/0/messages/6", '{"id":207,"type":"unsupported"}')


def test_forum_topics_are_threads_and_replies_stay_replies():
    _, messages, _ = parse(ACCOUNT)
    assert (messages["502"].thread_id, messages["502"].reply_to) == ("501", None)
    assert (messages["503"].thread_id, messages["503"].reply_to) == (None, "502")


def test_a_truncated_export_keeps_what_came_before():
    _, messages, errors = parse(TRUNCATED)
    assert sorted(messages, key=int) == [str(n) for n in range(1, 9)]
    [error] = errors
    assert "invalid JSON after 8 messages" in str(error)


def test_an_unknown_timezone_is_reported_and_utc_used():
    out, messages, errors = parse(ACCOUNT, timezone="Mars/Olympus")
    assert "unknown time zone 'Mars/Olympus'" in str(errors[0])
    assert messages["201"].tz_assumption.startswith("UTC (assumed: unknown time zone")


# ----------------------------------------------------------------------------- the escape repair


class _Trickle(io.RawIOBase):
    """A stream that returns one byte per read, to put every escape across a chunk boundary."""

    def __init__(self, data):
        self.data = data

    def read(self, size=-1):
        chunk, self.data = self.data[:1], self.data[1:]
        return chunk


def _repair(data, trickle=False):
    stream = _EscapeRepair(_Trickle(data) if trickle else io.BytesIO(data))
    out = b""
    while chunk := stream.read(8):
        out += chunk
    return out, stream.repairs


def test_escape_repair_leaves_escaped_backslashes_alone():
    data = rb'{"a": "x\x07y \\x41 \\\x1f"}'
    for trickle in (False, True):
        out, repairs = _repair(data, trickle)
        assert out == rb'{"a": "x\u0007y \\x41 \\\u001f"}' and repairs == 2
        assert json.loads(out) == {"a": "x\x07y \\x41 \\\x1f"}


# ----------------------------------------------------------------------------- never raises


def _parse_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "result.json"
        path.write_bytes(data)
        files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
        ADAPTER.sniff(files[0])
        return list(ADAPTER.parse(files, ParseOptions(timezone="Europe/Berlin")))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(data):
    for _, item in _parse_bytes(data):
        assert isinstance(item, Message | SourceError)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = st.sampled_from(["id", "type", "date", "date_unixtime", "from", "from_id", "text", "text_entities",
                           "edited", "edited_unixtime", "reply_to_message_id", "photo", "file", "poll",
                           "reactions", "action", "members", "media_type", "contact_information"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(_FIELDS, _JSON, max_size=8), max_size=5), _JSON)
def test_arbitrary_telegram_shaped_records_never_raise(records, chat_id):
    data = json.dumps({"name": "x", "type": "private_group", "id": chat_id, "messages": records})
    for _, item in _parse_bytes(data.encode()):
        assert isinstance(item, Message | SourceError)
