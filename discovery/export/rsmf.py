"""rsmf/: one RSMF 2.0 file per document (a conversation slice), and the checks verify runs on them.

Each ``rsmf/<BEGBATES>.rsmf`` is an RFC 5322 message built with the standard library's email
package (7-bit: CRLF line ends, RFC 2047 encoded words for non-ASCII headers, base64 parts):

- headers: From (the custodian's participant when the directory names one, else the document's
  first sender) and To (every participant); display names are real, the addresses are synthetic
  ``<account id>@<platform>.invalid`` (the .invalid domain is reserved and can never be delivered;
  chat exports carry no e-mail addresses); Subject; and X-RSMF-Version, -Generator, -BeginDate,
  -EndDate, -EventCount, -Application, -Custodian, -Participants, -AttachmentCount and
  -EventCollectionID, each equal to what rsmf_manifest.json says, plus custom X-RSMF-BegBates and
  X-RSMF-EndBates (Relativity turns them into Rsmf/BegBates and Rsmf/EndBates fields);
- part 1, text/plain UTF-8 (base64): the events in time order, "time  sender: text", which is what
  review platforms index; the same text is ``text/<BEGBATES>.txt``, the DAT's TEXT_LINK;
- part 2, the only attachment, ``rsmf.zip`` (base64): ``rsmf_manifest.json`` at its root plus one
  placeholder text file per attachment a message listed. Chat exports list attachments without their
  bytes, so the placeholder says so and records the name, type, size and platform key; the event's
  attachment entry shows the original name.

Mapping: event id = discovery's stable message id; participant id = the platform account id;
``parent`` = the replied-to message when it is in the same document (otherwise the native id goes
in the event's custom ``reply_to``); edits = ``edits[{participant, timestamp, new}]`` (sources keep no
earlier versions, so ``previous`` is never invented); recalled/deleted = ``deleted: true``;
eventcollectionid = the conversation id, shared by every slice of a conversation.
"""

from __future__ import annotations

import binascii
import email.policy
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable
from datetime import datetime
from email.generator import NLCRE, BytesGenerator
from email.header import Header
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.utils import formataddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from discovery import __version__
from discovery.export.select import Selection
from discovery.export.slices import Document, shown_time
from discovery.model import stable_id

