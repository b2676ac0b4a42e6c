"""The registry of source adapters and the content-sniffing auction that picks one per file."""

from __future__ import annotations

import importlib
import pkgutil
import zipfile
import zlib

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


_ADAPTERS: tuple[Adapter, ...] | None = None


def adapters() -> list[Adapter]:
    """Every adapter, in auction order. Found once per process: listing the package and importing
    its modules on every call cost ~140 us, and the auction calls this once per file."""
    global _ADAPTERS  # noqa: PLW0603 - a per-process cache of what the package holds
    if _ADAPTERS is None:
        _ADAPTERS = tuple(importlib.import_module(path).ADAPTER for path in _adapter_modules())
    return list(_ADAPTERS)


def get_adapter(name: str) -> Adapter:
    for adapter in adapters():
        if adapter.name == name:
            return adapter
    known = ", ".join(a.name for a in adapters())
    raise KeyError(f"unknown format {name!r}; known formats: {known}")


# What a sniffer meets when the file (or a zip it sits in) cannot be read: the file's problem, not the adapter's.
READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError, NotImplementedError)


def detect(file: SourceFile) -> tuple[Adapter | None, int]:
    """The adapter most sure of FILE, with its score; (None, 0) when none claims it.

    A sniffer that fails never ends the run: its adapter scores 0 and ``file.note`` says what
    failed, so that if no adapter claims FILE, ingest can say why. A sniffer may read more than
    FILE (the other members of its zip, to learn which ones a chat references): one unreadable
    member must not leave every other member of the zip unrecognised, so the auction goes on.
    """
    best: Adapter | None = None
    best_score = 0
    best_index = -1
    capped = []  # adapters whose sniff declares a ceiling (max_score): asked last, only if they could matter
    for index, adapter in enumerate(adapters()):
        ceiling = getattr(adapter, "max_score", None)
        if ceiling is not None:
            capped.append((index, adapter, ceiling))
            continue
        score = _sniff(adapter, file)
        if score > best_score:
            best, best_score, best_index = adapter, score, index
    for index, adapter, ceiling in capped:
        # The answer is the first adapter (in module order) with the highest score: one that can
        # at best tie with the leader from behind it, or score less, cannot change it.
        if ceiling < best_score or (ceiling == best_score and index > best_index):
            continue
        score = _sniff(adapter, file)
        if score > best_score or (score == best_score and score > 0 and index < best_index):
            best, best_score, best_index = adapter, score, index
    if best_score < MIN_SCORE:
        return None, best_score
    return best, best_score


def _sniff(adapter: Adapter, file: SourceFile) -> int:
    """ADAPTER's score for FILE; 0 (noted on FILE) when its sniffer fails."""
    try:
        return adapter.sniff(file)
    except READ_ERRORS as error:
        _add_note(file, f"could not be read while recognising its format ({adapter.name}: "
                        f"{type(error).__name__}: {error})")
    except Exception as error:  # noqa: BLE001 - one adapter's bug must not end the run or hide the file
        _add_note(file, f"the {adapter.name} format check failed on it ({type(error).__name__}: {error}); "
                        "please report this as a bug")
    return 0


def _add_note(file: SourceFile, note: str) -> None:
    if not file.note:
        file.note = note
    elif note not in file.note:
        file.note = f"{file.note}; {note}"


__all__ = ["Adapter", "Parsed", "SourceFile", "adapters", "detect", "get_adapter"]
