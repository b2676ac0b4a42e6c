"""What the file system and SQLite say, in words a person can read and a case can store.

Shared by ingest (paths it records, why a run stopped) and the CLI (an error on any command).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def printable(path: str | os.PathLike[str]) -> str:
    """PATH (or any text) as text that can be stored and printed: bytes of a file name that are not
    UTF-8 (kept by Python as surrogates) become backslash escapes, e.g. ``bad\\xffname.json``, and so
    does any other lone surrogate (``\\ud83d``, from a broken JSON escape). Valid text is returned as is."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(_escaped(char) for char in text)
    return text


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return char


def is_disk_full(error: BaseException) -> bool:
    """Whether ERROR says there is no room left (a full disk, a quota; SQLite's 'full' or disk I/O error)."""
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return True
    return isinstance(error, sqlite3.Error) and ("full" in str(error) or "disk I/O error" in str(error))


def is_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether PATH is FOLDER or lies under it, symbolic links resolved."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, ValueError, RuntimeError):  # (a link loop, a NUL in the name)
        return False
