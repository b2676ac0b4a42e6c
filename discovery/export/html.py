"""transcript.html: one self-contained, printable page: conversations in order, hits marked, context shaded.

Rendered with Jinja2 (autoescape on, undefined names are errors) from templates/export/transcript.html,
found by the web app's rule: the installed ``discovery.templates`` package, else ``<repo>/templates``.
The page is written one piece at a time, so it streams like the other files: the head, each
conversation's opening and closing, and the foot are macros of the template; each message's block is
:func:`message_html`, plain Python with the same escaping as Jinja's autoescape (markupsafe's), because
a template call per message (or per batch) cost more than everything else the transcript does, and a
200,000-message export has 200,000 of them. The template documents the block's markup.

Review decisions as of the export are shown with each message: its tags as labels (who, when) and
its notes in a box under the text (author, times); like everything else they are autoescaped text.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from discovery.export.review_snapshot import note_heading
from discovery.export.select import ConversationCount
from discovery.export.slices import local_text, shown_time

TEMPLATE = "export/transcript.html"
BATCH = 500  # message blocks per write


def template_folder() -> str:
    try:
        return str(importlib.resources.files("discovery.templates"))
    except ModuleNotFoundError:
        return str(Path(__file__).resolve().parents[2] / "templates")


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_folder()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def escape(value: str) -> str:
    """VALUE as HTML text: markupsafe.escape's replacements, in its order, without building a Markup."""
    return (value.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace("'", "&#39;")
            .replace('"', "&#34;"))


def message_html(v: dict[str, Any]) -> str:
    """One message's block (V is HtmlWriter.view's dict), byte for byte what the template's former
    ``messages`` macro wrote (see the comment in templates/export/transcript.html)."""
    role, bates = escape(v["role"]), escape(v["bates"])
    out = [f'\n<div class="msg {role}" id="{bates}">\n<div class="line1"><span class="role">{role}</span> '
           f'<b>{bates}</b> · {escape(v["time"])} · <span class="who">{escape(v["sender"])}</span>']
    out += [f' <span class="flag">[{escape(flag)}]</span>' for flag in v["flags"]]
    out.append('</div>\n<div class="text">')
    out += [f"<mark>{escape(text)}</mark>" if marked else escape(text) for text, marked in v["segments"]]
    out.append("</div>")
    if v["tags"] or v["notes"]:
        out.append('\n<div class="review">')
        if v["tags"]:
            out.append('\n<div class="tags">')
            out += [f'<span class="tag">{escape(t["name"])} <span class="by">· {escape(t["by"])}</span></span>'
                    for t in v["tags"]]
            out.append("</div>")
        out += [f'\n<div class="note"><div class="note-by">Note by {escape(n["heading"])}</div>'
                f'<div class="note-text">{escape(n["text"])}</div></div>' for n in v["notes"]]
        out.append("\n</div>")
    out += [f'\n<div class="extra">{escape(line)}</div>' for line in v["extra"]]
    out.append(f'\n<div class="prov">{escape(v["provenance"])}</div>\n</div>')
    return "".join(out)


def segments(text: str, spans: list[list[int]] | None) -> list[tuple[str, bool]]:
    """TEXT cut at the highlight SPANS: (piece, marked) pairs."""
    out: list[tuple[str, bool]] = []
    last = 0
    for start, end in spans or []:
        if start < last or end <= start:
            continue
        out += [(text[last:start], False), (text[start:end], True)]
        last = end
    out.append((text[last:], False))
    return [piece for piece in out if piece[0]]


_NO_REVIEW: dict[str, Any] = {"tags": (), "notes": ()}  # most messages: read only, never changed


class HtmlWriter:
    name = "transcript.html"

    def __init__(self, folder: Path, bundle: dict[str, Any], conversations: list[ConversationCount], tz: ZoneInfo):
        self.macros = environment().get_template(TEMPLATE).module
        self.tz = tz
        self.file = open(folder / self.name, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in close()
        self.conversations = {conv.id: (index, conv) for index, conv in enumerate(conversations, start=1)}
        self.current: str | None = None
        self.batch: list[str] = []
        self.file.write(str(self.macros.head({**bundle, "conversations": conversations})))

    def add(self, message: dict[str, Any]) -> None:
        if message["conversation_id"] != self.current:
            self.flush()
            if self.current is not None:
                self.file.write(str(self.macros.conversation_close()))
            self.current = message["conversation_id"]
            index, conv = self.conversations[self.current]
            self.file.write(str(self.macros.conversation_open({**conv.__dict__, "index": index})))
        self.batch.append(message_html(self.view(message)))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.file.write("".join(self.batch))
            self.batch = []

    def view(self, m: dict[str, Any]) -> dict[str, Any]:
        flags = []
        if m["edited"]:
            flags.append("edited" + (f" {local_text(m['edited_at'], self.tz)}" if m["edited_at"] else ""))
        if m["deleted"]:
            flags.append("recalled/deleted")
        if m["kind"] != "message":
            flags.append(m["kind"])
        extra = []
        if m["reply_to"]:
            extra.append(f"in reply to {m['reply_to']}")
        if m["thread_id"]:
            extra.append(f"thread {m['thread_id']}")
        if m["bundle_id"]:
            extra.append(f"forwarded inside bundle {m['bundle_id']}")
        for attachment in m["attachments"]:
            size = f", {attachment['size']} bytes" if attachment.get("size") is not None else ""
            extra.append(f"attachment: {attachment.get('name') or '(unnamed)'} ({attachment.get('type') or 'file'}"
                         f"{size}; not included, listed in the source)")
        if m["reactions"]:
            extra.append("reactions: " + ", ".join(
                f"{r.get('emoji')} ×{r.get('count', 1)}" for r in m["reactions"]))
        source = m["source"]
        where = source["path"] + (f" ! {source['member']}" if source["member"] else "")
        provenance = (f"id {m['id']} · native {m['native_id']} · {m['source_format']} · sent {m['sent_at']} "
                      f"(raw {m['sent_at_raw']}) · source {where} · {source['locator']} · sha256 {source['sha256']}")
        if m["custodian"]:
            provenance += f" · custodian {m['custodian']}"
        return {
            "bates": m["export"]["bates"], "role": m["export"]["role"],
            "time": shown_time(m["export"]["sent_at_local"]),
            "sender": m["sender_name"] or m["sender_id"] or "(unknown sender)", "flags": flags,
            "segments": segments(m["text"], m.get("highlights")), "extra": extra, "provenance": provenance,
            **self.review_view(m),
        }

    def review_view(self, m: dict[str, Any]) -> dict[str, Any]:
        """Tags and notes as the page shows them: times in the export's zone, like the message's."""
        if not m["tags"] and not m["notes"]:
            return _NO_REVIEW

        def shown(iso: str) -> str:
            return local_text(iso, self.tz)

        return {
            "tags": [{"name": t["name"], "by": f"{t['added_by']}, {shown(t['added_at'])}"} for t in m["tags"]],
            "notes": [{"heading": note_heading(n, shown), "text": n["text"]} for n in m["notes"]],
        }

    def close(self) -> None:
        self.flush()
        if self.current is not None:
            self.file.write(str(self.macros.conversation_close()))
        self.file.write(str(self.macros.foot()))
        self.file.close()
