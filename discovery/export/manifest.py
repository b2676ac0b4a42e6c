"""manifest.json and SHA256SUMS: what is in the bundle, and the hash of every file.

Coverage (what verify relies on):

- ``manifest.json`` lists every file of the bundle except itself and SHA256SUMS, each with its
  size and SHA-256 (a file cannot contain its own hash; SHA256SUMS is written after it).
- ``SHA256SUMS`` lists every file except itself, manifest.json included, in the format
  ``sha256sum -c`` reads: ``<64 hex>  <path>`` per line, LF line ends, paths sorted.
- In the zip, the content files come first (sorted), then manifest.json, then SHA256SUMS: each
  file is hashed as it is packed, and each seal is written once everything it covers is in.
- So every file is covered at least once, manifest.json and SHA256SUMS cover each other's content
  files, and SHA256SUMS pins manifest.json. A change that keeps them all consistent rewrites
  manifest.json, so its SHA-256 (the bundle's fingerprint, printed by export and verify) changes:
  record it when the bundle is handed over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
FORMAT = "discovery-evidence-bundle"
FORMAT_VERSION = 1
COVERAGE = (
    "files lists every file in the bundle except manifest.json and SHA256SUMS; SHA256SUMS lists every file "
    "except itself (manifest.json included), in sha256sum -c format"
)


def staged_names(folder: Path) -> list[str]:
    """Every file under FOLDER as a bundle path (forward slashes), sorted by code point."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def sums_text(entries: list[dict[str, Any]]) -> str:
    return "".join(f"{e['sha256']}  {e['path']}\n" for e in sorted(entries, key=lambda e: e["path"]))


def parse_sums(text: str) -> tuple[dict[str, str], list[str]]:
    """SHA256SUMS as {path: hex}, plus the lines that are not valid entries."""
    out: dict[str, str] = {}
    bad: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        digest, sep, rest = line.partition(" ")
        path = rest[1:] if rest[:1] in (" ", "*") else None
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not path:
            bad.append(f"line {number}: {line[:120]!r}")
        elif path in out:
            bad.append(f"line {number}: {path} is listed twice")
        else:
            out[path] = digest
    return out, bad
