"""discovery's query language: ``parse`` (text -> AST), ``explain`` (AST -> words),
``spans``/``matches`` (brute-force highlighting and the engine oracle)."""

from collections.abc import Iterable

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
    and_all,
    has_text,
    name_key,
    or_any,
    transform,
    walk,
)
from discovery.query.explain import explain
from discovery.query.match import matches, spans, stem
from discovery.query.parser import FIELDS, QueryError, parse


def parse_filters(filters: Iterable[str | Node] | None,
                  error: type[Exception] = ValueError) -> tuple[list[Node], list[str]]:
    """Filter nodes and their texts, for a search's filters given as query strings or nodes: strings
    are parsed (QueryError if malformed), nodes described in words; anything else raises ERROR."""
    nodes: list[Node] = []
    texts: list[str] = []
    for item in filters or ():
        if isinstance(item, str):
            nodes.append(parse(item))
            texts.append(item)
        elif isinstance(item, Node):
            nodes.append(item)
            texts.append(explain(item))
        else:
            raise error(f"a filter must be a query string or a query node, not {item!r}")
    return nodes, texts

__all__ = [
    "FIELDS", "And", "CjkChar", "DateRange", "Field", "Fuzzy", "MatchAll", "Near", "Node", "Not", "Or",
    "Phrase", "QueryError", "Stem", "Term", "Wildcard", "and_all", "explain", "has_text", "matches",
    "name_key", "or_any", "parse", "parse_filters", "spans", "stem", "transform", "walk",
]  # fmt: skip
