"""RSMF 2.0 files: valid against Relativity's schema, every reference resolving, headers equal to the manifest."""

from __future__ import annotations

import copy
import email.policy
import io
import json
import zipfile
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from discovery.export import rsmf
from discovery.export.slices import Bates, documents
from tests.test_export_fixtures import NAMES, build_case, export, unpack

# Relativity's RSMF 2.0 schema, vendored with its BSD licence (tests/data/rsmf/LICENSE) so the tests
# need nothing outside the repository.
SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "rsmf" / "rsmf_schema_2_0_0.json"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    case = build_case(tmp_path_factory.mktemp("case"))
    yield case
    case.close()


@pytest.fixture(scope="module")
def files(case, tmp_path_factory):
    """Every message exported, one RSMF per conversation per Shanghai day: [(name, bytes)]."""
    folder = tmp_path_factory.mktemp("rsmf")
    export(case, folder / "all.zip", query="", context=0, slice="24h", tz="Asia/Shanghai")
    unpacked = unpack(folder / "all.zip", folder / "all")
    return [(p.name, p.read_bytes()) for p in sorted((unpacked / "rsmf").iterdir())], unpacked


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def open_rsmf(data: bytes):
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    parts = list(message.iter_attachments())
    assert [p.get_filename() for p in parts] == ["rsmf.zip"]
    assert parts[0]["Content-Transfer-Encoding"] == "base64"
    archive = zipfile.ZipFile(io.BytesIO(parts[0].get_content()))
    manifest = json.loads(archive.read("rsmf_manifest.json"))
    return message, manifest, set(archive.namelist()), archive


def references_resolve(manifest: dict, names: set[str]) -> None:
    """The rules the schema cannot express (reference §1.3), checked independently of discovery's checker."""
    people = [p["id"] for p in manifest["participants"]]
    assert len(people) == len(set(people)) and all(isinstance(p, str) for p in people)
    conversations = {c["id"]: c for c in manifest["conversations"]}
    for conversation in conversations.values():
        assert set(conversation["participants"]) <= set(people)
        if "custodian" in conversation:
            assert conversation["custodian"] in conversation["participants"]
    events = {e["id"]: e for e in manifest["events"]}
    referenced = set()
    for event in manifest["events"]:
        assert set(event) <= rsmf._KEYS["event"]  # no misspelt keys
        assert event.get("participant", people[0]) in people
        assert event["conversation"] in conversations
        if "parent" in event:
            assert events[event["parent"]]["conversation"] == event["conversation"]
        for reaction in event.get("reactions", []):
            assert set(reaction.get("participants", [])) <= set(people)
        for edit in event.get("edits", []):
            assert edit["participant"] in people
        for attachment in event.get("attachments", []):
            referenced.add(attachment["id"])
    assert referenced <= names
    assert names - {"rsmf_manifest.json"} == referenced


def test_format_checker_rejects_timestamps_without_offset():
    """Without rfc3339-validator installed, jsonschema silently skips date-time; this must not pass then."""
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    assert not checker.conforms("2018-09-11T09:45:00", "date-time"), "pip install rfc3339-validator"
    assert checker.conforms("2018-09-11T09:45:00Z", "date-time")
    assert not rsmf.is_datetime("2018-09-11T09:45:00") and rsmf.is_datetime("2024-09-10T04:00:00.123Z")


def test_every_manifest_is_valid_and_every_reference_resolves(files, validator):
    found, _ = files
    assert len(found) == 3  # alpha on two Shanghai days, the DM on one
    for name, data in found:
        _, manifest, names, _ = open_rsmf(data)
        errors = sorted(validator.iter_errors(manifest), key=str)
        assert not errors, (name, [e.message for e in errors])
        references_resolve(manifest, names)
        assert rsmf.check(data) == [], name


