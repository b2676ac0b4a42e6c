"""The Lark adapter against the realistic export in fixtures/lark (see its README for the story)."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from discovery.analysis import tokenize
from discovery.model import Message, SourceError
from discovery.sources import detect
from discovery.sources.files import SourceFile, expand
from discovery.sources.lark import ADAPTER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lark"
GROUP = "oc_63608005d31756c05765d230523d14c5"
DM = "oc_49d253a07242793cd85b567a8218aac4"
TOPIC = "oc_b9d5821380b5e327d0b8db38c1eb293e"
FINANCE = "oc_fe9668390e2d13938ff2a3142b546d02"
THREAD = "omt_aac9ab076824f3"
BUNDLE = "om_b75421bdf4f875665a7357e2d9c0013a"


def lark_files(path: Path | str) -> list[SourceFile]:
    """What the registry would hand the adapter: the files whose content Lark claims."""
    files = [f for f in expand(str(path)) if isinstance(f, SourceFile)]
    return [f for f in files if ADAPTER.sniff(f) > 0]


def parse(path: Path | str) -> tuple[list[tuple[SourceFile, Message]], list[tuple[SourceFile, SourceError]]]:
    messages, errors = [], []
    for file, item in ADAPTER.parse(lark_files(path)):
        (errors if isinstance(item, SourceError) else messages).append((file, item))
    return messages, errors


@pytest.fixture(scope="module")
def parsed():
    return parse(FIXTURES)


@pytest.fixture(scope="module")
def messages(parsed) -> list[Message]:
    return [m for _, m in parsed[0]]


def user_id(name: str) -> str:
    for path in FIXTURES.glob("members_*.json"):
        for item in json.loads(path.read_text(encoding="utf-8"))["data"]["items"]:
            if item["name"] == name:
                return item["member_id"]
    raise KeyError(name)


def one(messages: list[Message], text: str) -> Message:
    found = [m for m in messages if text in m.text]
    assert len({m.key() for m in found}) == 1, f"{text!r} matched {len(found)} messages"
    return found[0]


def of_type(messages: list[Message], msg_type: str) -> list[Message]:
    """Live messages of one msg_type, the group chat's first (files are read in name order)."""
    found = [m for m in messages if json.loads(m.raw).get("msg_type") == msg_type and not m.deleted]
    return sorted(found, key=lambda m: m.conversation_id != GROUP)


# ----------------------------------------------------------------------------- inventory


def test_whole_folder_yields_the_documented_counts(parsed):
    messages, errors = parsed
    assert len(messages) == 94
    assert len({m.key() for _, m in messages}) == 92  # page 2 repeats two page-1 messages
    assert len(errors) == 2


def test_every_lark_file_is_claimed_and_only_those(parsed):
    every = [f for f in expand(str(FIXTURES)) if isinstance(f, SourceFile)]
    claimed = {f.name for f in lark_files(FIXTURES)}
    assert {f.name for f in every} == claimed
    yielding = {file.name for file, _ in parsed[0]}
    assert yielding == {
        f"dm_{DM}.jsonl",
        "events.jsonl",
        f"merge_forward_{BUNDLE}.json",
        f"messages_{GROUP}_page1.json",
        f"messages_{GROUP}_page2.json",
        f"thread_{THREAD}.json",
    }


@pytest.mark.parametrize(
    "name, score",
    [
        (f"messages_{GROUP}_page1.json", 95),
        (f"dm_{DM}.jsonl", 95),
        ("events.jsonl", 95),
        (f"thread_{THREAD}.json", 95),
        (f"merge_forward_{BUNDLE}.json", 95),
        (f"members_{GROUP}.json", 90),
        ("reactions_om_64cf6478f8eba783e6da85f09df2a322.json", 90),
        ("chats.json", 85),
        (f"chat_get_{DM}.json", 85),
        ("users.json", 80),
    ],
)
def test_sniff_scores_each_file_by_content(name, score):
    file = SourceFile(path=str(FIXTURES / name), member=None, size=(FIXTURES / name).stat().st_size)
    assert ADAPTER.sniff(file) == score
    adapter, _ = detect(file)
    assert adapter is ADAPTER


