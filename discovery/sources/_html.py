"""Microsoft Teams message HTML to searchable plain text (stdlib ``html.parser``, no dependency).

Teams bodies are HTML fragments: ``<p>``/``<div>`` paragraphs, ``<at id="0">Jane Doe</at>``
mentions, ``<attachment id="...">`` placeholders for quoted replies and files, ``<emoji alt="👻">``,
links, code blocks and ``&nbsp;``. Search needs the words a reader sees: mentions as ``@Name``,
emoji as the character, links as ``label (url)``, block elements as line breaks; placeholders and
markup produce no words at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "li", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"}
_SKIP = {"script", "style", "head", "title"}


@dataclass
class HtmlText:
    """What a Teams body says: the text, and the placeholders it refers to."""

    text: str
    mentions: dict[str, str] = field(default_factory=dict)  # <at id> -> the name shown
    attachment_ids: list[str] = field(default_factory=list)  # <attachment id> in order
    images: list[str] = field(default_factory=list)  # <img src>: inline (hosted content) images


class _Renderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.mentions: dict[str, str] = {}
        self.attachment_ids: list[str] = []
        self.images: list[str] = []
        self._skip = 0
        self._at: tuple[str, int] | None = None  # (id, index of its first part)
        self._links: list[tuple[str, int]] = []  # (href, index of the link's first part)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in _SKIP:
            self._skip += 1
        elif tag == "br" or tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "at":
            self._at = (values.get("id", ""), len(self.parts))
        elif tag == "attachment":
            self.attachment_ids.append(values.get("id", ""))
        elif tag == "img":
            self.images.append(values.get("src", ""))
        elif tag == "emoji":
            self.parts.append(values.get("alt", ""))
        elif tag == "a":
            self._links.append((values.get("href", ""), len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP:
            self.handle_starttag(tag, attrs)
            if tag in ("at", "a"):
                self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "at" and self._at is not None:
            at_id, start = self._at
            name = "".join(self.parts[start:]).replace("\xa0", " ").strip()
            self.parts[start:] = ["@" + name]
            self.mentions.setdefault(at_id, name)
            self._at = None
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.parts[start:]).strip()
            if href and label and label != href and href != "mailto:" + label:
                self.parts.append(f" ({href})")
            elif href and not label:
                self.parts.append(href)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\n{2,}")


def html_to_text(html: str) -> HtmlText:
    """Render a Teams HTML body; never raises (html.parser is lenient with broken markup)."""
    renderer = _Renderer()
    renderer.feed(html)
    renderer.close()
    text = "".join(renderer.parts)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = _BLANK_LINES.sub("\n", "\n".join(lines)).strip()
    return HtmlText(text, renderer.mentions, renderer.attachment_ids, renderer.images)
