"""Open the full-text engine a case records (Whoosh by default; Tantivy as an optional extra).

A case records its engine in case.db (meta ``engine``). ``use_engine`` chooses one for a case that
holds no messages yet (``discovery ingest --engine``); ``reindex`` rebuilds the index of a case,
with the same engine or switching to another (``discovery reindex --engine``).
"""

from __future__ import annotations

import shutil

from discovery.case import Case
from discovery.engine import Engine

ENGINES = ("whoosh", "tantivy")
DEFAULT_ENGINE = "whoosh"
TANTIVY_HINT = "the tantivy engine needs the optional extra: pip install 'discovery[tantivy]'"


class EngineError(ValueError):
    """An unknown engine, an engine that is not installed, or a switch that needs a reindex."""


def check_engine(name: str) -> str:
    """NAME if it is a known engine whose library can be imported; else EngineError."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    if name == "tantivy":
        try:
            import tantivy  # noqa: F401
        except ImportError as error:
            raise EngineError(TANTIVY_HINT) from error
    return name


def engine_class(name: str) -> type:
    check_engine(name)
    if name == "tantivy":
        from discovery.engine.tantivy_engine import TantivyEngine

        return TantivyEngine
    from discovery.engine.whoosh_engine import WhooshEngine

    return WhooshEngine


def open_engine(case: Case) -> Engine:
    name = case.get_meta("engine") or DEFAULT_ENGINE
    if name not in ENGINES:
        raise EngineError(f"{case.folder}: unknown engine {name!r} recorded in case.db; known: {', '.join(ENGINES)}")
    try:
        cls = engine_class(name)
    except EngineError as error:
        raise EngineError(f"{case.folder}: this case is indexed with {name}; {error}") from error
    return cls(case.index_dir)


def _has_messages(case: Case) -> bool:
    return case.db.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is not None


def use_engine(case: Case, name: str) -> None:
    """Make NAME the engine of CASE before ingesting into it.

    Nothing to do if the case already uses NAME. A case that holds no messages yet simply switches
    (its empty index is removed); one that does must be rebuilt with ``reindex(case, NAME)``.
    """
    check_engine(name)
    current = case.get_meta("engine") or DEFAULT_ENGINE
    if current == name:
        return
    if _has_messages(case):
        raise EngineError(
            f"{case.folder}: this case is indexed with {current}; to switch it to {name} run "
            f"`discovery reindex --engine {name} --case {case.folder}`"
        )
    case.close_engine()
    shutil.rmtree(case.index_dir, ignore_errors=True)
    with case.transaction():
        case.set_meta("engine", name)


def reindex(case: Case, name: str | None = None) -> int:
    """Rebuild CASE's index from case.db, with engine NAME (default: the one it records)."""
    from discovery import index_state
    from discovery.ingest import reindex as rebuild

    if name is not None:
        check_engine(name)
    with index_state.writing(case):
        if name is not None and name != (case.get_meta("engine") or DEFAULT_ENGINE):
            case.close_engine()
            index_state.begin_rebuild(case)
            shutil.rmtree(case.index_dir, ignore_errors=True)  # reindex removes it too; before the switch
            with case.transaction():
                case.set_meta("engine", name)
        return rebuild(case)
