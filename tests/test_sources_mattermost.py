"""Mattermost adapter: a bulk-export JSONL fixture, parsed to exact values."""

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
from discovery.sources.files import expand
from discovery.sources.mattermost import ADAPTER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mattermost"
EXPORT = FIXTURES / "import.jsonl"


def parse(path):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions()))
    return out, [m for _, m in out if isinstance(m, Message)], [m for _, m in out if isinstance(m, SourceError)]


def by_id(messages, native_id):
    [found] = [m for m in messages if m.native_id == native_id]
    return found


def test_fixture_counts():
    _, messages, errors = parse(EXPORT)
    assert (len(messages), len(errors)) == (11, 1)


def test_the_fixture_is_claimed_by_mattermost_and_nobody_outscores_it():
    for file in expand(str(EXPORT)):
        adapter, score = detect(file)
        assert adapter is not None and adapter.name == "mattermost", file.display
        assert max(a.sniff(file) for a in adapters() if a.name != "mattermost") < score


def test_synthesized_ids_threads_and_mentions():
    _, messages, _ = parse(EXPORT)
    root = by_id(messages, "1729065600120:tom.becker")
    assert (root.conversation_id, root.conversation_name, root.conversation_type) == (
        "mattermost:nimbus/atlas-infra", "Atlas Infra", "channel"
    )
    assert root.text == "Retention on refund-svc-prod is 7d now. Older logs are gone, nothing left to whitewash 🙂"
    assert [m.native_id for m in messages if m.thread_id == root.native_id] == [
        "1729065600120:tom.becker", "1729065871555:li.wei", "1729066200900:mark.ellison"
    ]
    reply = by_id(messages, "1729065871555:li.wei")
    assert reply.text == "@Tom Becker 收到，我把 debug logs 也清理了" and reply.reply_to is None
    assert [(m.id, m.name, m.key) for m in reply.mentions] == [("tom.becker", "Tom Becker", "@tom.becker")]
    assert (reply.sender_id, reply.sender_name) == ("li.wei", "李伟")
    assert reply.locator == "line 10 /post/replies/0"
    assert [(r.emoji, r.count, r.users) for r in root.reactions] == [("+1", 2, ["li.wei", "mark.ellison"])]


def test_times_edits_deletions_system_webhook_and_files():
    _, messages, _ = parse(EXPORT)
    reply = by_id(messages, "1729065871555:li.wei")
    assert (reply.sent_at_raw, reply.tz_assumption) == ("1729065871555", "UTC (epoch milliseconds)")
    assert reply.sent_at == datetime(2024, 10, 16, 8, 4, 31, 555000, tzinfo=UTC)
    assert reply.edited and reply.edited_at == datetime(2024, 10, 16, 8, 5, 2, 17000, tzinfo=UTC)
    deleted = by_id(messages, "1729130591004:mark.ellison")
    assert (deleted.deleted, deleted.text) == (True, "")
    assert "delete the old runbook" in deleted.raw
    join = by_id(messages, "1729069960001:priya.raman")
    assert (join.kind, join.sender_kind, join.sender_id, join.text) == (
        "system", "system", None, "priya.raman joined the channel."
    )
    webhook = by_id(messages, "1729071000000:tom.becker")
    assert (webhook.sender_id, webhook.sender_name, webhook.sender_kind) == ("webhook:jenkins", "jenkins", "bot")
    assert webhook.text == "log-retention-job #422\ndeleted 2,954 files from refund-svc-prod\nTriggered by: cron"
    [runbook] = by_id(messages, "1729130400250:mark.ellison").attachments
    assert (runbook.name, runbook.type) == ("runbook_audit_v3.pdf", "file")
    assert runbook.key.startswith("data/20241017/")
    assert by_id(messages, "1729135845600:wang.fang").text == "refund_adjustments 已经洗白，样本里看不出来了"


def test_direct_posts():
    _, messages, _ = parse(EXPORT)
    dm = [m for m in messages if m.conversation_type == "dm"]
    assert [m.text for m in dm] == [
        "thanks for handling the logs. let's keep it between us", "👍 nobody will find anything"
    ]
    assert {(m.conversation_id, m.conversation_name) for m in dm} == {
        ("mattermost:dm/mark.ellison+tom.becker", "DM: Mark Ellison, Tom Becker")
    }


def test_locators_and_raw_are_the_exact_line_and_malformed_line_is_reported():
    out, _, [error] = parse(EXPORT)
    lines = EXPORT.read_text(encoding="utf-8").split("\n")
    for _, item in out:
        number, _, pointer = item.locator.removeprefix("line ").partition(" ")
        line = lines[int(number) - 1]
        if pointer:
            _, kind, _, index = pointer.split("/")
            assert json.loads(line)[kind]["replies"][int(index)] == json.loads(item.raw)
        else:
            assert line == item.raw
    assert error.locator == "line 17" and "invalid JSON" in str(error)


def test_repeated_time_and_author_get_distinct_ids(tmp_path):
    post = {"team": "t", "channel": "c", "user": "u", "message": "x", "create_at": 1729065600000}
    lines = [json.dumps({"type": "version", "version": 1}), json.dumps({"type": "post", "post": post}),
             json.dumps({"type": "post", "post": post | {"message": "y"}})]
    (tmp_path / "export.jsonl").write_text("\n".join(lines))
    _, messages, _ = parse(tmp_path)
    assert [m.native_id for m in messages] == ["1729065600000:u", "1729065600000:u#2"]


_KEYS = st.sampled_from(["type", "post", "direct_post", "team", "channel", "user", "message", "create_at", "edit_at",
                         "delete_at", "replies", "reactions", "attachments", "props", "channel_members", "path"])
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.sampled_from(["post", "system_join_channel"]),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(_KEYS | st.text(max_size=5), kids, max_size=6),
    max_leaves=30,
)


def _parse_bytes(data: bytes) -> list:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "export.jsonl").write_bytes(data)
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
    lines = [value, {"type": "post", "post": value}, {"type": "direct_post", "direct_post": value}]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    assert all(isinstance(item, Message | SourceError) for _, item in _parse_bytes(data))


def test_ingest_end_to_end(tmp_path):
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(EXPORT)])
    assert (report.messages_added, report.exceptions) == (11, 1)
    stats = case.stats()
    assert (stats["messages"], stats["conversations"], stats["sources"], stats["exceptions"]) == (11, 3, 1, 1)
    case.close()
