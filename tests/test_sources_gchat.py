"""Google Chat adapter: a Takeout folder with a space and a DM, parsed to exact values."""

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from discovery.case import Case
from discovery.ingest import ingest
from discovery.model import Message, SourceError
from discovery.sources import adapters, detect
from discovery.sources.base import ParseOptions
from discovery.sources.files import expand
from discovery.sources.gchat import ADAPTER, parse_date

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gchat" / "Takeout"
SPACE_FILE = FIXTURES / "Google Chat" / "Groups" / "Space AAAAr3fQx9E" / "messages.json"
MARK, PRIYA = "mark.ellison@nimbusledger.example", "priya.raman@nimbusledger.example"


def parse(path):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions()))
    return out, [m for _, m in out if isinstance(m, Message)], [m for _, m in out if isinstance(m, SourceError)]


def by_id(messages, native_id):
    [found] = [m for m in messages if m.native_id == native_id]
    return found


def test_fixture_counts():
    _, messages, errors = parse(FIXTURES)
    assert (len(messages), len(errors)) == (12, 1)


def test_every_fixture_file_is_claimed_by_gchat_and_nobody_outscores_it():
    for file in expand(str(FIXTURES)):
        adapter, score = detect(file)
        assert adapter is not None and adapter.name == "gchat", file.display
        assert max(a.sniff(file) for a in adapters() if a.name != "gchat") < score


@pytest.mark.parametrize(("raw", "expected"), [
    ("Tuesday, March 5, 2024 at 9:15:03\u202fAM UTC", datetime(2024, 3, 5, 9, 15, 3, tzinfo=UTC)),
    ("Thursday, November 3, 2016 at 11:59:50 AM UTC", datetime(2016, 11, 3, 11, 59, 50, tzinfo=UTC)),
    ("Tuesday, October 15, 2024 at 12:02:10\u202fPM UTC", datetime(2024, 10, 15, 12, 2, 10, tzinfo=UTC)),
    ("Tuesday, October 15, 2024 at 12:02:10\u202fAM UTC", datetime(2024, 10, 15, 0, 2, 10, tzinfo=UTC)),
    ("Tuesday, 14 March 2021 at 22:41:03 UTC", datetime(2021, 3, 14, 22, 41, 3, tzinfo=UTC)),
])
def test_dates_are_parsed_exactly(raw, expected):
    assert parse_date(raw) == (expected, None)


def test_bad_dates_are_rejected():
    bad = ("Unknown Date", "Tuesday, Smarch 5, 2024 at 9:15:03 AM UTC", "Tuesday, March 5, 2024 at 13:15:03 PM UTC")
    for raw in bad:
        with pytest.raises(ValueError):
            parse_date(raw)
    assert parse_date("March 5, 2024 at 9:15:03 AM")[1] == "UTC (the date has no zone; Takeout writes UTC)"


def test_space_threads_mentions_and_quote():
    _, messages, _ = parse(FIXTURES)
    root = by_id(messages, "AAAAr3fQx9E/Jk3vXq8Rt2M/Jk3vXq8Rt2M")
    assert (root.conversation_id, root.conversation_name, root.conversation_type) == (
        "gchat:AAAAr3fQx9E", "Refund reconciliation", "channel"
    )
    thread = [m.native_id for m in messages if m.thread_id == root.native_id]
    assert thread == [root.native_id, "AAAAr3fQx9E/Jk3vXq8Rt2M/Lw8Kp2Rz6Qm", "AAAAr3fQx9E/Jk3vXq8Rt2M/Ux3Fc7Nd1Vb"]
    mention = by_id(messages, "AAAAr3fQx9E/Jk3vXq8Rt2M/Lw8Kp2Rz6Qm")
    assert mention.text == "@王芳 make sure the sample skips the manual adjustments"
    assert [(m.id, m.name, m.key) for m in mention.mentions] == [("104857321098765432109", "王芳", "@王芳")]
    quote = by_id(messages, "AAAAr3fQx9E/pQ9wLm4Zs7A/Mq6Hs0Jt4Wy")
    assert quote.reply_to == "AAAAr3fQx9E/pQ9wLm4Zs7A/pQ9wLm4Zs7A"
    assert quote.text == ("They're timing differences, already reconciled. Drop it.\n"
                          "Why are the 214 manual rows excluded from the sample? This looks like a whitewash.")
    assert by_id(messages, "AAAAr3fQx9E/cF8mZ2rV6kS/cF8mZ2rV6kS").thread_id is None  # a topic of one


