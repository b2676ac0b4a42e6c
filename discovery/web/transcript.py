"""Read-only case.db queries behind the conversation view: pages of a transcript, bundles, roots.

A transcript is read a page at a time around a message, or before/after one, never whole (a
channel can hold 100,000 messages). Merged-forward bundles are their own streams; they are shown
nested under the message that carried them. No Flask here: these take a Case and return records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from discovery.case import Case
from discovery.ingest import stream_of
from discovery.model import iso_utc, stable_id

PAGE_SIZE = 50
MAX_BUNDLE = 200
MAX_DEPTH = 4
FORWARD_KIND = "forward"  # the kind of a message that carries a merged-forward bundle


@dataclass
class Page:
    conversation: dict[str, Any]
    messages: list[dict[str, Any]]
    has_earlier: bool
    has_later: bool
    anchor: str | None = None  # the message asked for (it may sit inside a bundle)
    bundles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # message id -> its children
    related: dict[str, dict[str, Any]] = field(default_factory=dict)
    forwarded_in: list[dict[str, Any]] = field(default_factory=list)  # carriers, when seen only in bundles

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation": self.conversation,
            "anchor": self.anchor,
            "has_earlier": self.has_earlier,
            "has_later": self.has_later,
            "messages": [dict(m, bundle=self.bundles.get(m["id"])) if m["id"] in self.bundles else m
                         for m in self.messages],
            "related": self.related,
            "forwarded_in": self.forwarded_in,
        }


def exists(case: Case, conversation_id: str) -> bool:
    return case.db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is not None


def conversation(case: Case, conversation_id: str) -> dict[str, Any] | None:
    row = case.db.execute(
        "SELECT id, name, type, source_format FROM conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    if row is None:
        return None
    stats = case.db.execute(  # answered from the (conversation_id, sent_at_us, id) index alone
        "SELECT COUNT(*), MIN(sent_at_us), MAX(sent_at_us) FROM messages WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    members = case.db.execute(
        "SELECT p.id, COALESCE(p.name, p.id) AS name, p.kind FROM conversation_members cm "
        "JOIN participants p ON p.id = cm.participant_id WHERE cm.conversation_id = ? ORDER BY 2 LIMIT 500",
        (conversation_id,),
    ).fetchall()
    return {
        "id": row["id"], "name": row["name"] or row["id"], "type": row["type"], "source_format": row["source_format"],
        "messages": stats[0], "first_at": _iso(stats[1]), "last_at": _iso(stats[2]),
        "members": [dict(member) for member in members],
    }


def conversations(case: Case, limit: int = 1000) -> list[dict[str, Any]]:
    """Every conversation with its message count and time span, busiest first."""
    rows = case.db.execute(
        "SELECT c.id, COALESCE(c.name, c.id) AS name, c.type, c.source_format, g.n AS messages, g.first_us, g.last_us "
        "FROM conversations c LEFT JOIN (SELECT conversation_id, COUNT(*) AS n, MIN(sent_at_us) AS first_us, "
        "MAX(sent_at_us) AS last_us FROM messages GROUP BY conversation_id) g ON g.conversation_id = c.id "
        "ORDER BY g.n DESC, 2 LIMIT ?",
        (limit,),
    )
    return [{"id": row["id"], "name": row["name"], "type": row["type"], "source_format": row["source_format"],
             "messages": row["messages"] or 0, "first_at": _iso(row["first_us"]), "last_at": _iso(row["last_us"])}
            for row in rows]


def _iso(us: int | None) -> str | None:
    """Epoch microseconds as the case's ISO UTC text ("…Z")."""
    if us is None:
        return None
    return iso_utc(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us))


def unnamed_label(case: Case, conversation_id: str) -> str:
    """A readable name for a conversation the export left unnamed (often a DM): its members."""
    row = case.db.execute("SELECT type FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    names = [r[0] for r in case.db.execute(
        "SELECT COALESCE(p.name, p.id) FROM conversation_members cm JOIN participants p ON p.id = cm.participant_id "
        "WHERE cm.conversation_id = ? AND p.kind IS NOT 'bot' ORDER BY 1 LIMIT 6", (conversation_id,))]
    if not names:
        return conversation_id
    kind = "Direct message" if row is not None and row[0] == "dm" else "Unnamed conversation"
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    return f"{kind}: {shown}"


