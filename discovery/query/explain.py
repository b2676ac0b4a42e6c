"""The parsed query in plain words, shown to the user before results (whoosh.md trap 8).

Proximity is spelled out with its pinned meaning: "within N words" = the nearest tokens of the two
matches are at most N positions apart (adjacent words are 1 apart); for phrases the distance runs
from the end of the earlier match to the start of the later, and the two may not overlap.
"""

from __future__ import annotations

from datetime import datetime

from discovery.analysis import is_cjk
from discovery.query.ast import (
    And,
    CjkChar,
    DateRange,
    Field,
    Fuzzy,
    MatchAll,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Stem,
    Term,
    Wildcard,
)
from discovery.query.match import stem

_FIELD_LABELS = {
    "sender": "sender is {v} (id or name)",
    "participant": "conversation has participant {v} (id or name)",
    "conversation": "conversation is {v} (id or name)",
    "format": "source format is {v}",
    "custodian": "custodian is {v}",
    "kind": "kind is {v}",
    "type": "conversation type is {v}",
    "tag": "tagged {v}",
}


def _q(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _phrase_text(words: tuple[str, ...]) -> str:
    """The phrase as typed: overlapping CJK bigrams ("清理", "理掉") are shown as "清理掉"."""
    out = words[0]
    for prev, word in zip(words, words[1:], strict=False):
        if len(prev) == 2 and len(word) == 2 and is_cjk(prev + word) and prev[1] == word[0]:
            out += word[1]
        else:
            out += " " + word
    return out


def _words(n: int) -> str:
    return "1 word" if n == 1 else f"{n} words"


def _date(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + " UTC"


def _operand(node: Node) -> str:
    """Short form for proximity operands."""
    if isinstance(node, Term):
        return _q(node.word)
    if isinstance(node, Phrase):
        return _q(_phrase_text(node.words)) + (f"~{node.slop}" if node.slop else "")
    if isinstance(node, CjkChar):
        return _q(node.char)
    if isinstance(node, Or):
        return "(" + " or ".join(_operand(child) for child in node.children) + ")"
    if isinstance(node, Near):
        return "(" + _near(node) + ")"
    return _describe(node)


def _near(node: Near) -> str:
    left, right, n = _operand(node.left), _operand(node.right), node.distance
    if node.negated:
        return f"{left} with no {right} within {_words(n)} (either order)"
    if node.ordered:
        return f"{left} at most {_words(n)} before {right}"
    return f"{left} within {_words(n)} of {right} (either order)"


def _describe(node: Node, top: bool = False) -> str:
    if isinstance(node, Term):
        return f"the word {_q(node.word)}"
    if isinstance(node, Phrase):
        text = f"the phrase {_q(_phrase_text(node.words))}"
        if node.slop:
            text += f" (in order, up to {_words(node.slop)} between each)"
        return text
    if isinstance(node, Wildcard):
        return f"words matching {_q(node.pattern)} (* = any characters, ? = one character)"
    if isinstance(node, Fuzzy):
        text = f"words within {node.max_edits} edit{'s' if node.max_edits != 1 else ''} of {_q(node.word)}"
        if node.prefix_len:
            text += f" starting with {_q(node.word[: node.prefix_len])}"
        return text
    if isinstance(node, Stem):
        return f"words with the same stem as {_q(node.word)} (stem {_q(stem(node.word))})"
    if isinstance(node, CjkChar):
        return f"the character {_q(node.char)}"
    if isinstance(node, Near):
        return _near(node)
    if isinstance(node, (And, Or)):
        label = "ALL OF" if isinstance(node, And) else "ANY OF"
        inner = "; ".join(_describe(child) for child in node.children)
        return f"{label}: {inner}" if top else f"{label} ({inner})"
    if isinstance(node, Not):
        return f"NOT {_describe(node.child)}"
    if isinstance(node, Field):
        if node.name == "has":
            return "has an attachment"
        if node.name == "is":
            return f"is {node.value}"
        if node.name == "note":  # the value is note text to search: a word, or a phrase in its quotes
            return f"has a note matching {node.value}"
        if node.name == "ids":  # review fields resolved to message ids (discovery.review.IdSet says which)
            label = getattr(node.value, "label", "")
            return label or f"message id is one of {len(node.value)}"
        if node.name in ("sender_ids", "conversation_ids"):
            ids = sorted(node.value)  # type: ignore[call-overload]
            what = "sender" if node.name == "sender_ids" else "conversation"
            return (
                f"{what} id is one of {len(ids)}: "
                + ", ".join(_q(i) for i in ids[:10])
                + (", ..." if len(ids) > 10 else "")
            )
        template = _FIELD_LABELS.get(node.name, node.name + " is {v}")
        return template.format(v=_q(str(node.value)))
    if isinstance(node, DateRange):
        if node.start and node.end:
            return f"sent from {_date(node.start)} to {_date(node.end)} (inclusive)"
        if node.start:
            return f"sent at or after {_date(node.start)}"
        if node.end:
            return f"sent at or before {_date(node.end)}"
        return "sent at any time"
    if isinstance(node, MatchAll):
        return "every message"
    raise TypeError(f"unknown query node {node!r}")


def explain(node: Node) -> str:
    """NODE in plain English, e.g. ALL OF: the word "whitewash"; "logs" within 5 words of ..."""
    return _describe(node, top=True)
