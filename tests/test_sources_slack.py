"""Slack adapter: the current folder export and the older zip export, parsed to exact values."""

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
from discovery.sources._slack_text import Renderer
from discovery.sources.base import ParseOptions
from discovery.sources.files import expand
from discovery.sources.slack import ADAPTER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slack"
CURRENT = FIXTURES / "nimbusledger_export_2024-10"
LEGACY = FIXTURES / "nimbus_finance_legacy_export.zip"


def parse(path):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions()))
    messages = [m for _, m in out if isinstance(m, Message)]
    errors = [m for _, m in out if isinstance(m, SourceError)]
    return out, messages, errors


def one(messages, needle):
    found = [m for m in messages if needle in m.text]
    assert len(found) == 1, (needle, [m.text for m in found])
    return found[0]


def by_ts(messages, ts):
    [found] = [m for m in messages if m.native_id == ts]
    return found


def pointer_get(document, locator):
    for part in locator.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


# ----------------------------------------------------------------------------- counts and routing


def test_fixture_counts():
    _, messages, errors = parse(CURRENT)
    assert (len(messages), len(errors)) == (21, 1)
    _, messages, errors = parse(LEGACY)
    assert (len(messages), len(errors)) == (8, 1)


def test_every_fixture_file_is_claimed_by_slack_and_nobody_outscores_it():
    for path in (CURRENT, LEGACY):
        for file in expand(str(path)):
            adapter, score = detect(file)
            assert adapter is not None and adapter.name == "slack", file.display
            others = [a.sniff(file) for a in adapters() if a.name != "slack"]
            assert max(others) < score, file.display


# ----------------------------------------------------------------------------- content


def test_mrkdwn_mentions_links_and_escapes_are_resolved():
    _, messages, _ = parse(CURRENT)
    root = by_ts(messages, "1727780400.000200")
    assert root.text == (
        "@here Before Harwell & Stone show up on the 21st we need to whitewash the refund-svc logs. Plan is on "
        "the audit prep page (https://nimbusledger.atlassian.net/wiki/spaces/ATLAS/pages/884); details in #audit-prep."
    )
    reply = by_ts(messages, "1727780851.000400")
    assert reply.text == "@Mark Ellison 收到，debug logs 今晚清理 :broom:"
    assert [(m.id, m.name, m.key) for m in reply.mentions] == [("U07MEL1K2RS", "Mark Ellison", "<@U07MEL1K2RS>")]
    retention = by_ts(messages, "1727781605.000500")
    assert "on their own > nobody deletes" in retention.text
    fang = one(messages, "214 行")
    assert fang.text.endswith("🙈 @finance-team 请确认")


def test_threads_are_rebuilt_across_day_files_and_kept_apart_from_reply_to():
    _, messages, _ = parse(CURRENT)
    thread = [m for m in messages if m.thread_id == "1727780400.000200"]
    assert [m.native_id for m in thread] == [
        "1727780400.000200", "1727780851.000400", "1727831744.000100", "1727832669.000300"
    ]
    assert {m.locator for m in thread[2:]} == {"/0", "/1"}  # in the next day's file
    assert all(m.reply_to is None for m in messages)
    assert by_ts(messages, "1727781605.000500").thread_id is None


def test_sender_name_is_the_send_time_name_and_mentions_use_export_time_names():
    _, messages, _ = parse(CURRENT)
    tom = by_ts(messages, "1727781605.000500")
    assert (tom.sender_id, tom.sender_name, tom.sender_kind) == ("U07TB3K7C9E", "Tom B.", "user")
    assert json.loads(tom.raw)["user_profile"]["display_name"] == "Tom B."
    group = one(messages, "never talk about this")
    assert group.text == "@Tom Becker @李伟 thanks both. Let's never talk about this outside this group."
    assert [m.name for m in group.mentions] == ["Tom Becker", "李伟"]


