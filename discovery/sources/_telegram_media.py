"""Which files of a Telegram Desktop export folder (or zip) are media that result.json refers to.

An export with media is `result.json` plus `photos/`, `files/`, `stickers/`, ... Those files
have no chat content of their own, but they are part of the export: the Telegram adapter claims
the ones result.json names (so they are kept and hashed as sources rather than reported as
unrecognised) and gives their sizes to the attachments that point at them. The export's layout
is fixed by Telegram Desktop, so result.json is found by its name next to (or above) the media.
"""

from __future__ import annotations

import functools
import json
import os
import re
import zipfile
from pathlib import Path, PurePosixPath

from discovery.sources.files import MAX_RATIO, SourceFile

_MAX_RESULT_BYTES = 512 * 1024**2  # a result.json larger than this is not read a second time for media
_LEVELS = 3  # photos/x.jpg, video_files/x.mp4, chats/chat_001/photos/x.jpg lie at most this deep
_PATHS = re.compile(rb'"(?:photo|file|thumbnail)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def relative_path(file: SourceFile) -> tuple[str, str | None, str] | None:
    """(container, result.json member or None, FILE's path relative to the export root), if any."""
    if file.member:
        member = PurePosixPath(file.member)
        try:
            status = os.stat(file.path)
            names = _zip_names(file.path, status.st_size, status.st_mtime_ns)
        except OSError:
            return None
        for parent in list(member.parents)[:_LEVELS]:
            result = str(parent / "result.json") if str(parent) != "." else "result.json"
            if result in names:
                return file.path, result, str(member.relative_to(parent))
        return None
    path = Path(file.path)
    for parent in list(path.parents)[:_LEVELS]:
        if (parent / "result.json").is_file():
            return str(parent / "result.json"), None, path.relative_to(parent).as_posix()
    return None


@functools.lru_cache(maxsize=16)
def _zip_names(path: str, _size: int, _mtime: int) -> frozenset[str]:
    """A zip's member names, read once per zip however many members are sniffed."""
    try:
        with zipfile.ZipFile(path) as archive:
            return frozenset(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return frozenset()


def is_referenced_media(file: SourceFile) -> bool:
    """FILE is a media file that the export's result.json refers to."""
    found = relative_path(file)
    if found is None or PurePosixPath(found[2]).name == "result.json":
        return False
    container, member, relative = found
    try:
        status = os.stat(container)
    except OSError:
        return False
    return relative in _referenced(container, member, status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _referenced(container: str, member: str | None, _size: int, _mtime: int) -> frozenset[str]:
    try:
        data = _read(container, member)
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, EOFError):
        return frozenset()
    if data is None or not data.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"{") or b'"messages"' not in data:
        return frozenset()
    found = set()
    for match in _PATHS.finditer(data):
        try:
            found.add(json.loads(b'"' + match.group(1) + b'"'))
        except ValueError:
            continue
    return frozenset(found)


def _read(container: str, member: str | None) -> bytes | None:
    if member is None:
        return Path(container).read_bytes() if os.path.getsize(container) <= _MAX_RESULT_BYTES else None
    with zipfile.ZipFile(container) as archive:
        info = archive.getinfo(member)
        if info.file_size > _MAX_RESULT_BYTES or (info.compress_size and info.file_size / info.compress_size
                                                  > MAX_RATIO):
            return None
        return archive.read(info)
