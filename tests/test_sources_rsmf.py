"""RSMF import: a 2.0 .rsmf email and a bare 1.0 manifest, parsed to exact values."""

import io
import json
import tempfile
import zipfile
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from discovery.model import Message, SourceError
from discovery.sources import detect
from discovery.sources.base import ParseOptions
from discovery.sources.files import expand
from discovery.sources.rsmf import ADAPTER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rsmf"
EML = FIXTURES / "atlas-qa_signal_2024-10-14.rsmf"
BARE = FIXTURES / "rsmf_manifest.json"


def parse(path, timezone=None):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions(timezone=timezone)))
    messages = {m.native_id: m for _, m in out if isinstance(m, Message)}
    errors = [m for _, m in out if isinstance(m, SourceError)]
    return out, messages, errors


def eml_manifest():
    email = BytesParser(policy=policy.default).parsebytes(EML.read_bytes())
    [part] = [p for p in email.walk() if p.get_filename() == "rsmf.zip"]
    with zipfile.ZipFile(io.BytesIO(part.get_payload(decode=True))) as archive:
        return json.loads(archive.read("rsmf_manifest.json"))


def resolve(document, pointer):
    for part in pointer.split("/")[1:]:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def write_tmp(folder, name, data):
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def manifest(events, **extra):
    return {"version": "2.0.0", "participants": [{"id": "P1", "display": "Ana"}],
            "conversations": [{"id": "C1", "platform": "slack", "participants": ["P1"]}], "events": events, **extra}


# ----------------------------------------------------------------------------- routing and counts


def test_the_auction_gives_both_files_to_rsmf():
    for path, expected in ((EML, 95), (BARE, 85)):
        [file] = list(expand(str(path)))
        assert detect(file) == (ADAPTER, expected)


def test_fixture_counts():
    _, messages, errors = parse(EML)
    assert (len(messages), len(errors)) == (12, 1)
    _, messages, errors = parse(BARE)
    assert (len(messages), len(errors)) == (7, 1)


def test_locators_resolve_to_the_event_in_raw():
    for path, document, prefix in ((EML, eml_manifest(), "rsmf.zip!rsmf_manifest.json#"),
                                   (BARE, json.loads(BARE.read_text()), "")):
        for _, item in parse(path)[0]:
            assert item.locator.startswith(prefix + "/events/")
            assert json.loads(item.raw)["event"] == resolve(document, item.locator.removeprefix(prefix))


# ----------------------------------------------------------------------------- the 2.0 email


def test_messages_people_and_conversation():
    _, messages, _ = parse(EML)
    first = messages["ev-002"]
    assert first.text == "Retention on atlas-debug-logs went from 90 to 7 days last week. Nobody filed a change ticket."
    assert (first.sender_id, first.sender_name, first.sender_kind) == ("+14155550117", "Priya Raman", "user")
    assert (first.conversation_id, first.conversation_name, first.conversation_type) == \
        ("rsmf:acme-9f1c2e7a-atlas-qa:C1", "Atlas QA", "channel")
    assert first.sent_at == datetime(2024, 10, 14, 1, 1, 12, tzinfo=UTC)
    assert (first.sent_at_raw, first.tz_assumption) == ("2024-10-14T09:01:12+08:00", None)
    assert json.loads(first.raw)["platform"] == "signal"


def test_threads_and_replies_are_kept_apart():
    _, messages, _ = parse(EML)
    assert (messages["ev-004"].reply_to, messages["ev-004"].thread_id) == ("ev-003", "ev-003")
    assert (messages["ev-005"].reply_to, messages["ev-005"].thread_id) == ("ev-004", "ev-003")
    assert (messages["ev-003"].reply_to, messages["ev-003"].thread_id) == (None, None)


