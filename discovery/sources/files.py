"""Turn what the user points at (a file, a folder, a zip) into a list of source files.

Zips are read in place, never extracted: a member is opened straight from the archive, so a
malicious member name cannot write anywhere (zip-slip), and expansion is capped (zip bombs).
Every source file is hashed over its exact bytes; that hash is what provenance cites.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
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
ZIP_SIGNATURE = b"PK\x03\x04"  # a zip's first local file header


@dataclass
class SourceFile:
    """One file of an export: a plain file, or a member of a zip."""

    path: str  # the path as the user gave it (the zip's path for a member)
    member: str | None  # the member's path inside the zip, else None
    size: int
    sha256: str = ""  # of exactly these bytes (the member's, for a zip member)
    container_sha256: str | None = None  # the zip's own hash, for members
    # What listing or sniffing learned that explains why no adapter may read it ("empty file (0 bytes)",
    # "a truncated zip", "could not be read while sniffing: ..."); None when nothing is known.
    note: str | None = None
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
        with self.open() as stream:
            self.sha256 = sha256_stream(stream)
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
    with open(path, "rb") as stream:
        return sha256_stream(stream)


def sha256_stream(stream: IO[bytes]) -> str:
    """SHA-256 of what is left in STREAM, read HASH_CHUNK at a time."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def expand(path: str) -> Iterator[SourceFile | SourceError]:
    """Yield every file under PATH: the file itself, a folder's files (sorted), a zip's members.

    Problems with a container (corrupt, encrypted, a bomb, a hostile member name) come back as
    SourceError items so the caller records them and goes on with the rest. So does every entry of
    a folder that is not read: a dangling symbolic link, a link loop, a FIFO, socket or device (never
    opened: a FIFO would block), a file gone between the listing and its stat, a folder that cannot
    be listed. Symbolic links to folders are followed, each folder listed once.
    """
    try:
        status = os.stat(path)
    except OSError as error:
        yield SourceError(_stat_problem(path, error, top=True), path=path)
        return
    if stat.S_ISDIR(status.st_mode):
        yield from _walk(path, status)
    elif stat.S_ISREG(status.st_mode):
        yield from _expand_file(path)
    else:
        yield SourceError(_not_regular(status.st_mode), path=path)


def _walk(root: str, root_status: os.stat_result) -> Iterator[SourceFile | SourceError]:
    """Every entry under ROOT, depth first, each folder's entries sorted by name (the order of
    ``sorted(Path(root).rglob("*"))``), following symbolic links to folders but listing each
    folder (by device and inode) only once."""
    listed: dict[tuple[int, int], str] = {(root_status.st_dev, root_status.st_ino): root}
    pending: list[os.DirEntry[str]] = []  # entries still to handle, the next one last
    folder: str | None = root
    while True:
        if folder is not None:
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError as error:
                yield SourceError(f"cannot list this folder ({error.strerror or error}): its files were not read",
                                  path=folder)
            else:
                pending.extend(reversed(entries))
            folder = None
        if not pending:
            return
        entry = pending.pop()
        path = entry.path
        if _is_hidden_junk(entry.name):
            continue
        try:
            plain_file = entry.is_file(follow_symlinks=False)  # from the listing itself on most file systems
        except OSError:
            plain_file = False
        if plain_file:
            yield from _expand_file(path)  # stats it itself: it may be gone by now
            continue
        try:
            status = os.stat(path)
        except OSError as error:
            yield SourceError(_stat_problem(path, error), path=path)
            continue
        if stat.S_ISREG(status.st_mode):
            yield from _expand_file(path)
        elif not stat.S_ISDIR(status.st_mode):
            yield SourceError(_not_regular(status.st_mode), path=path)
        elif (status.st_dev, status.st_ino) in listed:
            yield SourceError(_listed_already(path, listed[status.st_dev, status.st_ino]), path=path)
        else:
            listed[status.st_dev, status.st_ino] = path
            folder = path


def _stat_problem(path: str, error: OSError, top: bool = False) -> str:
    """Why PATH, listed (or given) but not stat-able, was not read."""
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        if error.errno == errno.ELOOP:
            return f"symbolic link loop (-> {target}): skipped"
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return f"dangling symbolic link (-> {target}, which does not exist): skipped"
        return f"cannot follow symbolic link (-> {target}): {error.strerror or error}: skipped"
    if top and error.errno in (errno.ENOENT, errno.ENOTDIR):
        return "no such file or folder"
    if error.errno == errno.ENOENT:
        return "file disappeared between the folder listing and reading it (removed or renamed meanwhile): not read"
    return f"cannot read this entry ({error.strerror or error}): not read"


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), f"file type {stat.S_IFMT(mode):o}")
    return f"not a regular file but {kind}: skipped, never opened"


def _listed_already(path: str, first: str) -> str:
    real, here = os.path.realpath(path), os.path.realpath(os.path.dirname(path))
    if here == real or here.startswith(real.rstrip(os.sep) + os.sep):
        return f"symbolic link loop: points back to {first}, a folder that contains it: skipped"
    return f"the same folder as {first}, already listed: its files are read once, from there"


def _expand_file(path: str) -> Iterator[SourceFile | SourceError]:
    if _is_hidden_junk(path):
        return
    note = None
    try:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):  # replaced since it was listed: never open it
            yield SourceError(_not_regular(status.st_mode), path=path)
            return
        if status.st_size == 0:
            note = "empty file (0 bytes)"
        else:
            # Non-blocking, and checked again once open: replaced by a FIFO since the stat, it must not hang the run.
            with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)),
                           "rb") as stream:
                status = os.fstat(stream.fileno())
                if not stat.S_ISREG(status.st_mode):
                    yield SourceError(_not_regular(status.st_mode), path=path)
                    return
                signature = stream.read(len(ZIP_SIGNATURE))
                is_zip = zipfile.is_zipfile(stream)
            if is_zip:
                yield from _expand_zip(path)
                return
            if signature == ZIP_SIGNATURE:
                note = ("starts with a zip signature (PK\\x03\\x04) but has no readable central directory: "
                        "a truncated or corrupt zip archive")
    except OSError as error:
        yield SourceError(_stat_problem(path, error), path=path)
        return
    yield SourceFile(path=path, member=None, size=status.st_size, note=note)


def _is_hidden_junk(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(part in ("__MACOSX", ".DS_Store") for part in parts)


def _expand_zip(path: str) -> Iterator[SourceFile | SourceError]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        yield SourceError(f"corrupt zip archive ({error})", path=path)
        return
    try:
        container_sha = sha256_file(path)
    except OSError as error:
        archive.close()
        yield SourceError(f"cannot read this zip archive's bytes ({error.strerror or error}): not read", path=path)
        return
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
