"""Relativity Short Message Format (RSMF 1.0 / 2.0) as an input: `.rsmf` emails and bare manifests.

An `.rsmf` file is an RFC 5322 email whose one attachment, `rsmf.zip`, holds
`rsmf_manifest.json` and the files it references (ediscovery.md §1). The email body is only a
rendering for keyword tools, so messages come from the manifest: participants, conversations
and events. A manifest may also arrive bare (`rsmf_manifest.json`, or `rsmf.zip` unpacked or
given as is); files that a manifest in the same zip references are claimed as its attachments.

Ids in a manifest are local to it ("P1", "C1", "1"), so they are scoped: by the manifest's
`eventcollectionid` (which all slices of one conversation share) or, without one, by the hash
of the source file, so two unrelated manifests never merge. The conversation's platform
("slack", "signal", ...) is kept with each event in ``raw`` as ``{"platform": ..., "event": ...}``.
A deleted event's body is kept as text when it is recovered content (collection tools often
capture it) and dropped only when it is a "message deleted" placeholder.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import PurePosixPath
from typing import Any

from discovery.model import Attachment, Mention, Message, Reaction, SourceError
from discovery.sources._localtime import LocalZone
from discovery.sources._times import parse_iso
from discovery.sources.base import Parsed, ParseOptions
from discovery.sources.encoding import decode, head_text
from discovery.sources.files import HEAD_BYTES, MAX_MEMBER_BYTES, MAX_RATIO, SourceFile

MANIFEST = "rsmf_manifest.json"
_BOMB_FLOOR = 10 * 1024**2  # as files.py: a high ratio only matters for members bigger than this
_MANIFEST_KEYS = re.compile(r'"(?:participants|conversations|events)"\s*:\s*\[')
_VERSION = re.compile(r'"version"\s*:\s*"[12]\.\d')
_PLACEHOLDER = re.compile(
    r"^\W*(?:(?:this )?message (?:was |has been )?(?:deleted|removed|recalled|unsent)|\[?deleted\]?)\W*$", re.I
)
_IMAGES = (".png", ".jpg", ".jpeg", ".gif")
_KINDS = {"message": "message", "disclaimer": "system", "join": "system", "leave": "system", "history": "system"}


class RsmfAdapter:
    name = "rsmf"
    source_format = "rsmf"
    description = "Relativity Short Message Format 1.0/2.0: .rsmf email (rsmf.zip inside) or a bare rsmf_manifest.json"
    limits = (
        "Whatever the producing tool put in the manifest: platform-specific detail is flattened into events; "
        "ids are local to the manifest; emoji are short names (:smile:); edit history only if the producer "
        "filled `edits`; the custodian, direction, importance and read receipts are kept only in raw. The "
        "email body is a rendering and is not read."
    )

    def sniff(self, file: SourceFile) -> int:
        try:
            text = head_text(file.head())
        except (OSError, zipfile.BadZipFile, EOFError, zlib.error):
            return 0
        if _has_version_header(_header_block(text)):
            return 95
        if _looks_like_manifest(text):
            return 85
        return 30 if _is_referenced(file) else 0  # a file that an RSMF manifest in the same zip references

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        zone = LocalZone((options or ParseOptions()).timezone)
        sizes = {PurePosixPath(f.member).name: f.size for f in files if f.member}
        for file in files:
            try:
                for item in _parse_file(file, zone, sizes):
                    yield file, item
            except Exception as error:  # noqa: BLE001 - the contract: a bad file is an item, never a crash
                yield file, SourceError(f"cannot read this RSMF file: {type(error).__name__}: {error}")


_BLANK_LINE = re.compile(r"\n\r?\n")  # searched by its first character, unlike r"\r?\n\r?\n"
_VERSION_HEADER = re.compile(r"X-RSMF-Version:", re.I)


def _header_block(text: str) -> str:
    """``re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]``: TEXT up to its first blank line.

    Every match of that pattern holds one of r"\n\r?\n", starting there or one "\r" earlier, so
    the leftmost one starts at the leftmost of these (or the "\r" just before it).
    """
    found = _BLANK_LINE.search(text)
    if found is None:
        return text
    start = found.start()
    return text[: start - 1] if start and text[start - 1] == "\r" else text[:start]


def _has_version_header(block: str) -> bool:
    """``re.search(r"(?im)^X-RSMF-Version:", block)``, tried only where a line starts."""
    at = 0
    while at >= 0:
        if _VERSION_HEADER.match(block, at):
            return True
        at = block.find("\n", at)
        if at >= 0:
            at += 1
    return False


def _looks_like_manifest(text: str) -> bool:
    stripped = text.lstrip()
    return stripped.startswith("{") and len(set(_MANIFEST_KEYS.findall(text))) >= 2 and bool(_VERSION.search(text))


def _stamp(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _referenced(zip_path: str, _stamp: tuple[int, int]) -> frozenset[str]:
    """File names the manifest(s) inside ZIP_PATH reference (attachments, avatars, icons)."""
    names: set[str] = set()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError, NotImplementedError):
        return frozenset()
    with archive:
        for info in archive.infolist():
            if info.is_dir() or _refused(info):
                continue
            try:
                with archive.open(info) as stream:
                    head = stream.read(HEAD_BYTES)
                    if not _looks_like_manifest(head_text(head)):
                        continue
                    names |= _file_references(json.loads(decode(head + stream.read())[0]))
            except (OSError, zipfile.BadZipFile, EOFError, zlib.error, ValueError, RuntimeError, NotImplementedError):
                continue  # an unreadable member references nothing here; it is reported when it is read itself
    return frozenset(names)


def _file_references(manifest: Any) -> set[str]:
    if not isinstance(manifest, dict):
        return set()
    names = {str(p.get("avatar")) for p in _dicts(manifest.get("participants")) if p.get("avatar")}
    names |= {str(c.get("icon")) for c in _dicts(manifest.get("conversations")) if c.get("icon")}
    for event in _dicts(manifest.get("events")):
        names |= {str(a.get("id")) for a in _dicts(event.get("attachments")) if a.get("id")}
    return names


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _refused(info: zipfile.ZipInfo) -> str | None:
    """The caps files.py applies to zips the user gives, applied to the rsmf.zip inside an email."""
    if info.file_size > MAX_MEMBER_BYTES:
        return f"member expands to {info.file_size} bytes, over the {MAX_MEMBER_BYTES} cap"
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > _BOMB_FLOOR:
        return f"compression ratio {info.file_size // info.compress_size}:1 (zip bomb?)"
    if info.flag_bits & 0x1:
        return "encrypted member"
    return None


def _parse_file(file: SourceFile, zone: LocalZone, sizes: dict[str, int]) -> Iterator[Message | SourceError]:
    head = head_text(file.head())
    is_email = bool(re.search(r"(?im)^X-RSMF-Version:", re.split(r"\r?\n\r?\n", head, maxsplit=1)[0]))
    if not is_email and not _looks_like_manifest(head) and _is_referenced(file):
        return  # an attachment file of a manifest in the same zip: read through the manifest
    if zone.error:
        yield SourceError(zone.error)
    if is_email:
        yield from _from_email(file, zone)
    elif head.lstrip()[:1] == "{":
        with file.open() as stream:
            text, _, _ = decode(stream.read())
        try:
            manifest = json.loads(text)
        except json.JSONDecodeError as error:
            yield SourceError(f"the manifest is not valid JSON: {error}")
            return
        yield from _events(manifest, _scope(manifest, file), "", sizes, zone, {})
    else:
        yield SourceError("not an RSMF file: no X-RSMF-Version header and no RSMF manifest")


def _is_referenced(file: SourceFile) -> bool:
    if not file.member:
        return False
    try:
        return PurePosixPath(file.member).name in _referenced(file.path, _stamp(file.path))
    except OSError:
        return False


def _scope(manifest: Any, file: SourceFile, headers: dict[str, str] | None = None) -> str:
    collection = manifest.get("eventcollectionid") if isinstance(manifest, dict) else None
    collection = collection or (headers or {}).get("x-rsmf-eventcollectionid")
    return str(collection) if collection else "file-" + (file.sha256 or file.hash())[:16]


def _from_email(file: SourceFile, zone: LocalZone) -> Iterator[Message | SourceError]:
    with file.open() as stream:
        email = BytesParser(policy=policy.default).parse(stream)
    headers = {key.lower(): str(value) for key, value in email.items() if key.lower().startswith("x-rsmf-")}
    payload = None
    for part in email.walk():
        if part.get_filename() == "rsmf.zip" or (part.get_content_type() in ("application/zip",
                                                                             "application/x-zip-compressed")):
            payload = part.get_payload(decode=True)
            break
    if not payload:
        yield SourceError("the RSMF email has no rsmf.zip attachment")
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as error:
        yield SourceError(f"the rsmf.zip attachment is not a readable zip ({error})")
        return
    with archive:
        infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        info = infos.get(MANIFEST)
        if info is None:
            yield SourceError(f"rsmf.zip has no {MANIFEST} at its root (members: {', '.join(sorted(infos))[:300]})")
            return
        problem = _refused(info)
        if problem:
            yield SourceError(f"rsmf.zip!{MANIFEST}: {problem}")
            return
        text, _, _ = decode(archive.read(info))
        sizes = {name: member.file_size for name, member in infos.items()}
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        yield SourceError(f"rsmf.zip!{MANIFEST} is not valid JSON: {error}", f"rsmf.zip!{MANIFEST}")
        return
    expected = headers.get("x-rsmf-eventcount", "").strip()
    events = manifest.get("events") if isinstance(manifest, dict) else None
    if expected.isdigit() and isinstance(events, list) and int(expected) != len(events):
        yield SourceError(f"X-RSMF-EventCount says {expected} events but the manifest has {len(events)}")
    yield from _events(manifest, _scope(manifest, file, headers), f"rsmf.zip!{MANIFEST}#", sizes, zone, headers)


class _Manifest:
    """Look-ups over one manifest: participants, conversations, thread roots, the earliest time."""

    def __init__(self, manifest: dict[str, Any], scope: str, headers: dict[str, str]):
        self.scope = scope
        self.participants = {str(p["id"]): p for p in _dicts(manifest.get("participants")) if "id" in p}
        self.conversations = {str(c["id"]): c for c in _dicts(manifest.get("conversations")) if "id" in c}
        events = _dicts(manifest.get("events"))
        self.parents = {str(e["id"]): str(e["parent"]) for e in events if "id" in e and e.get("parent") is not None}
        self.earliest = _earliest(events, headers)

    def person(self, pid: Any) -> tuple[str | None, str | None]:
        """(sender id, display name) for a participant id; ids scoped unless the platform gave one."""
        if pid is None:
            return None, None
        found = self.participants.get(str(pid))
        if found is None:
            return f"rsmf:{self.scope}:{pid}", None
        ident = found.get("account_id") or found.get("email") or f"rsmf:{self.scope}:{pid}"
        name = found.get("display") or found.get("email") or found.get("account_id") or f"Unnamed [{pid}]"
        return str(ident), str(name)

    def root(self, event_id: str) -> str:
        seen = {event_id}
        while event_id in self.parents and self.parents[event_id] not in seen:
            event_id = self.parents[event_id]
            seen.add(event_id)
        return event_id


def _earliest(events: list[dict[str, Any]], headers: dict[str, str]) -> tuple[datetime, str] | None:
    found = []
    for value in [e.get("timestamp") for e in events] + [headers.get("x-rsmf-begindate")]:
        try:
            moment, zoned = parse_iso(value) if isinstance(value, str) else (None, False)
        except ValueError:
            continue
        if moment is not None and zoned:
            found.append((moment, value))
    return min(found) if found else None


def _events(manifest: Any, scope: str, prefix: str, sizes: dict[str, int], zone: LocalZone,
            headers: dict[str, str]) -> Iterator[Message | SourceError]:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("events"), list):
        yield SourceError("not an RSMF manifest: no `events` array", prefix.rstrip("#"))
        return
    book = _Manifest(manifest, scope, headers)
    for index, event in enumerate(manifest["events"]):
        locator = f"{prefix}/events/{index}"
        conversation = book.conversations.get(str(event.get("conversation"))) if isinstance(event, dict) else None
        if conversation is None and len(book.conversations) == 1 and isinstance(event, dict) \
                and "conversation" not in event:
            conversation = next(iter(book.conversations.values()))
        platform = conversation.get("platform") if conversation else None
        raw = json.dumps({"platform": platform, "event": event}, ensure_ascii=False, separators=(",", ":"))
        try:
            yield _message(event, index, conversation, book, sizes, zone, locator, raw)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
            yield SourceError(f"unreadable RSMF event: {error}", locator, raw)


def _message(event: Any, index: int, conversation: dict[str, Any] | None, book: _Manifest, sizes: dict[str, int],
             zone: LocalZone, locator: str, raw: str) -> Message:
    if not isinstance(event, dict):
        raise ValueError(f"an event must be an object, not {type(event).__name__}")
    sent_at, sent_raw, assumption = _when(event.get("timestamp"), book, zone)
    conv_id = str(event.get("conversation") or (conversation or {}).get("id") or "unknown")
    event_type = str(event.get("type", "unknown"))
    kind = _KINDS.get(event_type, "unknown")
    sender_id, sender_name = book.person(event.get("participant"))
    body = event.get("body") if isinstance(event.get("body"), str) else ""
    native = str(event["id"]) if event.get("id") is not None else f"events/{index}"
    message = Message(
        native_id=native, source_format=RsmfAdapter.source_format,
        conversation_id=f"rsmf:{book.scope}:{conv_id}",
        conversation_name=(conversation or {}).get("display"),
        conversation_type={"direct": "dm", "channel": "channel"}.get(str((conversation or {}).get("type"))),
        sent_at=sent_at, sent_at_raw=sent_raw, tz_assumption=assumption, kind=kind, raw=raw, locator=locator,
    )
    if event.get("parent") is not None:
        message.reply_to = str(event["parent"])
        message.thread_id = book.root(message.reply_to)
    if kind == "system":
        # Joins, leaves and disclaimers are the system speaking; who joined goes in the text.
        message.sender_kind = "system"
        words = {"join": "joined", "leave": "left"}
        message.text = body or (f"{sender_name or sender_id} {words[event_type]}" if event_type in words else "")
        return message
    message.sender_id, message.sender_name = sender_id, sender_name
    message.sender_kind = "user" if sender_id else "unknown"
    message.deleted = bool(event.get("deleted"))
    message.text = "" if message.deleted and (not body or _PLACEHOLDER.match(body)) else body
    message.mentions = _mentions(message.text, book)
    edits = _dicts(event.get("edits"))
    if edits:
        message.edited = True
        times = [_edit_time(e.get("timestamp"), zone) for e in edits]
        message.edited_at = max((t for t in times if t), default=None)
    message.reactions = [
        Reaction(emoji=str(r["value"]), count=int(r.get("count") or len(r.get("participants") or []) or 1),
                 users=[book.person(p)[0] or str(p) for p in r.get("participants") or []])
        for r in _dicts(event.get("reactions"))
    ]
    message.attachments = [
        Attachment(name=str(a.get("display") or a["id"]),
                   type="image" if str(a["id"]).lower().endswith(_IMAGES) else "file",
                   size=a["size"] if isinstance(a.get("size"), int) else sizes.get(str(a["id"])), key=str(a["id"]))
        for a in _dicts(event.get("attachments"))
    ]
    return message


def _when(value: Any, book: _Manifest, zone: LocalZone) -> tuple[datetime, str, str | None]:
    if value is None:
        if book.earliest is None:
            raise ValueError("the event has no timestamp and no other event or header gives a time")
        moment, source = book.earliest
        return moment, "", f"no timestamp in the source event: placed at the earliest time in this file ({source})"
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be a string, not {type(value).__name__}")
    try:
        moment, zoned = parse_iso(value)
    except ValueError as error:
        raise ValueError(f"timestamp {value!r}: {error}") from error
    if zoned:
        return moment, value, None
    utc, label = zone.to_utc(moment)
    return utc, value, f"{label}; the RSMF timestamp has no offset"


def _edit_time(value: Any, zone: LocalZone) -> datetime | None:
    try:
        moment, zoned = parse_iso(value) if isinstance(value, str) else (None, False)
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if zoned else zone.to_utc(moment)[0]


def _mentions(text: str, book: _Manifest) -> list[Mention]:
    """RSMF has no mention markup; "@Display Name" of a known participant is taken as one."""
    found = []
    for pid, person in book.participants.items():
        display = person.get("display")
        if isinstance(display, str) and len(display) > 1 and f"@{display}" in text:
            ident, name = book.person(pid)
            found.append(Mention(id=ident, name=name, key=f"@{display}"))
    return found


ADAPTER = RsmfAdapter()