def test_edits_deletions_and_system_messages():
    _, messages, _ = parse(CURRENT)
    edited = by_ts(messages, "1727781605.000500")
    assert edited.edited and edited.edited_at == datetime(2024, 10, 1, 11, 24, 40, tzinfo=UTC)
    tombstone = by_ts(messages, "1727838720.000800")
    assert (tombstone.deleted, tombstone.text, tombstone.sender_kind) == (True, "", "system")
    assert "This message was deleted." in tombstone.raw
    assert by_ts(messages, "1727840427.000900").thread_id == "1727838720.000800"  # the reply survives
    join = one(messages, "has joined the channel")
    assert (join.kind, join.sender_kind, join.sender_id) == ("system", "system", None)
    assert join.text == "@Sofia Marquez has joined the channel"
    leave = one(messages, "has left the channel")
    assert leave.text == "@Priya Raman has left the channel" and leave.kind == "system"


def test_bot_text_from_attachments_and_blocks():
    _, messages, _ = parse(CURRENT)
    jenkins = one(messages, "log-retention-job #418")
    assert (jenkins.sender_id, jenkins.sender_name, jenkins.sender_kind) == ("B07JNK5B0T1", "Jenkins", "bot")
    assert jenkins.text == (
        "log-retention-job #418: SUCCESS\nDeleted 12,408 log files older than 7 days from `refund-svc-prod`\n"
        "Triggered by: tom.becker"
    )
    reminder = one(messages, "Reminder:")
    assert reminder.text == "*Reminder:* Harwell & Stone fieldwork starts in *18 days* (Oct 21)\nOwner: @Mark Ellison"
    assert reminder.sender_name == "Audit Reminder"


def test_files_and_reactions():
    _, messages, _ = parse(CURRENT)
    script = one(messages, "cleanup script")
    [attachment] = script.attachments
    assert (attachment.name, attachment.type, attachment.size, attachment.key) == (
        "cleanup_refund_logs.sh", "file", 2231, "F07RFCL3AN9"
    )
    [reaction] = by_ts(messages, "1727780400.000200").reactions
    assert (reaction.emoji, reaction.count, reaction.users) == ("eyes", 2, ["U07LW9P3T6X", "U07PR2M5H8D"])


def test_conversations_and_times():
    _, messages, _ = parse(CURRENT)
    conversations = {(m.conversation_id, m.conversation_name, m.conversation_type) for m in messages}
    assert conversations == {
        ("slack:C07GEN0A1B2", "general", "channel"),
        ("slack:C07M2K4R8TZ", "atlas-eng", "channel"),
        ("slack:C07N5QW2H3L", "audit-prep", "channel"),
        ("slack:D07MLW8C2K5", "DM: Mark Ellison, 李伟", "dm"),
        ("slack:C07MPDM9X1Y", "Group DM: Mark Ellison, 李伟, Tom Becker", "group"),
    }
    first = by_ts(messages, "1727773200.000100")
    assert first.sent_at == datetime(2024, 10, 1, 9, 0, 0, 100, tzinfo=UTC)
    assert (first.sent_at_raw, first.tz_assumption, first.source_format) == (
        "1727773200.000100", "UTC (epoch seconds)", "slack_export"
    )


def test_locators_resolve_to_the_record_and_raw_is_the_record():
    out, _, _ = parse(CURRENT)
    for file, item in out:
        with file.open() as stream:
            document = json.load(stream)
        assert pointer_get(document, item.locator) == json.loads(item.raw)


def test_malformed_records_are_reported_and_the_rest_parsed():
    out, _, errors = parse(CURRENT)
    [(file, error)] = [(f, m) for f, m in out if isinstance(m, SourceError)]
    assert file.name == "2024-10-02.json" and error.locator == "/5"
    assert str(error) == "message has no ts string"
    assert json.loads(error.raw)["text"] == "refund variance spreadsheet is on the shared drive"
    _, _, [legacy_error] = parse(LEGACY)
    assert legacy_error.locator == "/1" and "ts is not a string" in str(legacy_error)


