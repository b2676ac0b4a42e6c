"""The adapter protocol every chat-export format implements.

An adapter is picked per file by a score auction on the file's content (never its name), then
handed all the files of one export that it won, so it can resolve names across files (Lark
member lists, Slack users.json) before it yields messages. Problems come back as items, not
exceptions: one bad record never stops the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from discovery.model import Message, SourceError
from discovery.sources.files import SourceFile

# What an adapter yields: a message or a problem, each with the file it came from.
Parsed = tuple[SourceFile, Message | SourceError]


@dataclass(frozen=True)
class ParseOptions:
    """What the user told ingest about the export that the files cannot say themselves."""

    timezone: str | None = None  # IANA zone for formats whose times carry no offset (WhatsApp, Telegram)
    column_map: dict[str, str] = field(default_factory=dict)  # generic CSV/JSONL: model field -> column


class Adapter(Protocol):
    name: str  # the --format value, e.g. "lark"
    source_format: str  # the message model's source_format, e.g. "lark_api"
    description: str  # one line for `discovery formats`
    limits: str  # what this export kind can and cannot contain, recorded on each source

    def sniff(self, file: SourceFile) -> int:
        """How sure this adapter is that FILE is its format: 0 = not mine, 100 = certain."""
        ...

    def parse(self, files: list[SourceFile], options: ParseOptions | None = None) -> Iterator[Parsed]:
        """Yield every message (and every problem) in FILES, in source order, streaming."""
        ...
