"""Merge the context windows of a page of hits the way ``grep -C`` does.

Each hit comes with N messages before and after it in its stream (its conversation, or the
merged-forward bundle it was carried in). Windows in the same stream that share a message become
one block holding every hit, each still marked with its number. A block stands where its first
(best-ranked) hit was. Windows are contiguous runs of one stream's order, so the union of two that
overlap is the earlier one followed by what the later one adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Line:
    message: dict[str, Any]
    hit_number: int | None = None  # 1-based rank in the whole result, for hits
    highlights: list[list[int]] = field(default_factory=list)

    @property
    def is_hit(self) -> bool:
        return self.hit_number is not None


@dataclass
class Block:
    stream: tuple[str, str | None]  # (conversation id, bundle id)
    lines: list[Line]

    @property
    def first(self) -> dict[str, Any]:
        return self.lines[0].message

    @property
    def hits(self) -> list[Line]:
        return [line for line in self.lines if line.is_hit]

    def ids(self) -> set[str]:
        return {line.message["id"] for line in self.lines}

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.stream[0],
            "bundle_id": self.stream[1],
            "message_ids": [line.message["id"] for line in self.lines],
            "hit_ids": [line.message["id"] for line in self.hits],
        }


def stream_of(message: dict[str, Any]) -> tuple[str, str | None]:
    return message["conversation_id"], message.get("bundle_id")


def merge(hits: list[Any], first_number: int = 1) -> list[Block]:
    """Blocks for HITS (objects with .message and .context), numbered from FIRST_NUMBER."""
    blocks: list[Block] = []
    for number, hit in enumerate(hits, start=first_number):
        window = hit.context or [hit.message]
        lines = [Line(m) for m in window]
        for line in lines:
            if line.message["id"] == hit.message["id"]:
                line.hit_number = number
                line.highlights = hit.message.get("highlights") or []
        blocks.append(Block(stream_of(hit.message), lines))
    return _settle(blocks)


def _union(earlier_ranked: Block, later_ranked: Block) -> Block:
    """One block with the lines of both (which overlap), in stream order, every hit kept."""
    a, b = earlier_ranked, later_ranked
    first, second = (a, b) if b.lines[0].message["id"] in a.ids() else (b, a)  # which starts first
    lines: dict[str, Line] = {}
    for line in [*first.lines, *second.lines]:
        kept = lines.get(line.message["id"])
        if kept is None:
            lines[line.message["id"]] = Line(line.message, line.hit_number, line.highlights)
        elif line.is_hit and (not kept.is_hit or line.hit_number < kept.hit_number):  # type: ignore[operator]
            lines[line.message["id"]] = Line(kept.message, line.hit_number, line.highlights)
    return Block(a.stream, list(lines.values()))


def _settle(blocks: list[Block]) -> list[Block]:
    """Merge until no two blocks of one stream overlap (a window can bridge two blocks); a merged
    block takes the place of the better-ranked one."""
    changed = True
    while changed:
        changed = False
        for i, block in enumerate(blocks):
            for j in range(i + 1, len(blocks)):
                other = blocks[j]
                if other.stream == block.stream and block.ids() & other.ids():
                    blocks[i] = _union(block, other)
                    del blocks[j]
                    changed = True
                    break
            if changed:
                break
    return blocks