def test_headers_match_the_manifest(files):
    found, _ = files
    for name, data in found:
        message, manifest, _, _ = open_rsmf(data)
        events = manifest["events"]
        assert message["X-RSMF-Version"] == manifest["version"] == "2.0.0"
        assert message["X-RSMF-BeginDate"] == min(e["timestamp"] for e in events)
        assert message["X-RSMF-EndDate"] == max(e["timestamp"] for e in events)
        assert message["X-RSMF-EventCount"] == str(len(events))
        assert message["X-RSMF-AttachmentCount"] == str(sum(len(e.get("attachments", [])) for e in events))
        assert message["X-RSMF-EventCollectionID"] == manifest["eventcollectionid"]
        assert message["X-RSMF-Application"] == "Lark"
        assert message["X-RSMF-Custodian"] == "Li Wei"
        assert message["X-RSMF-Generator"].startswith("discovery ")
        displays = [p.get("display", p["id"]) for p in manifest["participants"]]
        assert message["X-RSMF-Participants"] == ", ".join(displays)
        assert message["X-RSMF-BegBates"] == name.removesuffix(".rsmf")
        assert len(message["To"].addresses) == len(manifest["participants"])
        assert message["MIME-Version"] == "1.0" and message.get_content_type() == "multipart/mixed"


def test_files_are_seven_bit_and_non_ascii_survives(files):
    found, _ = files
    participants_seen = set()
    for _, data in found:
        assert max(data) < 128
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))
        message, manifest, _, _ = open_rsmf(data)
        participants_seen |= set(message["X-RSMF-Participants"].split(", "))
        body = message.get_body(("plain",)).get_content()
        for event in manifest["events"]:
            first_line = event["body"].split("\n")[0]
            assert first_line in body  # the indexed text lists every event
    assert {"李伟", "Sofia Marín", "Mark Ellison"} <= participants_seen  # no space lost in folding
    alpha = next(data for _, data in found if b"oc_alpha" in data)
    message = BytesParser(policy=email.policy.default).parsebytes(alpha)
    assert "我们需要洗白这笔账" in message.get_body(("plain",)).get_content()
    assert message["Subject"].startswith("Alpha 项目组")


def test_edits_deletions_replies_reactions_attachments(files):
    found, _ = files
    events = {}
    for _, data in found:
        _, manifest, names, archive = open_rsmf(data)
        for event in manifest["events"]:
            native = next(c["value"] for c in event["custom"] if c["name"] == "native_id")
            events[native] = (event, names, archive)
    edited, _, _ = events["om_0006"]
    assert edited["edits"] == [{"participant": "ou_mark", "timestamp": "2024-09-10T04:09:00.000Z",
                                "new": "-2+3"}]
    assert "previous" not in edited["edits"][0]  # sources keep no earlier version; none is invented
    assert events["om_0007"][0]["deleted"] is True
    assert events["om_0005"][0]["parent"] == events["om_0004"][0]["id"]
    assert events["om_0004"][0]["reactions"] == [{"value": "THUMBSUP", "count": 1, "participants": ["ou_li"]}]
    attached, names, archive = events["om_0008"]
    [attachment] = attached["attachments"]
    assert attachment["display"] == "ledger.xlsx" and attachment["id"] in names
    assert "PLACEHOLDER" in archive.read(attachment["id"]).decode()
    participants = {p["id"]: p for _, data in found for p in open_rsmf(data)[1]["participants"]}
    assert participants["ou_li"]["display"] == NAMES["ou_li"] and participants["ou_li"]["account_id"] == "ou_li"


def test_dm_is_direct_and_groups_are_channels(files):
    found, _ = files
    types = {}
    for _, data in found:
        conversation = open_rsmf(data)[1]["conversations"][0]
        types[conversation["id"]] = conversation["type"]
        assert conversation["platform"] == "lark"
    assert types == {"oc_alpha": "channel", "oc_dm": "direct"}


def test_rsmf_is_deterministic(case, tmp_path):
    a = export(case, tmp_path / "a.zip", query="", context=0, slice="conversation")
    b = export(case, tmp_path / "b.zip", query="", context=0, slice="conversation")
    with zipfile.ZipFile(a.path) as za, zipfile.ZipFile(b.path) as zb:
        names = [n for n in za.namelist() if n.startswith("rsmf/")]
        assert len(names) == 2
        for name in names:
            assert za.read(name) == zb.read(name)