def test_legacy_zip_export_shapes():
    _, messages, _ = parse(LEGACY)
    assert {m.conversation_id for m in messages} == {"slack:C1H9RESFX"}
    root = one(messages, "pls whitewash")
    assert root.text == (
        "@王芳 pls whitewash the Q3 refund variance before the auditors see it & send me "
        "the Q3 deck (https://nimbusfinance.example/decks/q3)"
    )
    assert [(r.emoji, r.count) for r in root.reactions] == [("eyes", 1)]  # old exports have no count
    upload = one(messages, "uploaded a file")
    assert upload.kind == "file" and upload.attachments[0].name == "refund_variance_q3.xlsx"
    assert upload.attachments[0].size == 48213
    mailto = one(messages, "stays off this thread")
    assert mailto.text == (
        "thx. <audit.team@harwellstone.example> stays off this thread: audit.team@harwellstone.example"
    )
    purpose = one(messages, "set the channel purpose")
    assert purpose.kind == "system"
    bot = one(messages, "JE-20931")
    assert bot.sender_kind == "bot" and "Reclassed $380,000" in bot.text


def test_mrkdwn_token_forms():
    renderer = Renderer(lambda uid: {"U1": "Ann"}.get(uid), lambda cid: {"C1": "ops"}.get(cid))
    assert renderer.mrkdwn("<@U1> <@U9|bob> <#C1> <#C9|x>") == "@Ann @bob #ops #x"
    assert renderer.mrkdwn("<!subteam^S1> <!date^1700000000^{date}|Nov 14> <!everyone>") == "@S1 Nov 14 @everyone"
    assert renderer.mrkdwn("<https://a.b/c?x=1&amp;y=2> &lt;b&gt; &amp;amp;") == "https://a.b/c?x=1&y=2 <b> &amp;"


def test_truncated_day_file_is_one_error_with_position(tmp_path):
    folder = tmp_path / "general"
    folder.mkdir()
    (folder / "2024-10-01.json").write_text('[{"type": "message", "ts": "1727773200.000100", "text": "hi"')
    (folder / "2024-10-02.json").write_text('[{"type": "message", "ts": "1727859600.000100", "text": "ok"}]')
    _, messages, errors = parse(tmp_path)
    assert [m.text for m in messages] == ["ok"]
    [error] = errors
    assert "invalid or truncated JSON" in str(error) and error.locator.startswith("line 1 column")


# ----------------------------------------------------------------------------- robustness

_KEYS = st.sampled_from(["ts", "text", "user", "subtype", "thread_ts", "edited", "files", "reactions", "blocks",
                         "attachments", "elements", "type", "user_profile", "name", "users", "count", "hidden"])
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["1727773200.000100", "rich_text", "text", "user", "<@U1|x> <!here> &amp;", "tombstone"]),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(_KEYS | st.text(max_size=5), kids, max_size=6),
    max_leaves=30,
)


def _parse_bytes(data: bytes) -> list:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "general").mkdir()
        for name in ("general/2024-10-01.json", "users.json", "channels.json"):
            (Path(folder) / name).write_bytes(data)
        files = [f for f in expand(folder) if not isinstance(f, SourceError)]
        for file in files:
            ADAPTER.sniff(file)
        return list(ADAPTER.parse(files))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    for _, item in _parse_bytes(data):
        assert isinstance(item, Message | SourceError)


@settings(max_examples=50, deadline=None)
@given(_JSONISH)
def test_arbitrary_json_never_raises(value):
    for _, item in _parse_bytes(json.dumps(value).encode()):
        assert isinstance(item, Message | SourceError)
        if isinstance(item, Message):
            assert item.sent_at.tzinfo is not None


def test_ingest_end_to_end(tmp_path):
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(CURRENT), str(LEGACY)])
    assert (report.messages_added, report.exceptions) == (29, 2)
    stats = case.stats()
    assert (stats["messages"], stats["conversations"], stats["sources"], stats["exceptions"]) == (29, 6, 17, 2)
    case.close()
