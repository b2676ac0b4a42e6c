"""Open the full-text engine a case records (Whoosh by default)."""

from __future__ import annotations

from discovery.case import Case
from discovery.engine import Engine

ENGINES = ("whoosh",)


def open_engine(case: Case) -> Engine:
    name = case.get_meta("engine") or "whoosh"
    if name == "whoosh":
        from discovery.engine.whoosh_engine import WhooshEngine

        return WhooshEngine(case.index_dir)
    raise ValueError(f"{case.folder}: unknown engine {name!r} recorded in case.db; known: {', '.join(ENGINES)}")
