"""messages.jsonl: one exported message per line, in the message model, with raw record and provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# One encoder for every line: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dumps(data: Any) -> str:
    """The bundle's one JSON spelling: sorted keys, UTF-8 text (not \\u escapes), no spaces."""
    return _ENCODER.encode(data)


class JsonlWriter:
    """Each line is the message model M (raw source record in ``raw``, provenance in ``source``) plus
    ``hit`` (bool), ``highlights`` ([start, end] character offsets of the query's matches, hits only)
    ``export`` (its Bates number, its document's BEGBATES, role hit/context, local time), and the review
    decisions as of the export: ``tags`` ([{name, added_by, added_at}]) and ``notes`` ([{id, author,
    created_at, edited_by, edited_at, text}]; edited_* null if never edited), [] when none."""

    name = "messages.jsonl"

    def __init__(self, folder: Path):
        self.file = open(folder / self.name, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in close()
        self.lines = 0

    def add(self, message: dict[str, Any]) -> None:
        self.file.write(dumps(message) + "\n")
        self.lines += 1

    def close(self) -> None:
        self.file.close()
