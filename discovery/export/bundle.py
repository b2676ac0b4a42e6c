"""The bundle zip: the staged files packed entry by entry and hashed as they are written, then sealed.

Entry order: every staged file in sorted path order, then manifest.json (which lists them all with
size and SHA-256), then SHA256SUMS (every entry before it). Every entry has the same fixed metadata
(discovery.export.rsmf.zip_info), so the same files give the same zip bytes.

Compression runs ahead in worker threads (zlib releases the GIL, so they use the other cores while
this thread checksums and writes): each staged file is deflated, exactly as zipfile would (the same
compressor, fed the same chunks), into a scratch file, and the entry is then written from that
stream (:class:`_Deflated`). The zip bytes are the same as a plain ``ZipFile.open(..., "w")`` write;
memory stays at a few chunks whatever the file sizes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from discovery.export.manifest import MANIFEST, SUMS, dumps, staged_names, sums_text
from discovery.export.rsmf import zip_info

_ZIP64_AT = 1 << 31
_CHUNK = 1 << 20
_ZLIB = type(zlib.compressobj())
_WORKERS = 2  # deflating threads; the machines are small, and this thread has its own share to do


def write_bundle(staging: Path, manifest: dict[str, Any], out_path: Path) -> tuple[list[dict[str, Any]], str]:
    """Pack STAGING into OUT_PATH, sealed with MANIFEST (plus its ``files``) and SHA256SUMS.

    Atomic: the zip is written as ``<out>.partial`` and renamed when complete. Returns every entry
    ({path, size, sha256}, manifest.json and SHA256SUMS last) and the SHA-256 of the zip itself.
    """
    partial = out_path.with_name(out_path.name + ".partial")
    names = staged_names(staging)
    try:
        with tempfile.TemporaryDirectory(dir=staging, prefix=".deflated-") as scratch, _Deflaters() as pool:
            ahead = [pool.submit(_deflate, staging / name, Path(scratch) / str(n), name)
                     for n, name in enumerate(names)]
            with zipfile.ZipFile(partial, "w") as archive:
                entries = [_pack_file(archive, staging, name, deflated)
                           for name, deflated in zip(names, ahead, strict=True)]
                entries.append(_pack_bytes(archive, MANIFEST, dumps({**manifest, "files": entries}).encode("utf-8")))
                sums = _pack_bytes(archive, SUMS, sums_text(entries).encode("utf-8"))
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return [*entries, sums], _file_sha256(out_path)


class _Deflaters(ThreadPoolExecutor):
    """The deflating threads. On an error, the files not started are dropped, and the pool is gone
    (its running work finished) before the scratch folder it writes into is removed."""

    def __init__(self) -> None:
        super().__init__(_WORKERS, thread_name_prefix="bundle-deflate")

    def __exit__(self, kind: Any, *rest: Any) -> bool | None:
        self.shutdown(wait=True, cancel_futures=kind is not None)
        return False


def _deflate(source: Path, target: Path, name: str) -> Path:
    """SOURCE deflated into TARGET as zipfile would deflate entry NAME: its compressor, the same chunks."""
    info = zip_info(name)
    compressor = zlib.compressobj(info._compresslevel, zlib.DEFLATED, -15)
    with open(source, "rb") as src, open(target, "wb") as out:
        while chunk := src.read(_CHUNK):
            out.write(compressor.compress(chunk))
        out.write(compressor.flush())
    return target


class _Deflated:
    """Stands in for an entry's compressor, replaying the stream _deflate wrote: the entry's CRC and
    sizes are still computed by zipfile from the real bytes, and any split of the stream between
    calls makes the same file (each call hands back at most as many bytes as it was given)."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream

    def compress(self, data: bytes) -> bytes:
        return self.stream.read(len(data))

    def flush(self) -> bytes:
        return self.stream.read()


def _pack_file(archive: zipfile.ZipFile, staging: Path, name: str, deflated: Future[Path]) -> dict[str, Any]:
    source = staging / name
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(deflated.result(), "rb") as stream, archive.open(
        zip_info(name), "w", force_zip64=source.stat().st_size >= _ZIP64_AT
    ) as dest:
        if isinstance(getattr(dest, "_compressor", None), _ZLIB):
            dest._compressor = _Deflated(stream)  # else (another zipfile): it deflates again, the same bytes
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dest.write(chunk)
            size += len(chunk)
    deflated.result().unlink()
    return {"path": name, "size": size, "sha256": digest.hexdigest()}


def _pack_bytes(archive: zipfile.ZipFile, name: str, data: bytes) -> dict[str, Any]:
    archive.writestr(zip_info(name), data)
    return {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
