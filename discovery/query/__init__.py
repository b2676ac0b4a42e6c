"""discovery's query language: ``parse`` (text -> AST), ``explain`` (AST -> words),
``spans``/``matches`` (brute-force highlighting and the engine oracle)."""

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

__all__ = [
    "FIELDS", "And", "CjkChar", "DateRange", "Field", "Fuzzy", "MatchAll", "Near", "Node", "Not", "Or",
    "Phrase", "QueryError", "Stem", "Term", "Wildcard", "and_all", "explain", "has_text", "matches",
    "name_key", "or_any", "parse", "spans", "stem", "transform", "walk",
]  # fmt: skip
