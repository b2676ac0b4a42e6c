"""Turn what the user points at (a file, a folder, a zip) into a list of source files.

Zips are read in place, never extracted: a member is opened straight from the archive, so a
malicious member name cannot write anywhere (zip-slip), and expansion is capped (zip bombs).
Every source file is hashed over its exact bytes; that hash is what provenance cites.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from discovery.model import SourceError

MAX_MEMBER_BYTES = 4 * 1024**3  # one member larger than this is refused
MAX_TOTAL_BYTES = 16 * 1024**3  # a whole archive expanding past this is refused
MAX_RATIO = 200  # uncompressed / compressed; real chat JSON compresses ~10-20x
HEAD_BYTES = 64 * 1024
HASH_CHUNK = 1024 * 1024


@dataclass
class SourceFile:
    """One file of an export: a plain file, or a member of a zip."""

    path: str  # the path as the user gave it (the zip's path for a member)
    member: str | None  # the member's path inside the zip, else None
    size: int
    sha256: str = ""  # of exactly these bytes (the member's, for a zip member)
    container_sha256: str | None = None  # the zip's own hash, for members
    _head: bytes | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name if self.member else Path(self.path).name

    def open(self) -> IO[bytes]:
        if self.member is None:
            return open(self.path, "rb")
        return _ARCHIVES.open_member(self.path, self.member)

    def head(self) -> bytes:
        """The first bytes, for sniffing the format by content."""
        if self._head is None:
            with self.open() as stream:
                self._head = stream.read(HEAD_BYTES)
        return self._head

    def hash(self) -> str:
        digest = hashlib.sha256()
        with self.open() as stream:
            for chunk in iter(lambda: stream.read(HASH_CHUNK), b""):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()
        return self.sha256


class _OpenArchives:
    """Zip archives kept open while their members are read: reading a zip's central directory again
    for every member made a 3,000-member export take minutes. Closed by `close_archives()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, zipfile.ZipFile] = {}

    def open_member(self, path: str, member: str) -> IO[bytes]:
        with self._lock:
            archive = self._open.get(path)
            if archive is None:
                archive = self._open[path] = zipfile.ZipFile(path)
            return io.BufferedReader(archive.open(member))  # type: ignore[arg-type]

    def close_all(self) -> None:
        with self._lock:
            for archive in self._open.values():
                archive.close()
            self._open.clear()


_ARCHIVES = _OpenArchives()


def close_archives() -> None:
    """Close every zip opened for reading members (ingest calls this when a run ends)."""
    _ARCHIVES.close_all()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expand(path: str) -> Iterator[SourceFile | SourceError]:
    """Yield every file under PATH: the file itself, a folder's files (sorted), a zip's members.

    Problems with a container (corrupt, encrypted, a bomb, a hostile member name) come back as
    SourceError items so the caller records them and goes on with the rest.
    """
    target = Path(path)
    if target.is_dir():
        for child in sorted(p for p in target.rglob("*") if p.is_file()):
            yield from _expand_file(str(child))
    elif target.is_file():
        yield from _expand_file(path)
    else:
        yield SourceError("no such file or folder", path=path)


def _expand_file(path: str) -> Iterator[SourceFile | SourceError]:
    if _is_hidden_junk(path):
        return
    if zipfile.is_zipfile(path):
        yield from _expand_zip(path)
    else:
        yield SourceFile(path=path, member=None, size=os.path.getsize(path))


def _is_hidden_junk(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(part in ("__MACOSX", ".DS_Store") for part in parts)


def _expand_zip(path: str) -> Iterator[SourceFile | SourceError]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        yield SourceError(f"corrupt zip archive ({error})", path=path)
        return
    container_sha = sha256_file(path)
    total = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir() or _is_hidden_junk(info.filename):
                continue
            problem = _member_problem(info)
            if problem is None:
                total += info.file_size
                if total > MAX_TOTAL_BYTES:
                    problem = f"archive expands past {MAX_TOTAL_BYTES} bytes (zip bomb?)"
            if problem:
                yield SourceError(problem, locator=info.filename, path=path)
                if "zip bomb" in problem:
                    return
                continue
            yield SourceFile(
                path=path,
                member=info.filename,
                size=info.file_size,
                container_sha256=container_sha,
            )


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or ".." in PurePosixPath(name).parts or ":" in name.split("/")[0]:
        return "unsafe member path (zip-slip): refused"
    if info.flag_bits & 0x1:
        return "encrypted member: cannot be read without its password"
    if info.file_size > MAX_MEMBER_BYTES:
        return f"member expands to {info.file_size} bytes, over the {MAX_MEMBER_BYTES} cap"
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 10 * 1024**2:
        return f"compression ratio {info.file_size // info.compress_size}:1 (zip bomb?)"
    return None