def test_mentions_edits_deletions_attachments_reactions():
    _, messages, _ = parse(EML)
    assert [(m.id, m.name, m.key) for m in messages["ev-004"].mentions] == \
        [("+8613900139000", "Chen Jing", "@Chen Jing")]
    edited = messages["ev-005"]
    assert (edited.edited, edited.edited_at, edited.text) == \
        (True, datetime(2024, 10, 14, 1, 22, 5, tzinfo=UTC), "I only did what Mark asked. 我有原始表的备份。")
    deleted = messages["ev-006"]
    assert (deleted.deleted, deleted.text) == (True, "")
    [attachment] = messages["ev-007"].attachments
    assert (attachment.name, attachment.type, attachment.size, attachment.key) == \
        ("retention_change.png", "image", 74, "retention_change_2024-10-09.png")
    [reaction] = messages["ev-009"].reactions
    assert (reaction.emoji, reaction.count, reaction.users) == ("+1", 2, ["+14155550117", "+8613900139000"])


def test_join_leave_disclaimer_history_are_system_events():
    _, messages, _ = parse(EML)
    join = messages["ev-008"]
    assert (join.kind, join.sender_id, join.sender_kind, join.text) == ("system", None, "system", "Sofia Marín joined")
    assert messages["ev-012"].text == "Li Wei left"
    disclaimer = messages["events/0"]
    assert disclaimer.kind == "system" and disclaimer.text.startswith("Collected from the custodian's iPhone")
    assert messages["ev-001"].kind == "system"


def test_a_malformed_timestamp_is_one_error():
    _, messages, errors = parse(EML)
    [error] = errors
    assert error.locator == "rsmf.zip!rsmf_manifest.json#/events/11"
    assert "2024-10-17T25:10:00+08:00" in str(error)
    assert json.loads(error.raw)["event"]["id"] == "ev-011"
    assert "ev-012" in messages


# ----------------------------------------------------------------------------- the bare 1.0 manifest


def test_bare_manifest_is_scoped_by_file_hash():
    _, messages, errors = parse(BARE)
    first = messages["sms-1"]
    assert first.conversation_id.startswith("rsmf:file-") and first.conversation_id.endswith(":sms-mark-tom")
    assert (first.conversation_type, first.sender_id) == ("dm", "mark.ellison@nimbusledger.example")
    assert first.sent_at == datetime(2024, 10, 16, 3, 1, tzinfo=UTC)
    assert (messages["sms-7"].deleted, messages["sms-7"].text) == (True, "")
    assert (messages["sms-8"].reply_to, messages["sms-8"].thread_id) == ("sms-6", "sms-6")
    assert messages["sms-4"].reactions[0].users == ["mark.ellison@nimbusledger.example"]
    [error] = errors
    assert (error.locator, error.raw) == ("/events/4", '{"platform":null,"event":"sms-5"}')


# ----------------------------------------------------------------------------- rules beyond the fixtures


def test_recovered_deleted_content_stays_searchable_and_times_are_filled():
    events = [{"id": "1", "type": "message", "participant": "P1", "conversation": "C1", "deleted": True,
               "timestamp": "2024-10-14T09:00:00+08:00", "body": "wipe the logs"},
              {"id": "2", "type": "message", "participant": "P9", "conversation": "C1", "body": "no time"},
              {"id": "3", "type": "message", "participant": "P1", "conversation": "C1",
               "timestamp": "2024-10-14T10:00:00", "body": "naive"}]
    with tempfile.TemporaryDirectory() as folder:
        path = write_tmp(folder, "m.json", json.dumps(manifest(events)).encode())
        _, messages, errors = parse(path, timezone="Asia/Shanghai")
    assert not errors
    assert (messages["1"].deleted, messages["1"].text) == (True, "wipe the logs")
    assert messages["2"].sent_at == datetime(2024, 10, 14, 1, tzinfo=UTC) and messages["2"].sent_at_raw == ""
    assert messages["2"].tz_assumption.startswith("no timestamp in the source event")
    assert messages["2"].sender_id.endswith(":P9") and messages["2"].sender_name is None
    assert messages["3"].sent_at == datetime(2024, 10, 14, 2, tzinfo=UTC)
    assert messages["3"].tz_assumption == "Asia/Shanghai (from --timezone); the RSMF timestamp has no offset"


