"""Discord adapter: DiscordChatExporter JSON and CSV fixtures, parsed to exact values."""

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
from discovery.sources.base import ParseOptions
from discovery.sources.discord import ADAPTER
from discovery.sources.files import expand

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discord"
JSON_FILE = FIXTURES / "Nimbus After Hours - ops - backchannel [1293847561029384756].json"
CSV_FILE = FIXTURES / "Nimbus After Hours - ops - infra [1293850012345678901].csv"
MARK, LI_WEI, TOM = "1041234567890123456", "1052345678901234567", "1063456789012345678"


def parse(path, options=None):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, options or ParseOptions()))
    return out, [m for _, m in out if isinstance(m, Message)], [m for _, m in out if isinstance(m, SourceError)]


def one(messages, needle):
    [found] = [m for m in messages if needle in m.text]
    return found


def test_fixture_counts():
    _, messages, errors = parse(JSON_FILE)
    assert (len(messages), len(errors)) == (12, 1)
    _, messages, errors = parse(CSV_FILE)
    assert (len(messages), len(errors)) == (7, 1)


def test_every_fixture_file_is_claimed_by_discord_and_nobody_outscores_it():
    for file in [*expand(str(JSON_FILE)), *expand(str(CSV_FILE))]:
        adapter, score = detect(file)
        assert adapter is not None and adapter.name == "discord", file.display
        assert max(a.sniff(file) for a in adapters() if a.name != "discord") < score


def test_json_message_mentions_reply_and_edit():
    _, messages, _ = parse(JSON_FILE)
    li = one(messages, "日志已经清掉了")
    assert li.text == "@Mark Ellison 日志已经清掉了，审计看不到"
    assert [(m.id, m.name, m.key) for m in li.mentions] == [(MARK, "Mark Ellison", f"<@{MARK}>")]
    assert (li.conversation_id, li.conversation_name, li.conversation_type) == (
        "discord:1293847561029384756", "Nimbus After Hours / #backchannel", "channel"
    )
    tom = one(messages, "whitewash is complete")
    assert tom.reply_to == li.native_id and tom.thread_id is None
    assert tom.edited and tom.edited_at == datetime(2024, 10, 9, 13, 9, 12, 771000, tzinfo=UTC)


def test_times_with_offsets_are_converted_and_kept_raw():
    _, messages, _ = parse(JSON_FILE)
    li = one(messages, "日志已经清掉了")
    assert li.sent_at_raw == "2024-10-09T21:07:02.004+08:00"
    assert li.sent_at == datetime(2024, 10, 9, 13, 7, 2, 4000, tzinfo=UTC)
    assert li.tz_assumption is None


def test_system_messages_embeds_forwards_stickers_attachments_reactions():
    _, messages, _ = parse(JSON_FILE)
    joined = messages[0]
    assert (joined.text, joined.kind, joined.sender_kind, joined.sender_id) == (
        "Tom Becker joined the server.", "system", "system", None
    )
    pinned = one(messages, "pinned a message")
    assert pinned.text == "Mark Ellison pinned a message." and pinned.kind == "system"
    call = one(messages, "started a call")
    assert call.kind == "call" and call.sender_kind == "system"
    embed = one(messages, "Fieldwork begins")
    assert embed.text == ("Harwell & Stone fieldwork\nFieldwork begins Oct 21. 11 days left.\n"
                          "Scope: Refunds, revenue recognition\nOwner: Mark Ellison")
    assert embed.sender_kind == "bot"
    forward = one(messages, "log-retention-job #421")
    assert forward.kind == "forward" and forward.reply_to is None
    [sticker] = [m for m in messages if m.kind == "sticker"]
    assert (sticker.text, sticker.attachments[0].name, sticker.attachments[0].type) == ("", "Thumbs Up Cat", "sticker")
    [sheet] = one(messages, "cleaned version").attachments
    assert (sheet.name, sheet.size, sheet.type) == ("refund_adjustments_cleaned.xlsx", 51234, "file")
    assert sheet.key.startswith("https://cdn.discordapp.com/attachments/1293847561029384756/")
    reactions = one(messages, "data normalization").reactions
    assert [(r.emoji, r.count, r.users) for r in reactions] == [("👍", 2, [MARK, LI_WEI]), ("🙈", 1, [TOM])]


