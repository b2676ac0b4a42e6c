"""The narrow seam between discovery and a full-text engine.

An engine indexes :class:`IndexDoc` batches and answers a parsed query (our own AST from
``discovery.query``) with ids and scores. Everything else (text, context windows, provenance,
highlighting) lives in case.db and our own code, so a second engine only has to implement this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

SORTS = ("relevance", "time_asc", "time_desc")


@dataclass
class IndexDoc:
    """What an engine needs of one message: its searchable text and the fields filters use."""

    id: str  # the stable case-wide message id
    text: str  # the plain text, tokenized by discovery.analysis (never by the engine)
    conversation_id: str
    conversation_name: str
    conversation_type: str
    sender_id: str
    sender_name: str
    source_format: str
    custodian: str
    kind: str
    sent_at_us: int  # microseconds since the epoch, UTC: exact bounds and time sorting
    day: int  # days since the epoch, UTC: cheap date-range filtering
    has_attachment: bool = False
    edited: bool = False
    deleted: bool = False
    attachment_names: list[str] = field(default_factory=list)


class IndexUnusableError(RuntimeError):
    """The index on disk cannot answer (say, built by an older version); case.db still holds every
    message, so `discovery reindex` rebuilds it. Raised by an engine when it opens its index."""


@dataclass
class EngineResult:
    total: int  # every matching document, not just this page
    ids: list[str]
    scores: list[float]


class Engine(Protocol):
    name: str

    def add(self, docs: Iterable[IndexDoc]) -> int:
        """Index DOCS (replacing any with the same id); returns how many were written."""
        ...

    def delete(self, ids: Iterable[str]) -> None: ...

    def commit(self) -> None: ...

    def cancel(self) -> None:
        """Discard what was written since the last commit, never waiting on workers (a failed run)."""
        ...

    def search(self, query: object, *, sort: str = "relevance", offset: int = 0, limit: int = 50) -> EngineResult:
        """QUERY is a node of discovery.query.ast. Returns one page, and the total."""
        ...

    def all_ids(self, query: object) -> list[str]:
        """Every matching id, unsorted: for counts, facets and exports."""
        ...

    def doc_count(self) -> int: ...

    def close(self) -> None: ...