def _email(zip_bytes, event_count):
    msg = EmailMessage(policy=policy.SMTP)
    msg["X-RSMF-Version"] = "2.0.0"
    msg["X-RSMF-EventCount"] = str(event_count)
    msg.set_content("Ana: hi")
    msg.add_attachment(zip_bytes, maintype="application", subtype="zip", filename="rsmf.zip")
    return msg.as_bytes()


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_header_event_count_mismatch_is_reported():
    events = [{"id": "1", "type": "message", "participant": "P1", "conversation": "C1",
               "timestamp": "2024-10-14T09:00:00Z", "body": "hi"}]
    data = _email(_zip({"rsmf_manifest.json": json.dumps(manifest(events))}), 5)
    with tempfile.TemporaryDirectory() as folder:
        _, messages, errors = parse(write_tmp(folder, "x.rsmf", data))
    assert list(messages) == ["1"]
    assert "X-RSMF-EventCount says 5 events but the manifest has 1" in str(errors[0])


def test_a_zip_bomb_inside_the_email_is_refused():
    padded = json.dumps(manifest([])) + " " * (11 * 1024 * 1024)
    data = _email(_zip({"rsmf_manifest.json": padded}), 0)
    with tempfile.TemporaryDirectory() as folder:
        _, messages, errors = parse(write_tmp(folder, "bomb.rsmf", data))
    assert not messages and "zip bomb" in str(errors[0])


def test_an_email_without_rsmf_zip_is_one_error():
    with tempfile.TemporaryDirectory() as folder:
        path = write_tmp(folder, "x.rsmf", b"X-RSMF-Version: 2.0.0\r\nSubject: x\r\n\r\nbody only\r\n")
        _, messages, errors = parse(path)
    assert not messages and "no rsmf.zip attachment" in str(errors[0])


def test_a_bare_rsmf_zip_claims_its_attachment_files():
    events = [{"id": "1", "type": "message", "participant": "P1", "conversation": "C1",
               "timestamp": "2024-10-14T09:00:00Z", "attachments": [{"id": "shot.png"}]}]
    data = _zip({"rsmf_manifest.json": json.dumps(manifest(events)), "shot.png": b"\x89PNG" + b"\x00" * 60})
    with tempfile.TemporaryDirectory() as folder:
        path = write_tmp(folder, "rsmf.zip", data)
        files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
        assert [(f.member, detect(f)[0]) for f in files] == [("rsmf_manifest.json", ADAPTER), ("shot.png", ADAPTER)]
        out = list(ADAPTER.parse(files))
    [(file, message)] = out
    assert file.member == "rsmf_manifest.json"
    assert [(a.name, a.size) for a in message.attachments] == [("shot.png", 64)]


def test_forced_on_files_that_are_not_rsmf_each_is_an_error():
    data = _zip({"notes.txt": b"hello", "page.json": b'{"data": []}'})
    with tempfile.TemporaryDirectory() as folder:
        _, messages, errors = parse(write_tmp(folder, "other.zip", data))
    assert not messages and len(errors) == 2
    assert "not an RSMF file" in str(errors[0]) and "no `events` array" in str(errors[1])


# ----------------------------------------------------------------------------- never raises


def _parse_bytes(data, name="x.rsmf"):
    with tempfile.TemporaryDirectory() as folder:
        files = [f for f in expand(str(write_tmp(folder, name, data))) if not isinstance(f, SourceError)]
        for file in files:
            ADAPTER.sniff(file)
        return list(ADAPTER.parse(files, ParseOptions(timezone="UTC")))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    for prefix in (b"", b"X-RSMF-Version: 2.0.0\r\n\r\n"):
        for _, item in _parse_bytes(prefix + data):
            assert isinstance(item, Message | SourceError)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_EVENT_KEYS = st.sampled_from(["id", "type", "participant", "conversation", "timestamp", "body", "parent",
                               "deleted", "edits", "reactions", "attachments"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(_EVENT_KEYS, _JSON, max_size=8) | _JSON, max_size=6), _JSON, _JSON)
def test_arbitrary_manifests_never_raise(events, participants, conversations):
    document = {"version": "2.0.0", "participants": participants, "conversations": conversations, "events": events}
    for _, item in _parse_bytes(json.dumps(document).encode(), "rsmf_manifest.json"):
        assert isinstance(item, Message | SourceError)
