"""Teams adapter: a Graph chatMessage page and a Teams data export tool folder, parsed to exact values."""

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from discovery.case import Case
from discovery.ingest import ingest
from discovery.model import Message, SourceError
from discovery.sources import adapters, detect
from discovery.sources._html import html_to_text
from discovery.sources._times import iso_to_utc
from discovery.sources.base import ParseOptions
from discovery.sources.files import expand
from discovery.sources.teams import ADAPTER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "teams"
GRAPH = FIXTURES / "graph"
TOOL = FIXTURES / "export_tool"
CHAT = "teams:19:6f1e2b9c4d8a4e7f9b0c3d5e7a1f2b4c@thread.v2"
MARK = "a1c9e0b2-5d47-4f8e-9b31-2e6f0c7d4a18"
TOM = "c4e8a2d6-7f13-4b5c-a9e0-1d3b6f8c2e37"


def parse(path):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions()))
    return out, [m for _, m in out if isinstance(m, Message)], [m for _, m in out if isinstance(m, SourceError)]


def by_id(messages, native_id):
    [found] = [m for m in messages if m.native_id == native_id]
    return found


def pointer_get(document, locator):
    for part in locator.split("/")[1:]:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_fixture_counts():
    _, messages, errors = parse(GRAPH)
    assert (len(messages), len(errors)) == (13, 1)
    _, messages, errors = parse(TOOL)
    assert (len(messages), len(errors)) == (7, 1)


def test_every_fixture_file_is_claimed_by_teams_and_nobody_outscores_it():
    for path in (GRAPH, TOOL):
        for file in expand(str(path)):
            adapter, score = detect(file)
            assert adapter is not None and adapter.name == "teams", file.display
            assert max(a.sniff(file) for a in adapters() if a.name != "teams") < score


def test_graph_html_mentions_and_conversation():
    _, messages, _ = parse(GRAPH)
    mark = by_id(messages, "1728288130123")
    assert mark.text == (
        "Team, Harwell & Stone arrive 10/21. @Tom Becker please confirm refund-svc log retention is at 7 days."
    )
    assert [(m.id, m.name, m.key) for m in mark.mentions] == [(TOM, "Tom Becker", '<at id="0">')]
    assert (mark.conversation_id, mark.conversation_name, mark.conversation_type) == (CHAT, "Atlas audit prep", "group")
    assert (mark.source_format, mark.sender_id, mark.sender_name, mark.sender_kind) == (
        "teams_graph", MARK, "Mark Ellison", "user"
    )
    fang = by_id(messages, "1728288690500")
    assert fang.text == "refund 差异我已经按 timing difference 处理了 🙈"  # &nbsp; and <emoji alt>
    assert [(r.emoji, r.count, r.users) for r in fang.reactions] == [("like", 1, [MARK])]


def test_quoted_reply_edit_deletion_and_file():
    _, messages, _ = parse(GRAPH)
    reply = by_id(messages, "1728288344908")
    assert reply.reply_to == "1728288130123" and reply.thread_id is None
    assert reply.text == "Confirmed, 7 days since last Tuesday. Anything older is already gone."
    priya = by_id(messages, "1728294000000")
    assert priya.edited and priya.edited_at == datetime(2024, 10, 7, 9, 43, 12, 776000, tzinfo=UTC)
    assert 'is not "normalization"' in priya.text
    deleted = by_id(messages, "1728294115002")
    assert (deleted.deleted, deleted.text, deleted.edited) == (True, "", False)
    [file] = by_id(messages, "1728295517440").attachments
    assert (file.name, file.type) == ("Refund_Variance_Q3_v7_FINAL.xlsx", "file")
    assert file.key.endswith("/Audit/Refund_Variance_Q3_v7_FINAL.xlsx")


