"""Search a case: parse the query, ask the engine for ids, then build hits with context from case.db.

The engine only returns ids and scores; text, context windows, provenance and highlighting come
from case.db and our own matcher, so they are the same whatever engine answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from discovery import index_state
from discovery.case import Case
from discovery.query import QueryError, parse
from discovery.query import ast as q
from discovery.query.match import spans

MAX_CONTEXT = 50
MAX_LIMIT = 1000


@dataclass
class Hit:
    message: dict[str, Any]
    context: list[dict[str, Any]]
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "context": self.context, "score": self.score}


@dataclass
class SearchResult:
    query: str
    total: int
    hits: list[Hit]
    offset: int = 0
    limit: int = 50
    sort: str = "relevance"
    context: int = 3
    parsed: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    # False while an ingest runs, or after one died before indexing what it stored: hits may be missing
    index_complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "sort": self.sort,
            "context_size": self.context,
            "index_complete": self.index_complete,
            "hits": [hit.to_dict() for hit in self.hits],
        }

    def audit_extras(self) -> dict[str, bool]:
        """What the audit trail adds for a search run against an incomplete index (nothing otherwise)."""
        return {} if self.index_complete else {"index_complete": False}


INCOMPLETE_INDEX = (
    "The index does not hold every message of this case yet: an ingest is running, or one was interrupted "
    "before indexing what it stored. This search may miss messages. Once no ingest is running, run "
    "`discovery ingest` again (it indexes them first) or `discovery reindex`."
)


def parse_query(case: Case, text: str, filters: list[Any] | None = None) -> Any:
    """Parse TEXT and AND in extra filter nodes, resolving what only case.db knows."""
    node = parse(text) if text.strip() else q.MatchAll()
    if filters:
        node = q.and_all([node, *filters])
    return resolve(case, node)


def resolve(case: Case, node: Any) -> Any:
    """Replace filters the engine cannot answer alone (participant, conversation by name).

    The review fields (``tag:``, ``note:``, ``is:tagged``, ``is:untagged``) become
    ``Field("ids", frozenset of message ids)`` as case.db's review tables stand now
    (:func:`discovery.review.resolve_field`).
    """
    return q.transform(node, lambda child: _resolve_field(case, child))


def _resolve_field(case: Case, node: Any) -> Any:
    """The replacement for one node of the tree, or None to keep it."""
    if isinstance(node, q.Field) and node.name == "participant":
        return q.Field("conversation_ids", frozenset(_conversations_with(case, node.value)))
    if isinstance(node, q.Field) and _is_review_field(node):
        from discovery.review import resolve_field

        return resolve_field(case, node)
    return None


def _is_review_field(node: q.Field) -> bool:
    return node.name in ("tag", "note") or (node.name == "is" and str(node.value).lower() in ("tagged", "untagged"))


def _conversations_with(case: Case, who: str) -> list[str]:
    rows = case.db.execute(
        "SELECT DISTINCT cm.conversation_id FROM conversation_members cm JOIN participants p "
        "ON p.id = cm.participant_id WHERE p.id = ? OR lower(p.name) = lower(?)",
        (who, who),
    )
    return [row[0] for row in rows]


def search(
    case: Case,
    query: str,
    *,
    context: int = 3,
    limit: int = 50,
    offset: int = 0,
    sort: str = "relevance",
    filters: list[Any] | None = None,
) -> SearchResult:
    """Run QUERY over CASE; each hit carries its context window and highlight spans.

    Raises QueryError (with a position) for a malformed query, ValueError for bad options.
    """
    if not 0 <= context <= MAX_CONTEXT:
        raise ValueError(f"context must be between 0 and {MAX_CONTEXT}, not {context}")
    if not 0 < limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")
    node = parse_query(case, query, filters)
    complete = index_state.is_complete(case)  # read before searching: a run may end meanwhile
    page = case.engine().search(node, sort=sort, offset=offset, limit=limit)
    records = case.messages_by_id(page.ids)
    # before highlight() marks the records: the windows reuse them and copy them as they are now
    windows = _windows(case, [i for i in page.ids if i in records], context, known=records)
    hits = []
    for message_id, score in zip(page.ids, page.scores, strict=False):
        message = records.get(message_id)
        if message is None:
            continue  # the index is ahead of case.db only if someone edited case.db by hand
        highlight(node, message)
        window = windows.get(message_id, [])
        for neighbour in window:
            neighbour["hit"] = neighbour["id"] == message_id
            if neighbour["hit"]:
                neighbour["highlights"] = message["highlights"]
        hits.append(Hit(message=message, context=window, score=round(score, 4)))
    return SearchResult(
        query=query, total=page.total, hits=hits, offset=offset, limit=limit, sort=sort, context=context,
        parsed=node, index_complete=complete,
    )


def _windows(
    case: Case, ids: list[str], context: int, known: dict[str, dict[str, Any]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``case.window(id, context, context)`` for each of IDS, in a few statements for the page (Case.windows);
    KNOWN are records already read for the page, reused rather than read again."""
    return case.windows(ids, context, context, known)


def highlight(node: Any, message: dict[str, Any]) -> None:
    """Mark where the query matched in the message text, as [start, end] character offsets."""
    found = spans(node, message["text"]) if message["text"] else None
    message["highlights"] = [list(span) for span in found or []]


def show(case: Case, message_id: str, context: int = 3) -> dict[str, Any] | None:
    """One message with its context window and full provenance, for `discovery show`."""
    message = case.message(message_id)
    if message is None:
        return None
    window = case.window(message_id, context, context)
    for neighbour in window:
        neighbour["hit"] = neighbour["id"] == message_id
    return {"message": message, "context": window}


__all__ = ["Hit", "QueryError", "SearchResult", "search", "show", "parse_query"]
