"""`discovery verify`: a bundle tampered with in any way is caught, and the file is named."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from discovery.cli import cli
from discovery.export.verify import verify_bundle
from tests.test_export_fixtures import build_case, export


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("verify")
    case = build_case(folder)
    report = export(case, folder / "bundle.zip", context=2, slice="24h", terms=["whitewash"])
    case.close()
    return Path(report.path), report.manifest_sha256


def rewrite(source: Path, target: Path, change=None, drop=(), add=None) -> Path:
    """Copy the zip SOURCE to TARGET, with CHANGE(name, bytes) -> bytes applied, DROP left out, ADD appended."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename in drop:
                continue
            data = old.read(info.filename)
            new.writestr(info, change(info.filename, data) if change else data)
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return target


def run(path: Path, *extra: str):
    return CliRunner().invoke(cli, ["verify", str(path), *extra])


def test_untouched_bundle_verifies(original):
    path, fingerprint = original
    result = run(path)
    assert result.exit_code == 0, result.output
    assert "VERIFIED" in result.output and fingerprint in result.output
    verdict = verify_bundle(path, expect_fingerprint=fingerprint)
    assert verdict.ok and verdict.files_checked > 10


def test_a_copy_made_by_another_zip_tool_still_verifies(original, tmp_path):
    path, _ = original
    assert verify_bundle(rewrite(path, tmp_path / "copy.zip")).ok


@pytest.mark.parametrize("name", ["messages.csv", "transcript.html", "loadfile.dat", "README.txt"])
def test_altered_file_is_named(original, tmp_path, name):
    path, _ = original
    tampered = rewrite(path, tmp_path / "t.zip", change=lambda n, d: d + b" " if n == name else d)
    result = run(tampered)
    assert result.exit_code == 1
    assert f"altered: {name}" in result.output
    assert verify_bundle(tampered).altered == [name]


def test_altered_rsmf_file_is_named(original, tmp_path):
    path, _ = original
    with zipfile.ZipFile(path) as archive:
        target = next(n for n in archive.namelist() if n.startswith("rsmf/"))
    tampered = rewrite(path, tmp_path / "t.zip",
                       change=lambda n, d: d.replace(b"X-RSMF-EventCount: ", b"X-RSMF-EventCount: 1") if n == target
                       else d)
    verdict = verify_bundle(tampered)
    assert not verdict.ok and target in verdict.altered
    assert any("X-RSMF-EventCount" in p for p in verdict.problems)  # the RSMF internals are checked too


def test_deleted_file_is_named(original, tmp_path):
    path, _ = original
    result = run(rewrite(path, tmp_path / "t.zip", drop={"transcript.html"}))
    assert result.exit_code == 1 and "missing: transcript.html" in result.output


def test_added_file_is_named(original, tmp_path):
    path, _ = original
    result = run(rewrite(path, tmp_path / "t.zip", add={"notes/extra.txt": b"planted"}))
    assert result.exit_code == 1 and "added: notes/extra.txt" in result.output


def test_second_copy_of_an_entry_is_caught(original, tmp_path):
    path, _ = original
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we add on purpose
        tampered = rewrite(path, tmp_path / "t.zip", add={"messages.csv": b"forged"})
    verdict = verify_bundle(tampered)
    assert not verdict.ok and "messages.csv" in verdict.added + verdict.altered