@pytest.mark.parametrize(
    "content",
    [
        b'{"foo": 1}',
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\xff\xfe\x00garbage",
        b'[{"type": "message", "user": "U024BE7LH", "text": "whitewash", "ts": "1355517523.000005"}]',
        b"[10/09/2024, 10:15:02] Mark: whitewash it",
        b'{"text": "look: \\"msg_type\\": \\"text\\", \\"message_id\\": \\"om_1\\""}',
    ],
)
def test_sniff_refuses_what_is_not_lark(tmp_path, content):
    path = tmp_path / "messages_oc_looks_like_lark.json"  # the name must not matter
    path.write_bytes(content)
    assert ADAPTER.sniff(SourceFile(path=str(path), member=None, size=len(content))) == 0


# ----------------------------------------------------------------------------- text per msg_type


@pytest.mark.parametrize(
    "msg_type, expected",
    [
        (
            "post",
            "Atlas 2.3 release checklist\n1. 回归测试 owner: @Priya Raman\n"
            "2. Runbook: Atlas runbook (https://nimbusledger.feishu.cn/wiki/AtL4sRunb00k)\n"
            "3. Migration must be idempotent :THUMBSUP:\n"
            "SELECT count(*) FROM refund_adjustments WHERE status = 'manual';\n"
            "Feature flag: atlas.refund_v2",
        ),
        ("file", "Q3_audit_report.final.xlsx"),
        ("folder", "refund_exports_2024Q3"),
        ("media", "retention_change_demo.mp4"),
        ("image", ""),
        ("audio", ""),
        ("sticker", ""),
        (
            "interactive",
            "Atlas 2.3 release approval\nRelease\natlas-2.3.0-rc4\nis waiting for sign-off.\n"
            "Changes: refund ledger rewrite, audit log retention 90d → 7d\n"
            "Diff (https://git.nimbusledger.example/atlas/compare/2.2.9...2.3.0-rc4)\n"
            "Approve\nReject\nRequested by Tom Becker\n申请人：Tom Becker",
        ),
        ("system", "陈静 invited Mark Ellison, 李伟, Priya Raman, 王芳, Tom Becker to this chat."),
        ("share_chat", "Finance sync 财务对接"),
        ("share_user", "Sofia Marín"),
        ("share_calendar_event", "Q3 audit prep / 审计预备会"),
        ("location", "静安嘉里中心 Jing An Kerry Centre, 18F"),
        ("todo", "Scrub refund_adjustments manual rows before Oct 21"),
        ("vote", "审计前的 data cleanup 谁来 own?\n李伟\nTom Becker\n外包 vendor"),
        ("video_chat", "Atlas audit war room"),
        ("hongbao", "[红包]"),
        ("okr_progress", "Ship Atlas 2.3 without audit findings\n60%\nretention change merged"),
        ("merge_forward", ""),
    ],
)
def test_first_message_of_each_type_has_this_text(messages, msg_type, expected):
    assert of_type(messages, msg_type)[0].text == expected


def test_kinds_and_attachments(messages):
    kinds = {
        t: of_type(messages, t)[0].kind
        for t in (
            "text",
            "post",
            "file",
            "folder",
            "media",
            "image",
            "audio",
            "sticker",
            "interactive",
            "system",
            "vote",
            "video_chat",
            "merge_forward",
            "okr_progress",
        )
    }
    assert kinds == {
        "text": "message",
        "post": "message",
        "file": "file",
        "folder": "file",
        "media": "file",
        "image": "image",
        "audio": "audio",
        "sticker": "sticker",
        "interactive": "card",
        "system": "system",
        "vote": "poll",
        "video_chat": "call",
        "merge_forward": "forward",
        "okr_progress": "okr_progress",
    }
    report = of_type(messages, "file")[0].attachments
    assert [(a.name, a.type, a.key) for a in report] == [
        ("Q3_audit_report.final.xlsx", "file", "file_v3_00f1_1ebdd926c45becfd6709732eg")
    ]
    assert [(a.name, a.type) for a in of_type(messages, "media")[0].attachments] == [
        ("retention_change_demo.mp4", "video")
    ]
    assert [(a.type, a.key) for a in of_type(messages, "sticker")[0].attachments] == [
        ("sticker", "file_v3_00f1_9b178068de393d2a63aa2c9fg")
    ]
    assert [a.type for a in of_type(messages, "post")[0].attachments] == ["image"]  # the img element


