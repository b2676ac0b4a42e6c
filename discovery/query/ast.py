"""The parsed query: small frozen dataclasses, shared by the parser, the engines and the matcher.

Text nodes hold NORMALIZED token texts (``discovery.analysis.normalize`` / ``query_words``), so an
engine and the brute-force matcher compare exactly the same strings. Field values are kept as the
user typed them; :func:`name_key` is the one normalization every consumer applies to names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, datetime

from discovery.analysis import normalize

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000


class Node:
    """Base class of every query node."""


@dataclass(frozen=True)
class Term(Node):
    word: str  # one normalized token


@dataclass(frozen=True)
class Phrase(Node):
    words: tuple[str, ...]  # normalized tokens, in order
    slop: int = 0  # up to SLOP other words between each consecutive pair (order kept)


@dataclass(frozen=True)
class Wildcard(Node):
    pattern: str  # normalized; "*" = any run of characters (also none), "?" = exactly one


@dataclass(frozen=True)
class Fuzzy(Node):
    word: str
    max_edits: int  # insertions, deletions, substitutions, adjacent transpositions
    prefix_len: int = 0  # this many leading characters must match exactly


@dataclass(frozen=True)
class Stem(Node):
    word: str  # matches every token whose stem (discovery.query.match.stem) equals this word's


@dataclass(frozen=True)
class CjkChar(Node):
    char: str  # one CJK character, searched among the per-character unigrams


@dataclass(frozen=True)
class Near(Node):
    left: Node
    right: Node
    distance: int  # N of w/N: nearest tokens of the two matches at most N positions apart
    ordered: bool = False  # pre/N: left must come before right
    negated: bool = False  # not w/N: left occurrences with NO right occurrence within N


@dataclass(frozen=True)
class And(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    child: Node


@dataclass(frozen=True)
class Field(Node):
    # sender, participant, conversation, format, custodian, kind, type, has, is (value: str),
    # or sender_ids / conversation_ids (value: frozenset[str]) after the search layer resolves names.
    name: str
    value: object


@dataclass(frozen=True)
class DateRange(Node):
    start: datetime | None  # aware UTC, inclusive; None = open
    end: datetime | None  # aware UTC, inclusive; None = open


@dataclass(frozen=True)
class MatchAll(Node):
    pass


TEXT_NODES = (Term, Phrase, Wildcard, Fuzzy, Stem, CjkChar, Near)


def and_all(nodes: Iterable[Node]) -> Node:
    """AND of NODES, flattened; no node is MatchAll, one node is itself."""
    flat: list[Node] = []
    for node in nodes:
        if isinstance(node, And):
            flat.extend(node.children)
        elif not isinstance(node, MatchAll):
            flat.append(node)
    if not flat:
        return MatchAll()
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def or_any(nodes: Iterable[Node]) -> Node:
    """OR of NODES, flattened; one node is itself."""
    flat: list[Node] = []
    for node in nodes:
        flat.extend(node.children if isinstance(node, Or) else [node])
    if not flat:
        raise ValueError("or_any needs at least one node")
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def name_key(value: str) -> str:
    """How names and keyword values are compared: normalized, whitespace collapsed."""
    return " ".join(normalize(value).split())


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact integer arithmetic)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def range_us(node: DateRange) -> tuple[int | None, int | None]:
    return (
        None if node.start is None else to_us(node.start),
        None if node.end is None else to_us(node.end),
    )


def has_text(node: Node) -> bool:
    """Whether NODE contains any text condition (as opposed to only filters)."""
    if isinstance(node, TEXT_NODES):
        return True
    if isinstance(node, (And, Or)):
        return any(has_text(child) for child in node.children)
    if isinstance(node, Not):
        return has_text(node.child)
    return False


def transform(node: Node, fn: Callable[[Node], Node | None]) -> Node:
    """Rebuild NODE bottom-up, replacing each node by fn(node) when that is not None.

    The search layer uses it to resolve ``participant:`` into ``Field("conversation_ids", ...)``.
    """
    if isinstance(node, (And, Or)):
        node = replace(node, children=tuple(transform(child, fn) for child in node.children))
    elif isinstance(node, Not):
        node = Not(transform(node.child, fn))
    elif isinstance(node, Near):
        node = replace(node, left=transform(node.left, fn), right=transform(node.right, fn))
    result = fn(node)
    return node if result is None else result


def walk(node: Node) -> Iterable[Node]:
    """NODE and every node below it, depth first."""
    yield node
    if is_dataclass(node):
        for f in fields(node):
            value = getattr(node, f.name)
            if isinstance(value, Node):
                yield from walk(value)
            elif isinstance(value, tuple):
                for item in value:
                    if isinstance(item, Node):
                        yield from walk(item)