def _messages(n: int, conversation: str = "c1", start_hour: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        hour = start_hour + i
        out.append({"conversation_id": conversation, "conversation_name": conversation, "conversation_type": "group",
                    "sent_at": f"2024-03-{1 + hour // 24:02d}T{hour % 24:02d}:30:00.000Z", "hit": i % 2 == 0})
    return out


@pytest.mark.parametrize(("slice_name", "tz", "expected"), [
    ("conversation", "UTC", [30]),
    ("24h", "UTC", [24, 6]),
    ("12h", "UTC", [12, 12, 6]),
    ("8h", "UTC", [8, 8, 8, 6]),
    ("24h", "Asia/Shanghai", [16, 14]),  # UTC 16:00 is local midnight
])
def test_slices_cut_on_local_calendar_periods(slice_name, tz, expected):
    docs = list(documents(_messages(30), slice_name=slice_name, tz=ZoneInfo(tz), bates=Bates("X", 1, 30)))
    assert [len(d.messages) for d in docs] == expected
    numbers = [(int(d.begbates[1:]), int(d.endbates[1:])) for d in docs]
    assert numbers[0][0] == 1 and numbers[-1][1] == 30
    assert all(b == a_end + 1 for (_, a_end), (b, _) in zip(numbers, numbers[1:], strict=False))


def test_large_slices_split_into_parts_without_gaps():
    docs = list(documents(_messages(7) + _messages(2, "c2"), slice_name="conversation", tz=ZoneInfo("UTC"),
                          bates=Bates("X", 5, 9), max_events=3))
    assert [(d.conversation_id, d.part, len(d.messages)) for d in docs] == [
        ("c1", 1, 3), ("c1", 2, 3), ("c1", 3, 1), ("c2", 1, 2)]
    assert [d.begbates for d in docs] == ["X0000005", "X0000008", "X0000011", "X0000012"]
    assert all(m["export"]["document"] == d.begbates for d in docs for m in d.messages)


# ------------------------------------------------------------------------ the checker catches what it must

def _valid_manifest(files) -> tuple[dict, set[str]]:
    found, _ = files
    data = next(data for _, data in found if b"X-RSMF-AttachmentCount: 1" in data)
    _, manifest, names, _ = open_rsmf(data)
    return manifest, names


@pytest.mark.parametrize(("breakage", "expected"), [
    (lambda m, n: m["participants"][0].__setitem__("id", 7), "not a string"),
    (lambda m, n: m["events"][0].__setitem__("attachment", []), "unknown keys"),
    (lambda m, n: m["events"][0].__setitem__("participant", "ou_nobody"), "is not defined"),
    (lambda m, n: n.add("stray.png"), "does not have a reference"),
    (lambda m, n: n.discard(next(iter(n - {"rsmf_manifest.json"}))), "was not found in rsmf.zip"),
    (lambda m, n: m["events"][1].__setitem__("parent", "no-such-event"), "parent"),
    (lambda m, n: m["conversations"][0].__setitem__("custodian", "ou_nobody"), "custodian"),
    (lambda m, n: m["events"][0].__setitem__("timestamp", "2018-09-11T09:45:00"), "RFC 3339"),
    (lambda m, n: m["events"][0].__setitem__("type", "chat"), "type"),
])
def test_checker_catches_broken_manifests(files, breakage, expected):
    manifest, names = _valid_manifest(files)
    assert rsmf.check_manifest(manifest, names) == []
    broken, broken_names = copy.deepcopy(manifest), set(names)
    breakage(broken, broken_names)
    problems = rsmf.check_manifest(broken, broken_names)
    assert any(expected in problem for problem in problems), problems


def test_checker_catches_headers_that_disagree(files):
    found, _ = files
    data = found[0][1].replace(b"X-RSMF-EventCount: ", b"X-RSMF-EventCount: 9")
    assert any("X-RSMF-EventCount" in problem for problem in rsmf.check(data))