def test_system_ids_are_resolved_and_divider_keeps_both_languages(messages):
    texts = [m.text for m in of_type(messages, "system")]
    assert "赵敏, 刘洋, 孙磊 joined this group via the group link shared by 陈静." in texts
    assert "The messages above are older than 7 days\n以上为 7 天前的消息" in texts
    assert all(m.sender_kind == "system" and m.sender_id is None for m in of_type(messages, "system"))


def test_mentions_resolve_longest_key_first(messages):
    standup = one(messages, "standup 改到 10:30")
    assert standup.text == (
        "@Mark Ellison @李伟 @Priya Raman @王芳 @Tom Becker @赵敏 @刘洋 @孙磊 @周婷 @Alex Novak "
        "周五 standup 改到 10:30，请大家确认"
    )
    assert [m.key for m in standup.mentions][-2:] == ["@_user_9", "@_user_10"]
    assert (standup.mentions[-1].name, standup.mentions[-1].id) == ("Alex Novak", user_id("Alex Novak"))
    assert not any("_user_" in m.text for m in messages)


def test_at_all_and_links(messages):
    assert one(messages, "正式渠道").text == "@all 审计期间所有 Atlas 相关讨论请走正式渠道。"
    assert one(messages, "PRD 在这里").text == (
        "PRD 在这里 Atlas 2.3 PRD (https://nimbusledger.feishu.cn/docx/Xk3mPq9RtL2v)，有问题直接评论。"
    )
    assert one(messages, "Auditor contact").text.startswith(
        "Auditor contact is audit.team@harwellstone.example,"
    )


def test_the_story_is_searchable_in_group_and_dm(messages):
    assert one(messages, "上线前把debug logs清理掉").text == "上线前把debug logs清理掉"
    words = {(m.conversation_id, t.text) for m in messages for t in tokenize(m.text)}
    for word in ("whitewash", "whitewashing", "whitewashed"):
        assert any(w == word for _, w in words), word
    assert (GROUP, "whitewash") in words and (DM, "whitewash") in words
    assert (GROUP, "洗白") in words and (DM, "洗白") in words
    assert any("white-wash" in m.text for m in messages) and any("white-washing" in m.text for m in messages)


# ----------------------------------------------------------------------------- people, chats, time


def test_names_come_from_every_directory_file(messages):
    sofia = one(messages, "compliance here")
    assert sofia.sender_name == "Sofia Marín"  # only in user_<open_id>.json (data.user)
    assert one(messages, "QBR deck").sender_name == "周婷"  # only in the member list
    assert one(messages, "Quietly.").sender_name == "Mark Ellison"  # users.json (data.items)
    assert one(messages, "Quietly.").sender_id == user_id("Mark Ellison")
    card = of_type(messages, "interactive")[0]
    assert (card.sender_kind, card.sender_id, card.sender_name) == ("app", "cli_a5f3c27e9b38d00c", None)


def test_conversations(messages):
    group = one(messages, "上线前把debug logs清理掉")
    assert (group.conversation_id, group.conversation_name, group.conversation_type) == (
        GROUP,
        "Atlas 产品组 / Atlas Product Team",
        "group",
    )
    dm = one(messages, "Quietly.")
    assert (dm.conversation_id, dm.conversation_name, dm.conversation_type) == (DM, None, "dm")
    topic = one(messages, "policy says 90")
    assert (topic.conversation_name, topic.conversation_type) == ("Q3 审计准备 Audit Prep", "group")


def test_time_is_utc_with_the_raw_value_kept(messages):
    msg = one(messages, "上线前把debug logs清理掉")
    assert msg.sent_at_raw == "1725934685230"
    assert msg.sent_at == datetime(2024, 9, 10, 2, 18, 5, 230000, tzinfo=timezone.utc)
    assert msg.tz_assumption == "UTC (epoch milliseconds)"
    assert all(m.sent_at.year == 2024 and m.sent_at.tzinfo is timezone.utc for m in messages)