def test_system_events_bot_card_and_seven_digit_times():
    _, messages, _ = parse(GRAPH)
    added = by_id(messages, "1728288001204")
    assert (added.kind, added.sender_kind, added.sender_id) == ("system", "system", None)
    assert added.text == "Mark Ellison added Priya Raman, Tom Becker, 王芳 to the conversation."
    assert by_id(messages, "1728288009870").text == 'Mark Ellison renamed the chat to "Atlas audit prep".'
    assert by_id(messages, "1728379845910").text == "Call ended after 12m 4s. Participants: Mark Ellison, Tom Becker."
    card = by_id(messages, "1728302400017")
    assert (card.kind, card.sender_name, card.sender_kind) == ("card", "Audit Tracker", "bot")
    assert card.text.startswith("Audit readiness: 3 open items\nrefund-svc-prod log retention\n7 days (changed Oct 1)")
    seven = by_id(messages, "1728302631123")
    assert seven.sent_at_raw == "2024-10-07T12:03:51.1234567Z"
    assert seven.sent_at == datetime(2024, 10, 7, 12, 3, 51, 123456, tzinfo=UTC)
    assert seven.tz_assumption is None
    assert by_id(messages, "1728294000000").sent_at == datetime(2024, 10, 7, 9, 40, tzinfo=UTC)  # no fraction


def test_export_tool_threads_names_and_casing():
    _, messages, _ = parse(TOOL)
    assert {m.source_format for m in messages} == {"teams_export_tool"}
    root = by_id(messages, "1728900000123")
    assert root.conversation_name == "Atlas Finance / Audit Readiness" and root.conversation_type == "channel"
    thread = [m.native_id for m in messages if m.thread_id == "1728900000123"]
    assert thread == ["1728900000123", "1728900312004", "1728900640210", "1728900700000"]
    tom = by_id(messages, "1728900312004")
    assert tom.text == "@Mark Ellison cleanup is finished, nothing older than 7 days remains."
    assert tom.sent_at == datetime(2024, 10, 14, 10, 5, 12, 4000, tzinfo=UTC)
    assert tom.sent_at_raw == "2024-10-14T10:05:12.004+00:00"
    assert by_id(messages, "1728900640210").text == "我这边的 refund 报表也已经洗白了，和 Harwell 的样本对得上。"
    assert by_id(messages, "1728900700000").deleted
    system = by_id(messages, "1728640800000")
    assert system.text == "Mark Ellison added 王芳, Tom Becker to the conversation." and system.thread_id is None
    sofia = by_id(messages, "1728903900050")
    assert sofia.thread_id == "1728903600777" and sofia.reply_to is None


def test_locators_resolve_to_the_record():
    for path in (GRAPH, TOOL):
        out, _, _ = parse(path)
        for file, item in out:
            with file.open() as stream:
                assert pointer_get(json.load(stream), item.locator) == json.loads(item.raw)


def test_malformed_records_are_reported():
    _, _, [error] = parse(GRAPH)
    assert error.locator == "/value/0" and "createdDateTime" in str(error)
    _, _, [error] = parse(TOOL)
    assert error.locator == "/7" and str(error) == "message has no id (got None)"


def test_html_and_times_helpers():
    rendered = html_to_text('<div>a&nbsp;<at id="1">Jane Doe</at></div><div><a href="https://x.y">see</a><br>'
                            '<attachment id="9"></attachment><img src="https://h/$value"></div>')
    assert (rendered.text, rendered.mentions, rendered.attachment_ids, rendered.images) == (
        "a @Jane Doe\nsee (https://x.y)", {"1": "Jane Doe"}, ["9"], ["https://h/$value"]
    )
    assert iso_to_utc("2025-10-09T13:03:04+00:00") == datetime(2025, 10, 9, 13, 3, 4, tzinfo=UTC)
    assert iso_to_utc("2024-01-01T08:00:00.1+08:00") == datetime(2024, 1, 1, 0, 0, 0, 100000, tzinfo=UTC)


_KEYS = st.sampled_from(["id", "createdDateTime", "messageType", "body", "content", "contentType", "from", "user",
                         "attachments", "mentions", "reactions", "eventDetail", "chatId", "value", "Id", "Body"])
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.sampled_from(["2024-10-07T08:00:01.2041234Z", "html", "<at id='0'>x</at>", "messageReference"]),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(_KEYS | st.text(max_size=5), kids, max_size=6),
    max_leaves=30,
)


def _parse_bytes(data: bytes) -> list:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "page.json").write_bytes(data)
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
    for document in (value, {"@odata.context": "chats('19%3Ax')/messages", "value": [value]}):
        assert all(isinstance(item, Message | SourceError) for _, item in _parse_bytes(json.dumps(document).encode()))


def test_ingest_end_to_end(tmp_path):
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(GRAPH), str(TOOL)])
    assert (report.messages_added, report.exceptions) == (20, 2)
    stats = case.stats()
    assert (stats["messages"], stats["conversations"], stats["sources"], stats["exceptions"]) == (20, 3, 6, 2)
    case.close()
