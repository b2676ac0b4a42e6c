"""The bundle zip: the staged files packed entry by entry and hashed as they are written, then sealed.

Entry order: every staged file in sorted path order, then manifest.json (which lists them all with
size and SHA-256), then SHA256SUMS (every entry before it). Every entry has the same fixed metadata
(discovery.export.rsmf.zip_info), so the same files give the same zip bytes.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

from discovery.export.manifest import MANIFEST, SUMS, dumps, staged_names, sums_text
from discovery.export.rsmf import zip_info

_ZIP64_AT = 1 << 31


def write_bundle(staging: Path, manifest: dict[str, Any], out_path: Path) -> tuple[list[dict[str, Any]], str]:
    """Pack STAGING into OUT_PATH, sealed with MANIFEST (plus its ``files``) and SHA256SUMS.

    Atomic: the zip is written as ``<out>.partial`` and renamed when complete. Returns every entry
    ({path, size, sha256}, manifest.json and SHA256SUMS last) and the SHA-256 of the zip itself.
    """
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            entries = [_pack_file(archive, staging, name) for name in staged_names(staging)]
            entries.append(_pack_bytes(archive, MANIFEST, dumps({**manifest, "files": entries}).encode("utf-8")))
            sums = _pack_bytes(archive, SUMS, sums_text(entries).encode("utf-8"))
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return [*entries, sums], _file_sha256(out_path)


def _pack_file(archive: zipfile.ZipFile, staging: Path, name: str) -> dict[str, Any]:
    source = staging / name
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, archive.open(
        zip_info(name), "w", force_zip64=source.stat().st_size >= _ZIP64_AT
    ) as dest:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dest.write(chunk)
            size += len(chunk)
    return {"path": name, "size": size, "sha256": digest.hexdigest()}


def _pack_bytes(archive: zipfile.ZipFile, name: str, data: bytes) -> dict[str, Any]:
    archive.writestr(zip_info(name), data)
    return {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