def test_edit_deletion_attachment_reaction_bot_and_times():
    _, messages, _ = parse(FIXTURES)
    edited = by_id(messages, "AAAAr3fQx9E/pQ9wLm4Zs7A/pQ9wLm4Zs7A")
    assert edited.edited and edited.edited_at == datetime(2024, 10, 15, 14, 3, 40, tzinfo=UTC)
    assert "previous_message_versions" in edited.raw
    assert edited.sent_at_raw == "Tuesday, October 15, 2024 at 2:02:10\u202fPM UTC"
    assert edited.sent_at == datetime(2024, 10, 15, 14, 2, 10, tzinfo=UTC) and edited.tz_assumption is None
    deleted = by_id(messages, "AAAAr3fQx9E/hT5yW0qP3uN/hT5yW0qP3uN")
    assert (deleted.deleted, deleted.text, deleted.sender_id) == (True, "", MARK)
    sample = by_id(messages, "AAAAr3fQx9E/xR2nB6vK1cE/xR2nB6vK1cE")
    [attachment] = sample.attachments
    assert (attachment.name, attachment.key) == ("Harwell_sample_v2.xlsx", "File-Harwell_sample_v2.xlsx")
    assert [(r.emoji, r.count, r.users) for r in sample.reactions] == [("👀", 1, [MARK])]
    bot = by_id(messages, "AAAAr3fQx9E/cF8mZ2rV6kS/cF8mZ2rV6kS")
    assert (bot.sender_id, bot.sender_name, bot.sender_kind) == (None, "Audit Tracker", "bot")


def test_dm_with_day_first_dates():
    _, messages, _ = parse(FIXTURES)
    dm = [m for m in messages if m.conversation_id == "gchat:2kq6NwAAAAE"]
    assert len(dm) == 3 and {m.conversation_name for m in dm} == {"DM: Priya Raman, 王芳"}
    assert dm[0].sent_at_raw == "Tuesday, 15 October 2024 at 22:41:03 UTC"
    assert dm[0].sent_at == datetime(2024, 10, 15, 22, 41, 3, tzinfo=UTC)
    assert (dm[0].sender_id, dm[0].conversation_type) == (PRIYA, "dm")


def test_locators_resolve_and_malformed_record_is_reported():
    out, _, [error] = parse(FIXTURES)
    for file, item in out:
        with file.open() as stream:
            document = json.load(stream)
        assert document["messages"][int(item.locator.removeprefix("/messages/"))] == json.loads(item.raw)
    assert error.locator == "/messages/8" and "Unknown Date" in str(error)


def test_truncated_messages_json_keeps_what_came_before(tmp_path):
    group = tmp_path / "Space X"
    group.mkdir()
    good = SPACE_FILE.read_bytes()
    (group / "messages.json").write_bytes(good[: good.index(b'"created_date": "Wednesday')])
    _, messages, [error] = parse(tmp_path)
    assert len(messages) == 5 and "invalid or truncated JSON" in str(error) and error.locator.startswith("byte ")


_KEYS = st.sampled_from(["messages", "creator", "created_date", "updated_date", "text", "topic_id", "message_id",
                         "annotations", "attached_files", "reactions", "quoted_message_metadata", "message_state",
                         "user_mention_metadata", "start_index", "length", "previous_message_versions"])
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.sampled_from(["Tuesday, March 5, 2024 at 9:15:03\u202fAM UTC", "DELETED", "Bot"]),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(_KEYS | st.text(max_size=5), kids, max_size=6),
    max_leaves=30,
)


def _parse_bytes(data: bytes) -> list:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "Space X").mkdir()
        (Path(folder) / "Space X" / "messages.json").write_bytes(data)
        (Path(folder) / "Space X" / "group_info.json").write_bytes(data)
        files = list(expand(folder))
        for file in files:
            ADAPTER.sniff(file)
        return list(ADAPTER.parse(files))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    assert all(isinstance(item, Message | SourceError) for _, item in _parse_bytes(data))


@settings(max_examples=50, deadline=None)
@given(_JSONISH)
def test_arbitrary_json_never_raises(value):
    for document in (value, {"messages": [value, value], "members": [value]}):
        assert all(isinstance(i, Message | SourceError) for _, i in _parse_bytes(json.dumps(document).encode()))


def test_ingest_end_to_end(tmp_path):
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(FIXTURES)])
    assert (report.messages_added, report.exceptions) == (12, 1)
    stats = case.stats()
    assert (stats["messages"], stats["conversations"], stats["sources"], stats["exceptions"]) == (12, 2, 5, 1)
    case.close()