def test_edited_manifest_is_named(original, tmp_path):
    path, _ = original

    def edit(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["query"]["text"] = "something else"
        return json.dumps(manifest).encode()

    result = run(rewrite(path, tmp_path / "t.zip", change=edit))
    assert result.exit_code == 1 and "altered: manifest.json" in result.output


def test_edited_sums_is_named_and_the_intact_file_is_not(original, tmp_path):
    path, _ = original

    def edit(name, data):
        if name != "SHA256SUMS":
            return data
        lines = data.decode().splitlines(keepends=True)
        index = next(i for i, line in enumerate(lines) if line.endswith("  messages.csv\n"))
        digest = lines[index][:64]
        lines[index] = ("0" if digest[0] != "0" else "1") + lines[index][1:]
        return "".join(lines).encode()

    tampered = rewrite(path, tmp_path / "t.zip", change=edit)
    result = run(tampered)
    assert result.exit_code == 1 and "altered: SHA256SUMS" in result.output
    assert verify_bundle(tampered).altered == ["SHA256SUMS"]


def test_line_removed_from_sums_is_caught(original, tmp_path):
    path, _ = original
    tampered = rewrite(path, tmp_path / "t.zip", change=lambda n, d: b"".join(
        line for line in d.splitlines(keepends=True) if not line.endswith(b"  README.txt\n"))
        if n == "SHA256SUMS" else d)
    verdict = verify_bundle(tampered)
    assert not verdict.ok and verdict.altered == ["SHA256SUMS"]


@pytest.mark.parametrize("name", ["manifest.json", "SHA256SUMS"])
def test_missing_listing_is_named(original, tmp_path, name):
    path, _ = original
    result = run(rewrite(path, tmp_path / "t.zip", drop={name}))
    assert result.exit_code == 1 and f"missing: {name}" in result.output


def test_corrupted_zip_bytes_are_caught(original, tmp_path):
    path, _ = original
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("messages.jsonl")
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 10
    data[offset] ^= 0xFF
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(data))
    verdict = verify_bundle(broken)
    assert not verdict.ok and "messages.jsonl" in verdict.altered


def test_not_a_zip_fails(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    result = run(junk)
    assert result.exit_code == 1 and "FAILED" in result.output


def _reseal(source: Path, target: Path, name: str, new_data: bytes) -> Path:
    """A forger's full rewrite: change NAME and fix its hash in manifest.json and SHA256SUMS."""
    with zipfile.ZipFile(source) as old:
        contents = {n: old.read(n) for n in old.namelist()}
    contents[name] = new_data
    manifest = json.loads(contents["manifest.json"])
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry["sha256"] = hashlib.sha256(new_data).hexdigest()
            entry["size"] = len(new_data)
    contents["manifest.json"] = json.dumps(manifest).encode()
    contents["SHA256SUMS"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(contents.items())
                                     if n != "SHA256SUMS").encode()
    with zipfile.ZipFile(target, "w") as new:
        for n, d in contents.items():
            new.writestr(n, d)
    return target


def test_consistent_forgery_changes_the_fingerprint(original, tmp_path):
    path, fingerprint = original
    with zipfile.ZipFile(path) as archive:
        csv_data = archive.read("messages.csv")
    forged = _reseal(path, tmp_path / "forged.zip", "messages.csv", csv_data.replace(b"whitewash", b"wash"))
    verdict = verify_bundle(forged)
    assert verdict.manifest_sha256 != fingerprint
    assert not verify_bundle(forged, expect_fingerprint=fingerprint).ok
    result = run(forged, "--fingerprint", fingerprint)
    assert result.exit_code == 1 and "not the bundle that was recorded" in result.output


def test_resealed_load_file_with_a_bates_gap_is_caught(original, tmp_path):
    path, _ = original
    with zipfile.ZipFile(path) as archive:
        data = archive.read("loadfile.dat")
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    last = manifest["bates"]["last"]
    bumped = last[:-1] + str((int(last[-1]) + 1) % 10)
    forged = _reseal(path, tmp_path / "gap.zip", "loadfile.dat", data.replace(last.encode(), bumped.encode()))
    verdict = verify_bundle(forged)
    assert not verdict.ok and any("loadfile.dat" in p for p in verdict.problems)


def test_json_verdict(original):
    path, _ = original
    result = run(path, "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["ok"] is True and data["missing"] == data["added"] == data["altered"] == []


def test_every_file_is_covered(original, tmp_path):
    """Whichever file is changed, deleted or duplicated under another name, verify names it."""
    path, _ = original
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    for name in names:
        changed = verify_bundle(rewrite(path, tmp_path / "c.zip", change=lambda n, d, name=name: d + b"\n" if n == name
                                        else d))
        assert name in changed.altered, (name, changed.text())
        dropped = verify_bundle(rewrite(path, tmp_path / "d.zip", drop={name}))
        assert dropped.missing == [name], (name, dropped.text())