def main_stream(conversation_id: str) -> str:
    return stream_of(SimpleNamespace(conversation_id=conversation_id, bundle_id=None))  # type: ignore[arg-type]


def bundle_stream(conversation_id: str, bundle_native_id: str) -> str:
    return stream_of(SimpleNamespace(conversation_id=conversation_id, bundle_id=bundle_native_id))  # type: ignore[arg-type]


def by_native(case: Case, source_format: str, native_id: str, conversation_id: str | None = None
              ) -> dict[str, Any] | None:
    """The message with NATIVE_ID: looked up exactly in CONVERSATION_ID first, else anywhere in the case.

    A merged-forward bundle's messages keep the chat they were first posted in, so the message that
    carried the bundle can be in another conversation.
    """
    if conversation_id:
        found = case.message(stable_id(source_format, conversation_id, native_id))
        if found is not None:
            return found
    row = case.db.execute(
        "SELECT id FROM messages WHERE native_id = ? AND source_format = ? ORDER BY seq LIMIT 1",
        (native_id, source_format),
    ).fetchone()
    return case.message(row[0]) if row else None


def carrier(case: Case, message: dict[str, Any]) -> dict[str, Any] | None:
    """The message in a main transcript whose merged-forward bundle holds MESSAGE (through nesting), if any."""
    seen = 0
    while message.get("bundle_id") and seen < MAX_DEPTH:
        parent = by_native(case, message["source_format"], message["bundle_id"], message["conversation_id"])
        if parent is None:
            return None
        message, seen = parent, seen + 1
    return message if seen else None


def home_of(case: Case, message_id: str) -> dict[str, Any] | None:
    """Where MESSAGE_ID is shown: itself, or the top message carrying the bundle it was forwarded in."""
    message = case.message(message_id)
    if message is None:
        return None
    return carrier(case, message) or message


def page(case: Case, conversation_id: str, *, at: str | None = None, before: str | None = None,
         after: str | None = None, size: int = PAGE_SIZE) -> Page | None:
    """One page of the transcript: around AT, ending just BEFORE, starting just AFTER, or the first.

    Returns None when the conversation, or a message named, is not in it.
    """
    info = conversation(case, conversation_id)
    if info is None:
        return None
    stream = main_stream(conversation_id)
    anchor = at
    forwarded_in: list[dict[str, Any]] = []
    if at or before or after:
        top = home_of(case, at or before or after)  # type: ignore[arg-type]
        if top is None or top["conversation_id"] != conversation_id or top.get("bundle_id"):
            return None  # not here (see home_of), or in a bundle whose carrier is not in the case
        if at:
            half = size // 2
            messages = case.window(top["id"], half, size - half - 1)
        elif before:
            messages = case.window(top["id"], size, 0)[:-1]
        else:
            messages = case.window(top["id"], 0, size)[1:]
    else:
        first = case.db.execute(
            "SELECT id FROM messages WHERE stream = ? ORDER BY sent_at_us, id LIMIT 1", (stream,)
        ).fetchone()
        messages = case.window(first[0], 0, size - 1) if first else []
        if not messages:
            forwarded_in = _forwarded_in(case, conversation_id)
    result = Page(info, messages, has_earlier=False, has_later=False, anchor=anchor, forwarded_in=forwarded_in)
    if messages:
        result.has_earlier = _exists(case, messages[0]["id"], "<")
        result.has_later = _exists(case, messages[-1]["id"], ">")
    result.bundles = bundles(case, messages)
    shown = [*messages, *(child for children in result.bundles.values() for child in children)]
    result.related = related(case, shown)
    return result