VERSION = "2.0.0"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
APPLICATIONS = {"lark": "Lark", "slack": "Slack", "teams": "Microsoft Teams", "telegram": "Telegram",
                "whatsapp": "WhatsApp", "discord": "Discord"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_LOCAL_PART = re.compile(r"[^A-Za-z0-9_-]+")
# The classic (compat32) API on purpose: policy.SMTP's folder drops the space between two encoded
# words when it folds a long non-ASCII header ("Sofia Marín" came out as "SofiaMarín" in
# X-RSMF-Participants), while email.header.Header keeps every space inside the encoded text.
_EML_POLICY = email.policy.compat32.clone(linesep="\r\n")


def platform_of(source_format: str) -> str:
    """The RSMF platform string: the source format's family, e.g. lark_api -> lark."""
    return source_format.split("_")[0].lower() or "unknown"


def _clean(value: str) -> str:
    """One header-safe line: control characters (CR, LF, ...) become spaces."""
    return _CONTROL.sub(" ", value).strip()


def _custom(pairs: Iterable[tuple[str, Any]]) -> list[dict[str, str]]:
    return [{"name": name, "value": str(value)} for name, value in pairs if value not in (None, "")]


def zip_info(name: str) -> zipfile.ZipInfo:
    """A zip entry with fixed metadata, so equal content gives equal bytes; deflate level 1 (about three
    times faster than the default level 6, for a file about a sixth larger)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = 1  # what ZipFile.open/writestr themselves set; read by ZipFile.open(info, "w")
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


class _Participants:
    """The participants of one manifest, keyed by id, in first-reference order then sorted."""

    def __init__(self, selection: Selection):
        self.selection = selection
        self.entries: dict[str, dict[str, Any]] = {}

    def ref(self, pid: str | None, name: str | None = None, kind: str | None = None) -> str | None:
        if not pid:
            if not name:
                return None
            pid = "name:" + _clean(name)
        entry = self.entries.setdefault(pid, {"id": pid, "name": None, "kind": None, "account": not
                                              pid.startswith("name:")})
        entry["name"] = entry["name"] or name
        entry["kind"] = entry["kind"] or kind
        return pid

    def manifest(self) -> list[dict[str, Any]]:
        known = self.selection.participants(e["id"] for e in self.entries.values() if e["account"])
        out = []
        for pid in sorted(self.entries):
            entry = self.entries[pid]
            directory = known.get(pid, {})
            name = directory.get("name") or entry["name"]
            item: dict[str, Any] = {"id": pid}
            if name:
                item["display"] = _clean(name)
            if entry["account"]:
                item["account_id"] = pid
            custom = _custom([("kind", directory.get("kind") or entry["kind"])])
            if custom:
                item["custom"] = custom
            out.append(item)
        return out


def build(doc: Document, selection: Selection, tz: ZoneInfo) -> tuple[bytes, str, dict[str, Any]]:
    """(the .rsmf bytes, its text body, its manifest) for DOC."""
    first = doc.messages[0]
    platform = platform_of(first["source_format"])
    people = _Participants(selection)
    for member in selection.members(doc.conversation_id):
        people.ref(member)
    custodians = sorted({m["custodian"] for m in doc.messages if m["custodian"]})
    custodian_id = _custodian_participant(selection, custodians, selection.members(doc.conversation_id))
    ids_here = {m["id"] for m in doc.messages}
    events: list[dict[str, Any]] = []
    placeholders: list[tuple[str, str]] = []
    for message in doc.messages:
        events.append(_event(message, people, ids_here, custodian_id, placeholders))
    participants = people.manifest()
    conversation: dict[str, Any] = {
        "id": doc.conversation_id,
        "display": _clean(doc.conversation_name or doc.conversation_id),
        "platform": platform,
        "type": "direct" if doc.conversation_type == "dm" else "channel",
        "participants": [p["id"] for p in participants],
    }
    if custodian_id:
        conversation["custodian"] = custodian_id
    conversation["custom"] = _custom([
        ("conversation_type", doc.conversation_type), ("slice", doc.slice_label),
        ("part", doc.part if doc.part > 1 else None), ("begbates", doc.begbates), ("endbates", doc.endbates),
    ])
    manifest = {
        "version": VERSION,
        "eventcollectionid": doc.conversation_id,
        "participants": participants,
        "conversations": [conversation],
        "events": events,
    }
    body = text_body(doc, tz, platform)
    headers = {
        "X-RSMF-Version": VERSION,
        "X-RSMF-Generator": f"discovery {__version__}",
        "X-RSMF-BeginDate": min(e["timestamp"] for e in events),
        "X-RSMF-EndDate": max(e["timestamp"] for e in events),
        "X-RSMF-EventCount": str(len(events)),
        "X-RSMF-Application": APPLICATIONS.get(platform, platform),
        "X-RSMF-Custodian": "; ".join(_clean(c) for c in custodians),
        "X-RSMF-Participants": ", ".join(p.get("display", p["id"]) for p in participants),
        "X-RSMF-AttachmentCount": str(len(placeholders)),
        "X-RSMF-EventCollectionID": doc.conversation_id,
        "X-RSMF-BegBates": doc.begbates,
        "X-RSMF-EndBates": doc.endbates,
    }
    archive = _zip(manifest, placeholders)
    first_sender = next((e["participant"] for e in events if "participant" in e), None)
    eml = _eml(doc, headers, body, archive, participants, custodian_id or first_sender, platform)
    return eml, body, manifest


def _custodian_participant(selection: Selection, custodians: list[str], members: list[str]) -> str | None:
    """The participant id whose directory name is the custodian's, if exactly one custodian is named."""
    if len(custodians) != 1 or not members:
        return None
    wanted = custodians[0].strip().lower()
    for pid, entry in sorted(selection.participants(members).items()):
        if (entry.get("name") or "").strip().lower() == wanted:
            return pid
    return None


def _event(message: dict[str, Any], people: _Participants, ids_here: set[str], custodian_id: str | None,
           placeholders: list[tuple[str, str]]) -> dict[str, Any]:
    pid = people.ref(message["sender_id"], message["sender_name"], message["sender_kind"])
    event: dict[str, Any] = {"id": message["id"], "type": "message"}
    parent = _parent(message, ids_here)
    if parent:
        event["parent"] = parent
    event["body"] = message["text"]
    if pid:
        event["participant"] = pid
    event["conversation"] = message["conversation_id"]
    event["timestamp"] = message["sent_at"]
    if message["deleted"]:
        event["deleted"] = True
    if custodian_id and pid:
        event["direction"] = "outgoing" if pid == custodian_id else "incoming"
    reactions = []
    for reaction in message["reactions"]:
        value = _clean(str(reaction.get("emoji") or ""))
        if not value:
            continue
        item: dict[str, Any] = {"value": value, "count": int(reaction.get("count") or 1)}
        users = [people.ref(str(user)) for user in reaction.get("users") or [] if user]
        if users:
            item["participants"] = users
        reactions.append(item)
    if reactions:
        event["reactions"] = reactions
    attachments = []
    for number, attachment in enumerate(message["attachments"], start=1):
        name = f"{message['export']['bates']}-attachment-{number}.txt"
        placeholders.append((name, _placeholder(message, attachment)))
        attachments.append({"id": name, "display": _clean(attachment.get("name") or attachment.get("type")
                                                          or "attachment")})
    if attachments:
        event["attachments"] = attachments
    if message["edited"] and pid:
        edit: dict[str, Any] = {"participant": pid}
        if message["edited_at"]:
            edit["timestamp"] = message["edited_at"]
        edit["new"] = message["text"]
        event["edits"] = [edit]
    event["custom"] = _custom([
        ("bates", message["export"]["bates"]), ("role", message["export"]["role"]),
        ("native_id", message["native_id"]), ("kind", message["kind"]), ("thread_id", message["thread_id"]),
        ("reply_to", message["reply_to"] if message["reply_to"] and not parent else None),
        ("forward_bundle", message["bundle_id"]), ("sent_at_raw", message["sent_at_raw"]),
        ("source", message["source"]["path"] + (f"!{message['source']['member']}" if message["source"]["member"]
                                                 else "")),
        ("source_sha256", message["source"]["sha256"]), ("locator", message["source"]["locator"]),
    ])
    return event


def _parent(message: dict[str, Any], ids_here: set[str]) -> str | None:
    reply = message["reply_to"]
    if not reply:
        return None
    if reply in ids_here:
        return reply
    key = stable_id(message["source_format"], message["conversation_id"], reply)
    return key if key in ids_here and key != message["id"] else None


def _placeholder(message: dict[str, Any], attachment: dict[str, Any]) -> str:
    lines = [
        "PLACEHOLDER: this attachment was listed in the source record, but the source export did not",
        "contain its bytes, so it is not part of this bundle.",
        "",
        f"Name: {attachment.get('name') or '(none)'}",
        f"Type: {attachment.get('type') or '(unknown)'}",
        f"Size as recorded: {attachment.get('size') if attachment.get('size') is not None else '(unknown)'}",
        f"Platform key: {attachment.get('key') or '(none)'}",
        f"Message: {message['id']} (Bates {message['export']['bates']}, native id {message['native_id']})",
    ]
    return "\n".join(lines) + "\n"


def text_body(doc: Document, tz: ZoneInfo, platform: str) -> str:
    """The events as plain text, in time order: the part review platforms index and show."""
    part = f", part {doc.part}" if doc.part > 1 else ""
    lines = [
        f"{doc.conversation_name} ({APPLICATIONS.get(platform, platform)} conversation {doc.conversation_id})",
        f"Slice: {doc.slice_label}{part}",
        f"Bates: {doc.begbates} - {doc.endbates} ({len(doc.messages)} messages, {doc.hits} hits)",
        f"Times: {tz.key}",
        "",
    ]
    for m in doc.messages:
        flags = "".join(
            f" [{flag}]" for flag, on in (("edited", m["edited"]), ("recalled/deleted", m["deleted"])) if on)
        text = m["text"].replace("\r\n", "\n").replace("\r", "\n").split("\n")
        lines.append(f"[{shown_time(m['export']['sent_at_local'])}] {m['sender_name'] or m['sender_id'] or '(unknown)'}"
                     f"{flags}: {text[0]}")
        lines.extend("    " + more for more in text[1:])
        for attachment in m["attachments"]:
            lines.append(f"    [attachment: {attachment.get('name') or attachment.get('type') or 'attachment'}]")
        if m["reactions"]:
            lines.append("    [reactions: " + ", ".join(
                f"{r.get('emoji')} x{r.get('count', 1)}" for r in m["reactions"]) + "]")
    return "\n".join(lines) + "\n"


def _zip(manifest: dict[str, Any], placeholders: list[tuple[str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zip_info("rsmf_manifest.json"),
                         json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        for name, text in placeholders:
            archive.writestr(zip_info(name), text.encode("utf-8"))
    return buffer.getvalue()


def _header(value: str) -> str | Header:
    """ASCII values as they are; others as RFC 2047 encoded words (UTF-8), folded between words."""
    return value if value.isascii() else Header(value, "utf-8")


def _address(participant: dict[str, Any] | None, platform: str) -> str:
    if participant is None:
        return f"(unknown) <unknown@{platform}.invalid>"
    local = _LOCAL_PART.sub("_", participant["id"]).strip("_") or "unknown"
    return formataddr((participant.get("display", ""), f"{local}@{platform}.invalid"), charset="utf-8")


def base64_lines(data: bytes) -> str:
    """``base64.encodebytes(DATA)`` as text (76-character lines, each ending in LF), which is what the
    email package writes for a base64 part; one C call and slices instead of a call per line."""
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "".join([text[start:start + 76] + "\n" for start in range(0, len(text), 76)])


def _encode_base64(part: MIMEApplication) -> None:
    """email.encoders.encode_base64, through base64_lines."""
    part.set_payload(base64_lines(part.get_payload(decode=True)))
    part["Content-Transfer-Encoding"] = "base64"


def _text_part(body: str) -> MIMEText:
    """``MIMEText(BODY, "plain", "utf-8")``: the part is made by the email package (its headers, base64
    chosen for UTF-8), then given BODY's base64, encoded by base64_lines rather than line by line."""
    part = MIMEText("", "plain", "utf-8")
    part.set_payload(base64_lines(body.encode("utf-8")))
    return part


class _Generator(BytesGenerator):
    """The stdlib BytesGenerator, writing a payload's lines in one call instead of two per line: the
    same bytes (``NL.join`` of the same split), but a 1,000-message document's base64 parts are
    thousands of lines, and the per-line calls were most of the cost of writing one."""

    def _write_lines(self, lines: str) -> None:
        if lines:  # str.split where it splits alike: NLCRE is CRLF, CR or LF, and base64 has only LF
            self.write(self._NL.join(NLCRE.split(lines) if "\r" in lines else lines.split("\n")))


def _as_bytes(message: MIMEMultipart) -> bytes:
    """``message.as_bytes(policy=_EML_POLICY)``, through _Generator."""
    out = io.BytesIO()
    _Generator(out, mangle_from_=False, policy=_EML_POLICY).flatten(message, unixfrom=False)
    return out.getvalue()


def _eml(doc: Document, headers: dict[str, str], body: str, archive: bytes, participants: list[dict[str, Any]],
         from_id: str | None, platform: str) -> bytes:
    """The .rsmf message, 7-bit clean, CRLF line ends, with a boundary derived from its content.
    From is FROM_ID's participant: the custodian's when the directory names them, else the first sender."""
    boundary = "=_discovery_" + hashlib.sha256(archive + body.encode("utf-8")).hexdigest()[:32]
    message = MIMEMultipart("mixed", boundary=boundary)
    by_id = {p["id"]: p for p in participants}
    sender = by_id.get(from_id or "") or (participants[0] if participants else None)
    message["From"] = _address(sender, platform)
    if participants:
        message["To"] = ", ".join(_address(p, platform) for p in participants)
    message["Subject"] = _header(_clean(f"{doc.conversation_name} - {doc.slice_label}"))
    for name, value in headers.items():
        if value:
            message[name] = _header(value)
    message.attach(_text_part(body))  # base64: the body may be Chinese
    attachment = MIMEApplication(archive, "zip", _encoder=_encode_base64)  # base64
    attachment.add_header("Content-Disposition", "attachment", filename="rsmf.zip")
    message.attach(attachment)
    return _as_bytes(message)


def write_document(folder: Path, doc: Document, directory: Any, tz: ZoneInfo) -> dict[str, Any]:
    """Write rsmf/<BEGBATES>.rsmf and text/<BEGBATES>.txt for DOC under FOLDER; returns what the DAT
    needs. DIRECTORY answers ``members`` and ``participants`` as a Selection does (it is one, or, in the
    worker process, a discovery.export.pipeline.Directory copied from one)."""
    eml, body, manifest = build(doc, directory, tz)
    native = f"rsmf/{doc.begbates}.rsmf"
    text = f"text/{doc.begbates}.txt"
    (folder / native).write_bytes(eml)
    (folder / text).write_bytes(body.encode("utf-8"))
    events = manifest["events"]
    return {
        "native": native, "text": text, "size": len(eml),
        "md5": hashlib.md5(eml).hexdigest(), "sha1": hashlib.sha1(eml).hexdigest(),
        "sha256": hashlib.sha256(eml).hexdigest(), "events": len(events),
        "attachments": sum(len(e.get("attachments", [])) for e in events),
        "begin": min(e["timestamp"] for e in events), "end": max(e["timestamp"] for e in events),
        "participants": [p.get("display", p["id"]) for p in manifest["participants"]],
        "custodian": "; ".join(sorted({m["custodian"] for m in doc.messages if m["custodian"]})),
        "platform": manifest["conversations"][0]["platform"], "eventcollectionid": manifest["eventcollectionid"],
    }


# ---------------------------------------------------------------------------------------- checks

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_KEYS = {
    "manifest": {"version", "participants", "conversations", "events", "eventcollectionid"},
    "participant": {"id", "display", "email", "avatar", "account_id", "custom"},
    "conversation": {"id", "display", "platform", "type", "participants", "custodian", "icon", "custom"},
    "event": {"id", "type", "parent", "body", "participant", "conversation", "timestamp", "deleted", "importance",
              "reactions", "attachments", "edits", "custom", "direction", "read_receipts"},
    "reaction": {"value", "count", "participants"},
    "attachment": {"id", "display", "size"},
    "edit": {"participant", "timestamp", "previous", "new"},
    "read_receipt": {"participant", "timestamp", "action"},
    "custom": {"name", "value"},
}
EVENT_TYPES = {"message", "disclaimer", "join", "leave", "history", "unknown"}


def is_datetime(value: object) -> bool:
    """RFC 3339 date-time, as JSON Schema's format checker reads it (an offset or Z is required)."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def check_manifest(manifest: Any, zip_names: set[str]) -> list[str]:
    """What is wrong with an RSMF 2.0 manifest: the schema's rules, key spelling, and every
    cross-reference (the rules the schema cannot express, reference §1.3).

    Each problem's text is formatted only when the check fails (``if not ...: problems.append``): a
    200,000-message bundle has millions of checks, and formatting every message up front (a repr of
    each event's body among them) was most of what verify spent."""
    problems: list[str] = []

    def keys(obj: Any, kind: str, where: str) -> bool:
        if not isinstance(obj, dict):
            problems.append(f"{where} is not an object")
            return False
        if not obj.keys() <= _KEYS[kind]:
            problems.append(f"{where} has unknown keys {sorted(set(obj) - _KEYS[kind])}")
        return True

    def string(obj: dict[str, Any], key: str, where: str, required: bool = False, min_length: int = 0) -> None:
        if key not in obj:
            if required:
                problems.append(f"{where} lacks required {key!r}")
            return
        value = obj[key]
        if not (isinstance(value, str) and len(value) >= min_length):
            problems.append(f"{where}.{key} is not a string of length >= {min_length}: {value!r}")

    def customs(obj: dict[str, Any], where: str) -> None:
        items = obj.get("custom", [])
        if isinstance(items, list) and all(map(_good_custom, items)):
            return
        for n, item in enumerate(items if isinstance(items, list) else [None]):
            if _good_custom(item):
                continue
            if keys(item, "custom", f"{where}.custom[{n}]"):
                string(item, "name", f"{where}.custom[{n}]", True, 1)
                string(item, "value", f"{where}.custom[{n}]", True, 1)

    if not keys(manifest, "manifest", "manifest"):
        return problems
    string(manifest, "version", "manifest", True, 5)
    if manifest.get("version") != VERSION:
        problems.append(f"manifest version is {manifest.get('version')!r}, not {VERSION}")
    string(manifest, "eventcollectionid", "manifest")
    for key in ("participants", "conversations", "events"):
        if not isinstance(manifest.get(key), list):
            problems.append(f"manifest.{key} is missing or not an array")
    if problems:
        return problems
    participant_ids: set[str] = set()
    referenced_files: set[str] = set()
    for n, p in enumerate(manifest["participants"]):
        where = f"participants[{n}]"
        if not keys(p, "participant", where):
            continue
        string(p, "id", where, True, 1)
        for key in ("display", "email", "avatar", "account_id"):
            string(p, key, where)
        if p.get("id") in participant_ids:
            problems.append(f"{where}: duplicate participant id {p.get('id')!r}")
        participant_ids.add(p.get("id"))
        if "avatar" in p:
            referenced_files.add(p["avatar"])
        customs(p, where)
    conversation_members: dict[str, set[str]] = {}
    for n, c in enumerate(manifest["conversations"]):
        where = f"conversations[{n}]"
        if not keys(c, "conversation", where):
            continue
        string(c, "id", where, True, 1)
        string(c, "platform", where, True, 1)
        string(c, "display", where)
        if c.get("type", "direct") not in ("direct", "channel"):
            problems.append(f"{where}.type {c.get('type')!r} is not direct/channel")
        members = c.get("participants")
        if not isinstance(members, list):
            problems.append(f"{where}.participants is missing or not an array")
        members = members if isinstance(members, list) else []
        for pid in members:
            if pid not in participant_ids:
                problems.append(f"{where}: participant {pid!r} is not defined")
        if "custodian" in c and c["custodian"] not in members:
            problems.append(f"{where}: custodian {c['custodian']!r} is not one of its participants")
        if "icon" in c:
            referenced_files.add(c["icon"])
        if c.get("id") in conversation_members:
            problems.append(f"{where}: duplicate conversation id {c.get('id')!r}")
        conversation_members[c.get("id")] = set(members)
        customs(c, where)
    event_conversation: dict[str, Any] = {}
    for e in manifest["events"]:
        if isinstance(e, dict) and isinstance(e.get("id"), str):
            if e["id"] in event_conversation:
                problems.append(f"duplicate event id {e['id']!r}")
            event_conversation[e["id"]] = e.get("conversation")
    for n, e in enumerate(manifest["events"]):
        where = f"events[{n}]"
        if not keys(e, "event", where):
            continue
        _check_event(e, where, participant_ids, conversation_members, event_conversation, referenced_files,
                     problems, string, keys)
        customs(e, where)
    for name in sorted(n for n in referenced_files if isinstance(n, str)):
        if name not in zip_names:
            problems.append(f"attachment {name!r} was not found in rsmf.zip")
    for name in sorted(zip_names - referenced_files - {"rsmf_manifest.json"}):
        problems.append(f"rsmf.zip file {name!r} does not have a reference in the manifest")
    return problems


def _good_custom(item: Any) -> bool:
    """A custom entry with nothing to report (the common case, checked without building any text):
    exactly a non-empty string name and value, the only two keys allowed."""
    return (item.__class__ is dict and len(item) == 2 and item.get("name").__class__ is str
            and item.get("value").__class__ is str and item["name"] != "" and item["value"] != "")


def _check_event(e: dict[str, Any], where: str, participant_ids: set[str], conversation_members: dict[str, Any],
                 event_conversation: dict[str, Any], referenced_files: set[str], problems: list[str],
                 string: Any, keys: Any) -> None:
    """check_manifest's rules for one event E (its custom entries excepted)."""
    if e.get("type") not in EVENT_TYPES:
        problems.append(f"{where}.type {e.get('type')!r} is not one of {sorted(EVENT_TYPES)}")
    for key in ("id", "parent", "body", "participant", "conversation"):
        string(e, key, where)
    if "timestamp" in e and not is_datetime(e["timestamp"]):
        problems.append(f"{where}.timestamp {e['timestamp']!r} is not an RFC 3339 date-time")
    if not isinstance(e.get("deleted", False), bool):
        problems.append(f"{where}.deleted is not a boolean")
    if e.get("importance", "normal") not in ("normal", "high"):
        problems.append(f"{where}.importance is not normal/high")
    if e.get("direction", "incoming") not in ("incoming", "outgoing"):
        problems.append(f"{where}.direction is not incoming/outgoing")
    if "participant" in e and e["participant"] not in participant_ids:
        problems.append(f"{where}: participant {e['participant']!r} is not defined")
    if "conversation" in e and e["conversation"] not in conversation_members:
        problems.append(f"{where}: conversation {e['conversation']!r} is not defined")
    if "parent" in e and not (e["parent"] in event_conversation
                              and event_conversation[e["parent"]] == e.get("conversation")):
        problems.append(f"{where}: parent {e['parent']!r} is not an event of the same conversation")
    for r_n, r in enumerate(e.get("reactions", [])):
        w = f"{where}.reactions[{r_n}]"
        if keys(r, "reaction", w):
            string(r, "value", w, True, 1)
            if not isinstance(r.get("count", 0), int):
                problems.append(f"{w}.count is not an integer")
            for pid in r.get("participants", []):
                if pid not in participant_ids:
                    problems.append(f"{w}: participant {pid!r} is not defined")
    for a_n, a in enumerate(e.get("attachments", [])):
        w = f"{where}.attachments[{a_n}]"
        if keys(a, "attachment", w):
            string(a, "id", w, True, 1)
            string(a, "display", w)
            if not isinstance(a.get("size", 0), int):
                problems.append(f"{w}.size is not an integer")
            referenced_files.add(a.get("id"))
    for d_n, d in enumerate(e.get("edits", [])):
        w = f"{where}.edits[{d_n}]"
        if keys(d, "edit", w):
            string(d, "participant", w, True, 1)
            if d.get("participant") not in participant_ids:
                problems.append(f"{w}: participant {d.get('participant')!r} is not defined")
            if "timestamp" in d and not is_datetime(d["timestamp"]):
                problems.append(f"{w}.timestamp is not an RFC 3339 date-time")
    for r_n, r in enumerate(e.get("read_receipts", [])):
        w = f"{where}.read_receipts[{r_n}]"
        if keys(r, "read_receipt", w) and r.get("participant") not in participant_ids:
            problems.append(f"{w}: participant is not defined")


def read(data: bytes) -> tuple[EmailMessage, dict[str, Any] | None, set[str], list[str]]:
    """Parse an .rsmf: (the message, its manifest, rsmf.zip's names, problems found on the way)."""
    problems: list[str] = []
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    zips = [part for part in message.iter_attachments() if part.get_filename() == "rsmf.zip"]
    others = [part.get_filename() for part in message.iter_attachments() if part.get_filename() != "rsmf.zip"]
    if len(zips) != 1:
        return message, None, set(), [f"has {len(zips)} rsmf.zip attachments, not exactly one"]
    if others:
        problems.append(f"has attachments besides rsmf.zip: {others}")
    if zips[0].get("Content-Transfer-Encoding", "").lower() != "base64":
        problems.append("rsmf.zip is not base64-encoded")
    try:
        with zipfile.ZipFile(io.BytesIO(zips[0].get_content())) as archive:
            names = set(archive.namelist())
            if "rsmf_manifest.json" not in names:
                return message, None, names, problems + ["rsmf.zip has no rsmf_manifest.json at its root"]
            manifest = json.loads(archive.read("rsmf_manifest.json").decode("utf-8"))
            for name in names:
                archive.read(name)  # CRC check
    except (zipfile.BadZipFile, ValueError, KeyError) as error:
        return message, None, set(), problems + [f"rsmf.zip cannot be read: {error}"]
    return message, manifest, names, problems


def check(data: bytes) -> list[str]:
    """Every problem with one .rsmf file: structure, manifest rules, header/manifest agreement."""
    message, manifest, names, problems = read(data)
    if manifest is None:
        return problems
    problems += check_manifest(manifest, names)
    if problems:
        return problems
    events = manifest["events"]
    stamps = [e["timestamp"] for e in events if "timestamp" in e]
    expected = {
        "X-RSMF-Version": manifest["version"],
        "X-RSMF-EventCount": str(len(events)),
        "X-RSMF-AttachmentCount": str(sum(len(e.get("attachments", [])) for e in events)),
        "X-RSMF-EventCollectionID": manifest.get("eventcollectionid"),
        "X-RSMF-BeginDate": min(stamps, key=_instant) if stamps else None,
        "X-RSMF-EndDate": max(stamps, key=_instant) if stamps else None,
        "X-RSMF-Participants": ", ".join(p.get("display", p["id"]) for p in manifest["participants"]),
    }
    for header, value in expected.items():
        actual = message.get(header)
        if value is None:
            continue
        if actual is None or " ".join(str(actual).split()) != " ".join(str(value).split()):
            problems.append(f"header {header} is {actual!r}, the manifest says {value!r}")
    body = message.get_body(("plain",))
    if body is None:
        problems.append("has no text/plain body")
    return problems


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
