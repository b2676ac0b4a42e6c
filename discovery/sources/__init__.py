"""The registry of source adapters and the content-sniffing auction that picks one per file."""

from __future__ import annotations

import importlib
import pkgutil

from discovery.sources.base import Adapter, Parsed
from discovery.sources.files import SourceFile

# Every module in this package except these defines one adapter as its ADAPTER; built-ins are
# found the same way a later one would be. Ties in the auction go to the earlier module name.
_NOT_ADAPTERS = {"base", "files", "textutil", "timeutil", "encoding"}


def _adapter_modules() -> list[str]:
    return sorted(
        f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__)
        if info.name not in _NOT_ADAPTERS and not info.name.startswith("_")
    )

MIN_SCORE = 10  # below this, "not a format we know"


def adapters() -> list[Adapter]:
    return [importlib.import_module(path).ADAPTER for path in _adapter_modules()]


def get_adapter(name: str) -> Adapter:
    for adapter in adapters():
        if adapter.name == name:
            return adapter
    known = ", ".join(a.name for a in adapters())
    raise KeyError(f"unknown format {name!r}; known formats: {known}")


def detect(file: SourceFile) -> tuple[Adapter | None, int]:
    """The adapter most sure of FILE, with its score; (None, 0) when none claims it."""
    best: Adapter | None = None
    best_score = 0
    for adapter in adapters():
        score = adapter.sniff(file)
        if score > best_score:
            best, best_score = adapter, score
    if best_score < MIN_SCORE:
        return None, best_score
    return best, best_score


__all__ = ["Adapter", "Parsed", "SourceFile", "adapters", "detect", "get_adapter"]