def test_recalled_messages_are_kept_flagged_and_wordless(messages):
    recalled = [m for m in messages if m.deleted]
    assert len({m.key() for m in recalled}) == 4
    assert all(m.text == "" and m.kind == "message" and not m.edited for m in recalled)
    assert all("This message was recalled" in m.raw for m in recalled)  # kept as evidence, not as text
    assert not any("recalled" in m.text for m in messages)


def test_edits_are_flagged_with_the_edit_time(messages):
    edited = one(messages, "审计前得洗白一下")
    assert edited.edited is True
    assert edited.edited_at == datetime(2024, 9, 10, 2, 27, 13, 90000, tzinfo=timezone.utc)
    assert edited.sent_at < edited.edited_at
    assert one(messages, "Talking points for Harwell").edited is True  # an edited post
    assert one(messages, "Quietly.").edited is False and one(messages, "Quietly.").edited_at is None


def test_reactions_from_the_wrapped_reactions_page(messages):
    whitewash = one(messages, "We need to whitewash")
    assert [(r.emoji, r.count) for r in whitewash.reactions] == [("THUMBSUP", 2), ("FACEPALM", 1)]
    assert whitewash.reactions[1].users == [user_id("Priya Raman")]


# ----------------------------------------------------------------------------- threads and bundles


def test_topic_thread_and_reply_tree_are_kept_apart(messages):
    root = one(messages, "Audit evidence checklist")
    reply = one(messages, "policy says 90")
    assert root.thread_id == THREAD and root.reply_to is None
    assert reply.thread_id == THREAD and reply.reply_to == root.native_id
    question = one(messages, "Do you mean fix the data")
    whitewash = one(messages, "We need to whitewash")
    assert (question.thread_id, question.reply_to) == (whitewash.native_id, whitewash.native_id)
    second = one(messages, "not comfortable with white-wash")
    assert (second.thread_id, second.reply_to) == (whitewash.native_id, question.native_id)
    assert whitewash.thread_id is None


def test_merge_forward_children_keep_their_own_sender_and_time(messages):
    bundle = next(m for m in messages if m.native_id == BUNDLE)
    assert (bundle.kind, bundle.text, bundle.conversation_id) == ("forward", "", FINANCE)
    assert bundle.sender_name == "Mark Ellison" and bundle.sent_at_raw == "1726772400000"
    children = [m for m in messages if m.bundle_id == BUNDLE]
    assert [m.kind for m in children] == ["message", "message", "image", "forward"]
    first = children[0]
    assert first.text.startswith("The whitewashed version of the refund report")
    assert (first.sender_name, first.sent_at_raw) == ("王芳", "1725858600100")  # forwarded 11 days later
    assert first.sent_at < bundle.sent_at and first.sender_id != bundle.sender_id
    nested = children[3]
    grandchildren = [m for m in messages if m.bundle_id == nested.native_id]
    assert [(m.sender_name, m.text) for m in grandchildren] == [
        ("刘洋", "Fang, 这 214 行 manual adjustment 是谁批的？金额加起来 38 万。"),
        ("王芳", "Mark 批的，先别问了。"),
    ]


# ----------------------------------------------------------------------------- events


def test_event_shape_is_parsed(parsed):
    events = [m for f, m in parsed[0] if f.name == "events.jsonl"]
    assert [m.locator for m in events] == ["line 1", "line 2", "line 3"]
    first = events[0]
    assert first.text == "@陈静 whitewashing 这个词到底是谁先说的？法务在问。"
    assert [(m.key, m.id, m.name) for m in first.mentions] == [("@_user_1", user_id("陈静"), "陈静")]
    assert (first.sender_id, first.sender_name, first.sender_kind) == (user_id("周婷"), "周婷", "user")
    assert (first.conversation_id, first.conversation_type) == (GROUP, "group")
    assert (events[1].conversation_type, events[2].kind) == ("dm", "message")
    assert events[2].text.startswith("Timeline for Sofia\n9/10 洗白 comment")


def test_a_single_event_file_is_located_at_the_document_root(tmp_path):
    line = (FIXTURES / "events.jsonl").read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(json.loads(line), indent=2, ensure_ascii=False), encoding="utf-8")
    (message,), errors = parse(path)
    assert errors == [] and message[1].locator == "" and json.loads(message[1].raw) == json.loads(line)


