"""Verify an evidence bundle with nothing but the bundle: every hash, the listings, the internals.

Checks, in order:

1. the zip opens and every entry reads back with a good CRC; no name occurs twice;
2. SHA256SUMS and manifest.json are present and well-formed;
3. every file listed by either is present (else MISSING); every file present is listed (else ADDED);
   each file's SHA-256 (and size) equals what SHA256SUMS and manifest.json say (else ALTERED: the
   file, or the listing that disagrees with an intact file and the other listing); SHA256SUMS's line
   for manifest.json matches it, and the two listings agree with each other;
4. the manifest agrees with the content: message, hit, tagged-message, note, document and source
   counts; loadfile.dat has one row per RSMF file, gap-free Bates ranges from the manifest's first
   to last number, links that resolve and hashes that match;
5. every RSMF file: one base64 rsmf.zip with rsmf_manifest.json, the schema's structural rules,
   every cross-reference (participants, conversations, parents, attachments, zip files), and
   X-RSMF-* headers equal to the manifest (discovery.export.rsmf.check).

The verdict names every file missing, added or altered, and each problem found.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from discovery.export import dat as dat_mod
from discovery.export import rsmf as rsmf_mod
from discovery.export.manifest import MANIFEST, SUMS, parse_sums, sums_text


@dataclass
class VerifyResult:
    path: str
    ok: bool = False
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    manifest_sha256: str | None = None
    bundle_id: str | None = None
    created_at: str | None = None
    created_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        lines = [f"bundle: {self.path}"]
        if self.manifest_sha256:
            lines.append(f"fingerprint (SHA-256 of manifest.json): {self.manifest_sha256}")
        if self.bundle_id:
            lines.append(f"bundle id {self.bundle_id}, created {self.created_at} by {self.created_by}")
        lines.append(f"files checked: {self.files_checked}")
        if self.ok:
            lines.append("VERIFIED: every file is present, listed and unaltered; the manifest, SHA256SUMS, the load "
                         "file and every RSMF file are consistent.")
            return "\n".join(lines)
        lines.append("FAILED: this bundle is incomplete, altered, or inconsistent.")
        for label, names in (("missing", self.missing), ("added", self.added), ("altered", self.altered)):
            for name in names:
                lines.append(f"  {label}: {name}")
        for problem in self.problems:
            lines.append(f"  problem: {problem}")
        return "\n".join(lines)


class _Bundle:
    """The zip's entries read once: hashes, sizes, and the bytes of the small files verify parses."""

    def __init__(self, archive: zipfile.ZipFile, result: VerifyResult):
        self.archive = archive
        self.sha: dict[str, str] = {}
        self.size: dict[str, int] = {}
        counts = Counter(info.filename for info in archive.infolist())
        for name, count in sorted(counts.items()):
            if count > 1:
                result.added.append(name)
                result.problems.append(f"{name} occurs {count} times in the zip (a second copy was added)")
        for info in archive.infolist():
            if info.is_dir():
                continue
            digest = hashlib.sha256()
            size = 0
            try:
                with archive.open(info) as file:
                    while chunk := file.read(1 << 20):
                        digest.update(chunk)
                        size += len(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
                result.altered.append(info.filename)
                result.problems.append(f"{info.filename} cannot be read back from the zip: {error}")
                continue
            self.sha[info.filename] = digest.hexdigest()
            self.size[info.filename] = size
        result.files_checked = len(self.sha)

    def read(self, name: str) -> bytes:
        return self.archive.read(name)


def verify_bundle(path: str | Path, *, expect_fingerprint: str | None = None) -> VerifyResult:
    """Check the bundle at PATH (see the module docstring). EXPECT_FINGERPRINT, if given, is the
    SHA-256 of manifest.json recorded at hand-over; a different one fails the verdict."""
    result = VerifyResult(path=str(path))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        result.problems.append(f"not a readable zip file: {error}")
        return result
    with archive:
        bundle = _Bundle(archive, result)
        sums, manifest = _listings(bundle, result)
        _compare(bundle, sums, manifest, result)
        if manifest is not None:
            _check_content(bundle, manifest, result)
    if expect_fingerprint and result.manifest_sha256 != expect_fingerprint.lower():
        result.problems.append(f"manifest.json's SHA-256 is {result.manifest_sha256}, not the expected "
                               f"{expect_fingerprint.lower()}: this is not the bundle that was recorded")
    result.missing = sorted(set(result.missing))
    result.added = sorted(set(result.added))
    result.altered = sorted(set(result.altered))
    result.ok = not (result.missing or result.added or result.altered or result.problems)
    return result


def _listings(bundle: _Bundle, result: VerifyResult) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
    sums: dict[str, str] | None = None
    if SUMS not in bundle.sha:
        result.missing.append(SUMS)
    else:
        try:
            text = bundle.read(SUMS).decode("utf-8")
            sums, bad = parse_sums(text)
        except UnicodeDecodeError:
            text, sums, bad = "", {}, ["it is not UTF-8 text"]
        if bad:
            result.altered.append(SUMS)
            result.problems += [f"SHA256SUMS {line}: not a valid entry" for line in bad]
        elif text != sums_text([{"path": path, "sha256": digest} for path, digest in sums.items()]):
            result.altered.append(SUMS)
            result.problems.append("SHA256SUMS is not exactly as written (sorted '<sha256>  <path>' lines, LF "
                                   "line ends, nothing else)")
    manifest: dict[str, Any] | None = None
    if MANIFEST not in bundle.sha:
        result.missing.append(MANIFEST)
        return sums, None
    result.manifest_sha256 = bundle.sha[MANIFEST]
    try:
        manifest = json.loads(bundle.read(MANIFEST).decode("utf-8"))
        files = manifest["files"]
        if not all(isinstance(f, dict) and {"path", "size", "sha256"} <= set(f) for f in files):
            raise ValueError("an entry of files lacks path, size or sha256")
    except (ValueError, KeyError, TypeError) as error:
        result.altered.append(MANIFEST)
        result.problems.append(f"manifest.json is not a valid bundle manifest: {error}")
        return sums, None
    result.bundle_id = manifest.get("bundle_id")
    result.created_at = manifest.get("created_at")
    result.created_by = manifest.get("created_by")
    return sums, manifest


def _compare(bundle: _Bundle, sums: dict[str, str] | None, manifest: dict[str, Any] | None,
             result: VerifyResult) -> None:
    listed = {f["path"]: f for f in manifest["files"]} if manifest else {}
    sums = sums or {}
    present = set(bundle.sha)
    manifest_intact = MANIFEST in present and sums.get(MANIFEST) == bundle.sha.get(MANIFEST)
    if MANIFEST in present and SUMS in present and not manifest_intact:
        result.altered.append(MANIFEST)
        result.problems.append("manifest.json does not match its SHA-256 in SHA256SUMS" if MANIFEST in sums
                               else "SHA256SUMS has no line for manifest.json")
    for name in sorted(listed.keys() & {MANIFEST, SUMS}):
        result.altered.append(MANIFEST)
        result.problems.append(f"manifest.json lists {name}, which it must not")
    expected = set(listed) | set(sums) | {MANIFEST, SUMS}
    result.missing += sorted(expected - present)
    result.added += sorted(present - expected)
    for name in sorted(present & expected - {MANIFEST, SUMS}):
        actual = bundle.sha[name]
        entry = listed.get(name)
        in_manifest = entry is not None and entry["sha256"] == actual and entry["size"] == bundle.size[name]
        in_sums = sums.get(name) == actual
        if entry is None and manifest is not None:
            if manifest_intact:
                result.added.append(name)
                result.altered.append(SUMS)
                result.problems.append(f"{name} is not in manifest.json, yet SHA256SUMS lists it")
            elif not in_sums:
                result.altered.append(name)
                result.problems.append(f"{name}: SHA-256 {actual} differs from the one in SHA256SUMS")
            continue
        if name not in sums and SUMS in present:
            result.altered.append(SUMS)
            result.problems.append(f"SHA256SUMS has no line for {name}")
        if in_manifest and in_sums:
            continue
        if in_manifest and name in sums:
            result.altered.append(SUMS)
            result.problems.append(f"SHA256SUMS's line for {name} does not match it (manifest.json does)")
        elif in_sums and not manifest_intact:
            if manifest is not None:
                result.problems.append(f"manifest.json's entry for {name} does not match it (SHA256SUMS does)")
        elif not in_manifest:
            result.altered.append(name)
            recorded = [label for label, differs in (("manifest.json", entry is not None),
                                                     ("SHA256SUMS", name in sums and not in_sums)) if differs]
            result.problems.append(f"{name}: SHA-256 {actual} (size {bundle.size[name]}) differs from the one in "
                                   + " and ".join(recorded))


def _check_content(bundle: _Bundle, manifest: dict[str, Any], result: VerifyResult) -> None:
    counts = manifest.get("counts", {})
    natives = sorted(n for n in bundle.sha if n.startswith("rsmf/") and n.endswith(".rsmf"))

    def expect(what: str, actual: Any, recorded: Any) -> None:
        if actual != recorded:
            result.problems.append(f"{what}: the bundle holds {actual}, manifest.json says {recorded}")

    expect("RSMF documents", len(natives), counts.get("documents"))
    if "messages.jsonl" in bundle.sha:
        _check_jsonl(bundle, counts, result)
    if "chain_of_custody.json" in bundle.sha:
        try:
            custody = json.loads(bundle.read("chain_of_custody.json").decode("utf-8"))
            expect("source files in chain_of_custody.json", len(custody.get("sources", [])), counts.get("sources"))
        except ValueError:
            result.problems.append("chain_of_custody.json is not JSON")
    if "loadfile.dat" in bundle.sha:
        _check_dat(bundle, manifest, natives, result)
    for name in natives:
        for problem in rsmf_mod.check(bundle.read(name)):
            result.problems.append(f"{name}: {problem}")


def _check_jsonl(bundle: _Bundle, counts: dict[str, Any], result: VerifyResult) -> None:
    """Count messages, hits, tagged messages and notes line by line (the file can be large), checking
    each line is JSON. Bundles made before tags and notes were exported have no review counts."""
    lines = hits = tagged = notes = 0
    try:
        with bundle.archive.open("messages.jsonl") as raw, io.TextIOWrapper(raw, encoding="utf-8") as file:
            for lines, line in enumerate(file, start=1):  # noqa: B007 - the count is used after the loop
                message = json.loads(line)
                hits += bool(message.get("hit"))
                tagged += bool(message.get("tags"))
                notes += len(message.get("notes") or [])
    except (ValueError, AttributeError, TypeError, zipfile.BadZipFile, zlib.error, EOFError) as error:
        result.problems.append(f"messages.jsonl cannot be read as JSON lines (near line {max(lines, 1)}): {error}")
        return
    checks = [("messages", lines, "messages"), ("hits", hits, "hits")]
    checks += [(what, actual, key) for what, actual, key in (("tagged messages", tagged, "tagged_messages"),
                                                             ("notes", notes, "notes")) if key in counts]
    for what, actual, key in checks:
        if actual != counts.get(key):
            result.problems.append(f"{what} in messages.jsonl: the bundle holds {actual}, manifest.json says "
                                   f"{counts.get(key)}")


def _check_dat(bundle: _Bundle, manifest: dict[str, Any], natives: list[str], result: VerifyResult) -> None:
    try:
        rows = dat_mod.parse(bundle.read("loadfile.dat"))
    except (ValueError, UnicodeDecodeError) as error:
        result.problems.append(f"loadfile.dat cannot be parsed: {error}")
        return
    bates = manifest.get("bates", {})
    prefix = bates.get("prefix", "")
    if len(rows) != len(natives):
        result.problems.append(f"loadfile.dat has {len(rows)} documents, the bundle {len(natives)} RSMF files")
    previous: int | None = None
    first: str | None = None
    last: str | None = None
    for row in rows:
        begin, end = row.get("BEGBATES", ""), row.get("ENDBATES", "")
        try:
            begin_n, end_n = int(begin[len(prefix):]), int(end[len(prefix):])
        except ValueError:
            result.problems.append(f"loadfile.dat: Bates {begin!r}-{end!r} do not follow the prefix {prefix!r}")
            return
        if previous is not None and begin_n != previous + 1:
            result.problems.append(f"loadfile.dat: Bates gap or overlap before {begin}")
        if end_n < begin_n:
            result.problems.append(f"loadfile.dat: {begin} ends before it begins")
        previous = end_n
        first = first or begin
        last = end
        for column in ("NATIVE_LINK", "TEXT_LINK"):
            target = row.get(column, "").replace("\\", "/")
            if target not in bundle.sha:
                result.problems.append(f"loadfile.dat: {column} of {begin} points at {target!r}, not in the bundle")
        native = row.get("NATIVE_LINK", "").replace("\\", "/")
        if native in bundle.sha and row.get("SHA256_HASH") != bundle.sha[native]:
            result.problems.append(f"loadfile.dat: SHA256_HASH of {begin} does not match {native}")
    if (first, last) != (bates.get("first"), bates.get("last")):
        result.problems.append(f"loadfile.dat covers Bates {first} - {last}, manifest.json says "
                               f"{bates.get('first')} - {bates.get('last')}")
