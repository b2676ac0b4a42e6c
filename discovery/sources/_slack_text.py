"""Slack message content to searchable plain text: mrkdwn tokens, Block Kit, legacy attachments.

Slack stores mentions as ids (``<@U024BE7LH>``), links as ``<url|label>`` and escapes ``& < >``;
bot and app messages often have an empty ``text`` with the words in ``blocks`` or
``attachments``. A search for a person's name or a word in a bot alert must still hit, so every
token is resolved through the export's users.json/channels.json (names at export time) and every
text-bearing part is flattened, in reading order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from discovery.model import Mention
from discovery.sources._jsonio import list_of, obj_of, text_of

_TOKEN = re.compile(r"<([^<>\n]*)>")
_ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


@dataclass
class Renderer:
    """Resolves ids to names for one export and collects the mentions it rendered."""

    user_name: Callable[[str], str | None]
    channel_name: Callable[[str], str | None]
    mentions: list[Mention] = field(default_factory=list)

    def user(self, user_id: str, label: str = "", key: str | None = None) -> str:
        name = self.user_name(user_id) or label.lstrip("@") or user_id
        if not any(m.id == user_id for m in self.mentions):
            self.mentions.append(Mention(id=user_id, name=name, key=key or f"<@{user_id}>"))
        return "@" + name

    def channel(self, channel_id: str, label: str = "") -> str:
        return "#" + (self.channel_name(channel_id) or label.lstrip("#") or channel_id)

    # -------------------------------------------------------------------------- mrkdwn

    def mrkdwn(self, text: str) -> str:
        """Resolve ``<...>`` tokens, then unescape (Slack escapes only & < >, and only outside tokens)."""
        out: list[str] = []
        last = 0
        for match in _TOKEN.finditer(text):
            out.append(unescape(text[last : match.start()]))
            out.append(self._token(match.group(0), match.group(1)))
            last = match.end()
        out.append(unescape(text[last:]))
        return "".join(out)

    def _token(self, token: str, inner: str) -> str:
        target, _, label = inner.partition("|")
        label = unescape(label)
        if target[:2] in ("@U", "@W", "@B"):
            return self.user(target[1:], label, key=token)
        if target[:2] in ("#C", "#G", "#D"):
            return self.channel(target[1:], label)
        if target.startswith("!"):
            return _special(target[1:], label)
        url = unescape(target)
        if label and label != url and url != "mailto:" + label:
            return f"{label} ({url})"
        return label or url

    # -------------------------------------------------------------------------- blocks

    def blocks(self, blocks: Any) -> str:
        """Text of Block Kit blocks: rich_text, section (text + fields), header, context."""
        parts: list[str] = []
        for block in list_of(blocks):
            block = obj_of(block)
            kind = block.get("type")
            if kind == "rich_text":
                parts.append("".join(self._rich(element) for element in list_of(block.get("elements"))))
            elif kind in ("section", "header"):
                parts.append(self._text_object(block.get("text")))
                parts.extend(self._text_object(item) for item in list_of(block.get("fields")))
            elif kind == "context":
                parts.extend(self._text_object(item) for item in list_of(block.get("elements")))
        return _join(parts)

    def _text_object(self, value: Any) -> str:
        value = obj_of(value)
        text = text_of(value.get("text"))
        return self.mrkdwn(text) if value.get("type") == "mrkdwn" else text

    def _rich(self, element: Any) -> str:
        element = obj_of(element)
        kind = element.get("type")
        children = list_of(element.get("elements"))
        if kind == "rich_text_list":
            return "\n".join(self._rich(child) for child in children) + "\n"
        if kind in ("rich_text_section", "rich_text_quote", "rich_text_preformatted"):
            return "".join(self._rich(child) for child in children) + ("\n" if kind != "rich_text_section" else "")
        if kind == "text":
            return text_of(element.get("text"))
        if kind == "user":
            return self.user(text_of(element.get("user_id")))
        if kind == "channel":
            return self.channel(text_of(element.get("channel_id")))
        if kind == "usergroup":
            return "@" + text_of(element.get("usergroup_id"))
        if kind == "broadcast":
            return "@" + text_of(element.get("range"))
        if kind == "link":
            url, label = text_of(element.get("url")), text_of(element.get("text"))
            return f"{label} ({url})" if label and label != url else url
        if kind == "emoji":
            return _emoji(element)
        if kind == "date":
            return text_of(element.get("fallback"))
        return ""

    # -------------------------------------------------------------------------- attachments

    def attachments(self, attachments: Any) -> str:
        """Legacy attachments/unfurls: pretext, title, text, fields; the fallback only if nothing else."""
        texts: list[str] = []
        for item in list_of(attachments):
            item = obj_of(item)
            parts = [self.mrkdwn(text_of(item.get(key))) for key in ("pretext", "author_name", "title", "text")]
            for field_ in list_of(item.get("fields")):
                field_ = obj_of(field_)
                parts.append(_join([text_of(field_.get("title")), self.mrkdwn(text_of(field_.get("value")))], ": "))
            parts.append(self.blocks(item.get("blocks")))
            body = _join(parts)
            texts.append(body or self.mrkdwn(text_of(item.get("fallback"))))
        return _join(texts)


def unescape(text: str) -> str:
    for escaped, plain in _ESCAPES:
        text = text.replace(escaped, plain)
    return text


def _special(command: str, label: str) -> str:
    """``<!here>``, ``<!channel>``, ``<!everyone>``, ``<!subteam^S1|@team>``, ``<!date^...|fallback>``."""
    name, _, _ = command.partition("^")
    if name in ("here", "channel", "everyone"):
        return "@" + name
    if name == "subteam":
        return label if label.startswith("@") else "@" + (label or command.partition("^")[2])
    return label or name


def _emoji(element: dict[str, Any]) -> str:
    code = text_of(element.get("unicode"))
    try:
        if code:
            return "".join(chr(int(part, 16)) for part in code.split("-"))
    except (ValueError, OverflowError):
        pass
    return f":{text_of(element.get('name'))}:"


def _join(parts: list[str], sep: str = "\n") -> str:
    return sep.join(part.strip() for part in parts if part and part.strip())