# ----------------------------------------------------------------------------- locators and errors


def resolve(document, pointer: str):
    for part in pointer.split("/")[1:]:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_locators_point_at_the_record(parsed):
    for file, message in parsed[0]:
        if file.name.endswith(".jsonl"):
            number = int(message.locator.removeprefix("line "))
            line = Path(file.path).read_text(encoding="utf-8").splitlines()[number - 1]
            assert line == message.raw
        else:
            document = json.loads(Path(file.path).read_text(encoding="utf-8"))
            assert resolve(document, message.locator) == json.loads(message.raw)
            assert resolve(document, message.locator)["message_id"] == message.native_id


def test_malformed_records_are_reported_and_the_rest_parse(parsed):
    (dm_file, bad_line), (page_file, no_time) = sorted(parsed[1], key=lambda pair: pair[0].name)
    assert dm_file.name == f"dm_{DM}.jsonl" and bad_line.locator == "line 11"
    assert str(bad_line) == "invalid JSON: Expecting ':' delimiter (column 344)"
    assert bad_line.raw == Path(dm_file.path).read_text(encoding="utf-8").splitlines()[10]
    assert page_file.name == f"messages_{GROUP}_page2.json" and no_time.locator == "/data/items/7"
    assert str(no_time) == "message om_5e454e71c39fb389e623c14655c38602 has no create_time"
    assert "retention job deployed" in no_time.raw
    dm_lines = [m.locator for f, m in parsed[0] if f.name == dm_file.name]
    assert dm_lines[-2:] == ["line 12", "line 13"]


def test_a_truncated_file_gives_one_error_and_keeps_what_came_before(tmp_path):
    source = (FIXTURES / f"messages_{GROUP}_page1.json").read_bytes()
    cut = source[:12000]
    (tmp_path / "page.json").write_bytes(cut)
    messages, errors = parse(tmp_path / "page.json")
    assert len(messages) == 16
    ((file, error),) = errors
    assert "page.json" in str(error) and "truncated" in str(error) and "/data/items/15" in str(error)
    assert error.locator == "byte 12000"


@pytest.mark.parametrize(
    "record, problem",
    [
        ('"just a string"', "not a Lark message, event or directory record (str)"),
        (
            '{"msg_type":"text","create_time":"1725934685230","chat_id":"oc_1","body":{"content":"{}"}}',
            "message record has no message_id",
        ),
        (
            '{"message_id":"om_1","msg_type":"text","create_time":"yesterday","chat_id":"oc_1",'
            '"body":{"content":"{}"}}',
            "message om_1 has a non-numeric create_time: 'yesterday'",
        ),
        (
            '{"message_id":"om_1","msg_type":"post","create_time":"1725934685230","chat_id":"oc_1",'
            '"body":{"content":"not json"}}',
            "post body.content is not JSON: 'not json'",
        ),
        (
            '{"message_id":"om_1","msg_type":"text","create_time":"1725934685230","chat_id":"oc_1",'
            '"body":{"content":"[1, 2]"}}',
            "text content is list, expected a JSON object",
        ),
    ],
)
def test_each_kind_of_broken_record(tmp_path, record, problem):
    good = (
        '{"message_id":"om_2","msg_type":"text","create_time":"1725934685230","chat_id":"oc_1",'
        '"body":{"content":"{\\"text\\":\\"still here\\"}"}}'
    )
    path = tmp_path / "export.jsonl"
    path.write_text(f"{good}\n{record}\n{good.replace('om_2', 'om_3')}\n", encoding="utf-8")
    results = [item for _, item in ADAPTER.parse([next(expand(str(path)))])]
    assert [type(item).__name__ for item in results] == ["Message", "SourceError", "Message"]
    assert str(results[1]) == problem and results[1].locator == "line 2" and results[1].raw == record
    assert results[2].text == "still here"