def _forwarded_in(case: Case, conversation_id: str) -> list[dict[str, Any]]:
    """Messages carrying the bundles in which this conversation's messages were seen (when only there)."""
    rows = case.db.execute(
        "SELECT DISTINCT source_format, bundle_id FROM messages WHERE conversation_id = ? AND bundle_id IS NOT NULL "
        "LIMIT 50", (conversation_id,),
    ).fetchall()
    found = (by_native(case, fmt, native, conversation_id) for fmt, native in rows)
    return [_brief(m) for m in found if m is not None]


def _exists(case: Case, message_id: str, direction: str) -> bool:
    order = "<" if direction == "<" else ">"
    row = case.db.execute(
        f"SELECT EXISTS (SELECT 1 FROM messages m, messages a WHERE a.id = ? AND m.stream = a.stream "
        f"AND (m.sent_at_us, m.id) {order} (a.sent_at_us, a.id))",
        (message_id,),
    ).fetchone()
    return bool(row[0])


def bundles(case: Case, messages: list[dict[str, Any]], depth: int = 0) -> dict[str, list[dict[str, Any]]]:
    """For each of MESSAGES that carried a merged-forward bundle: the bundle's messages (nested ones too)."""
    carriers = {(m["source_format"], m["native_id"]): m["id"] for m in messages if m.get("kind") == FORWARD_KIND}
    if depth >= MAX_DEPTH or not carriers:
        return {}
    natives = sorted({native for _, native in carriers})
    marks = ",".join("?" * len(natives))
    rows = case.db.execute(
        f"SELECT id, source_format, bundle_id FROM messages WHERE bundle_id IN ({marks}) ORDER BY sent_at_us, id",
        natives,
    ).fetchall()
    ids_by_carrier: dict[str, list[str]] = {}
    for message_id, source_format, bundle_id in rows:
        carrier_id = carriers.get((source_format, bundle_id))
        if carrier_id is None:
            continue
        children = ids_by_carrier.setdefault(carrier_id, [])
        if len(children) < MAX_BUNDLE:
            children.append(message_id)
    records = case.messages_by_id([i for ids in ids_by_carrier.values() for i in ids])
    found = {carrier_id: [records[i] for i in ids if i in records] for carrier_id, ids in ids_by_carrier.items()}
    nested = bundles(case, [m for children in found.values() for m in children], depth + 1)
    return found | nested


def related(case: Case, messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each message that replies in a thread or sits in a bundle: the root / carrier, briefly.

    {message id: {"reply_to": brief or None, "thread_id": ..., "bundle": brief or None}}; a brief is
    {id, sender_name, sent_at, text (first 200 characters), found}.
    """
    replies = {m["id"]: stable_id(m["source_format"], m["conversation_id"], m["reply_to"])
               for m in messages if m.get("reply_to")}  # replies stay in their conversation
    records = case.messages_by_id(sorted(set(replies.values()))) if replies else {}
    out: dict[str, dict[str, Any]] = {}
    for m in messages:
        entry: dict[str, Any] = {}
        if m.get("reply_to"):
            target = records.get(replies[m["id"]])
            entry["reply_to"] = _brief(target) if target else {"native_id": m["reply_to"], "found": False}
        if m.get("bundle_id"):
            target = by_native(case, m["source_format"], m["bundle_id"], m["conversation_id"])
            entry["bundle"] = _brief(target) if target else {"native_id": m["bundle_id"], "found": False}
        if m.get("thread_id"):
            entry["thread_id"] = m["thread_id"]
        if entry:
            out[m["id"]] = entry
    return out


def _brief(message: dict[str, Any]) -> dict[str, Any]:
    text = message["text"] or ", ".join(a.get("name") or a.get("type") or "attachment"
                                        for a in message["attachments"])
    return {
        "id": message["id"], "native_id": message["native_id"], "conversation_id": message["conversation_id"],
        "sender_name": message["sender_name"], "sent_at": message["sent_at"], "deleted": message["deleted"],
        "text": text[:200] + ("…" if len(text) > 200 else ""), "found": True,
    }