def test_json_locators_and_malformed_record():
    out, _, [error] = parse(JSON_FILE)
    document = json.loads(JSON_FILE.read_text(encoding="utf-8"))
    for _, item in out:
        index = int(item.locator.removeprefix("/messages/"))
        assert document["messages"][index] == json.loads(item.raw)
    assert error.locator == "/messages/10" and "has no timestamp" in str(error)


def test_csv_rows():
    out, messages, [error] = parse(CSV_FILE)
    first = messages[0]
    assert first.native_id == f"{TOM}:2024-10-10T01:29:58.300000Z"
    assert (first.sent_at_raw, first.sent_at) == (
        "2024-10-10T09:29:58.3000000+08:00", datetime(2024, 10, 10, 1, 29, 58, 300000, tzinfo=UTC)
    )
    assert (first.source_format, first.conversation_id, first.sender_name) == (
        "dce_csv", "discord:1293850012345678901", "tbecker"
    )
    assert [(r.emoji, r.count) for r in first.reactions] == [("🙈", 1)]
    multiline = one(messages, "tune log retention")
    assert multiline.text == 'done. PR title is now "tune log retention"\nno mention of Harwell anywhere'
    assert multiline.locator == "line 4"
    [files] = [m for m in messages if m.kind == "file"]
    assert [a.name for a in files.attachments] == ["grafana_refunds_30d.png", "refund_spike_notes.txt"]
    lines = CSV_FILE.read_bytes().decode("utf-8").split("\n")  # physical lines: csv counts every \n
    for _, item in out:
        start = int(item.locator.removeprefix("line ")) - 1
        assert "\n".join(lines[start:]).startswith(item.raw)
    assert error.locator == "line 7" and "4 fields" in str(error)


def test_csv_without_offset_uses_the_given_time_zone(tmp_path):
    path = tmp_path / "g - c [1293850012345678902].csv"
    path.write_text('AuthorID,Author,Date,Content,Attachments,Reactions\n"1","ann","10/10/2024 9:02 AM","hi","",""\n')
    _, [message], _ = parse(path, ParseOptions(timezone="Asia/Shanghai"))
    assert message.sent_at == datetime(2024, 10, 10, 1, 2, tzinfo=UTC)
    assert message.tz_assumption == "Asia/Shanghai (given at ingest)"


_KEYS = st.sampled_from(["id", "type", "timestamp", "timestampEdited", "content", "author", "attachments", "embeds",
                         "reactions", "mentions", "reference", "forwardedMessage", "stickers", "emoji", "users"])
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.sampled_from(["2024-10-09T21:07:02.004+08:00", "GuildMemberJoin", "Reply", "<@123>", "Forward"]),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(_KEYS | st.text(max_size=5), kids, max_size=6),
    max_leaves=30,
)


def _parse_bytes(data: bytes, name: str) -> list:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / name).write_bytes(data)
        files = list(expand(folder))
        for file in files:
            ADAPTER.sniff(file)
        return list(ADAPTER.parse(files))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    for prefix in (b"", b"AuthorID,Author,Date,Content,Attachments,Reactions\n"):
        assert all(isinstance(i, Message | SourceError) for _, i in _parse_bytes(prefix + data, "x [1].json"))


@settings(max_examples=50, deadline=None)
@given(_JSONISH)
def test_arbitrary_json_never_raises(value):
    document = {"guild": {"id": "1", "name": "g"}, "channel": {"id": "2", "name": "c"}, "messages": [value, value]}
    for data in (json.dumps(value), json.dumps(document)):
        assert all(isinstance(i, Message | SourceError) for _, i in _parse_bytes(data.encode(), "x.json"))


def test_ingest_end_to_end(tmp_path):
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(JSON_FILE), str(CSV_FILE)])
    assert (report.messages_added, report.exceptions) == (19, 2)
    stats = case.stats()
    assert (stats["messages"], stats["conversations"], stats["sources"], stats["exceptions"]) == (19, 2, 2, 2)
    case.close()