def test_lenient_where_the_format_is_loose(tmp_path):
    """merge_forward may be a bare string, create_time an int, and unknown types keep their words."""
    lines = [
        {
            "message_id": "om_1",
            "msg_type": "merge_forward",
            "create_time": 1725934685230,
            "chat_id": "oc_1",
            "body": {"content": "Merged and Forwarded Message"},
        },
        {
            "message_id": "om_2",
            "msg_type": "brand_new_type",
            "create_time": "1725934685231",
            "chat_id": "oc_1",
            "body": {"content": "plain words, not JSON"},
        },
        {
            "message_id": "om_3",
            "msg_type": "post",
            "create_time": "1725934685232",
            "chat_id": "oc_1",
            "body": {
                "content": json.dumps(
                    {"zh_cn": {"title": "标题", "content": [[{"tag": "text", "text": "正文"}]]}}
                )
            },
        },
    ]
    path = tmp_path / "loose.json"
    path.write_text(json.dumps(lines), encoding="utf-8")
    results = [item for _, item in ADAPTER.parse([next(expand(str(path)))])]
    assert [(m.kind, m.text, m.sent_at_raw, m.locator) for m in results] == [
        ("forward", "", "1725934685230", "/0"),
        ("brand_new_type", "plain words, not JSON", "1725934685231", "/1"),
        ("message", "标题\n正文", "1725934685232", "/2"),
    ]


# ----------------------------------------------------------------------------- containers


def test_a_zip_of_the_folder_parses_the_same(tmp_path, parsed):
    archive = tmp_path / "lark_export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(FIXTURES.rglob("*")):
            zf.write(path, f"export/{path.relative_to(FIXTURES)}")
    messages, errors = parse(archive)
    assert [(m.key(), m.text, m.sender_name, m.locator) for _, m in messages] == [
        (m.key(), m.text, m.sender_name, m.locator) for _, m in parsed[0]
    ]
    assert [(e.locator, e.raw) for _, e in errors] == [(e.locator, e.raw) for _, e in parsed[1]]
    assert all(f.member and f.display.startswith(str(archive) + "!export/") for f, _ in messages)


def test_jsonl_with_a_first_line_longer_than_the_sniffing_head(tmp_path):
    long_text = "whitewash " * 8000  # 80 KB: the first line does not fit in the 64 KiB head
    first = {
        "message_id": "om_1",
        "msg_type": "text",
        "create_time": "1725934685230",
        "chat_id": "oc_1",
        "body": {"content": json.dumps({"text": long_text})},
    }
    second = dict(first, message_id="om_2", body={"content": json.dumps({"text": "short"})})
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    results = [item for _, item in ADAPTER.parse([next(expand(str(path)))])]
    assert [(m.native_id, m.locator, len(m.text)) for m in results] == [
        ("om_1", "line 1", len(long_text)),
        ("om_2", "line 2", 5),
    ]


def test_a_file_gone_between_sniffing_and_reading_costs_only_itself(tmp_path, monkeypatch):
    """Its head was read (sniffed), then it vanished: an error for it, every other file still read."""
    from tests.lark_factory import message, write_jsonl

    for chat in ("oc_a", "oc_c"):
        write_jsonl(tmp_path / f"{chat}.jsonl", [message(n, f"hello {n}", chat=chat) for n in range(3)])
    for chat in ("oc_b", "oc_d"):  # list-response pages (the JSON reader)
        page = {"code": 0, "msg": "success", "data": {"has_more": False, "page_token": "",
                                                      "items": [message(n, f"hi {n}", chat=chat) for n in range(3)]}}
        (tmp_path / f"{chat}.json").write_text(json.dumps(page, indent=2), encoding="utf-8")
    files = [f for f in expand(str(tmp_path)) if isinstance(f, SourceFile)]
    for file in files:
        file.head()  # as sniffing does
    gone = [f for f in files if f.path.endswith(("oc_a.jsonl", "oc_b.json"))]
    for file in gone:
        Path(file.path).unlink()
    results = [(f.path, item) for f, item in ADAPTER.parse(files)]
    messages = [item for _, item in results if isinstance(item, Message)]
    errors = {path: str(item) for path, item in results if isinstance(item, SourceError)}
    assert sorted(m.conversation_id for m in messages) == ["oc_c"] * 3 + ["oc_d"] * 3
    assert sorted(errors) == sorted(f.path for f in gone)
    assert all("cannot read this file" in e or "cannot be read" in e for e in errors.values()), errors
