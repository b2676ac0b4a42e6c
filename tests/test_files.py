"""Source files: folders and zips expand safely, and every file is hashed over its exact bytes."""

import hashlib
import zipfile

from discovery.model import SourceError
from discovery.sources import files
from discovery.sources.files import expand


def test_folder_expands_recursively_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.json").write_text("[]")
    (tmp_path / "one.json").write_text("{}")
    found = list(expand(str(tmp_path)))
    assert [f.path for f in found] == [str(tmp_path / "b" / "two.json"), str(tmp_path / "one.json")]


def test_zip_members_are_read_in_place_and_hashed(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("chats/messages.json", b'{"data": 1}')
        zf.writestr("__MACOSX/._messages.json", b"junk")
    [member] = list(expand(str(archive)))
    assert member.member == "chats/messages.json"
    assert member.hash() == hashlib.sha256(b'{"data": 1}').hexdigest()
    assert member.container_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    with member.open() as stream:
        assert stream.read() == b'{"data": 1}'


def test_zip_slip_members_are_refused_and_the_rest_kept(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../etc/passwd", b"root")
        zf.writestr("/abs.json", b"{}")
        zf.writestr("ok.json", b"{}")
    items = list(expand(str(archive)))
    errors = [i for i in items if isinstance(i, SourceError)]
    good = [i for i in items if not isinstance(i, SourceError)]
    assert [g.member for g in good] == ["ok.json"]
    assert len(errors) == 2 and all("zip-slip" in str(e) for e in errors)
    assert not (tmp_path.parent / "etc").exists()


def test_zip_bomb_ratio_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_RATIO", 10)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.json", b"0" * (11 * 1024 * 1024))
    [item] = list(expand(str(archive)))
    assert isinstance(item, SourceError) and "zip bomb" in str(item)


def test_truncated_zip_is_not_taken_for_an_archive(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a.json", b"{}" * 1000)
    archive = tmp_path / "broken.zip"
    archive.write_bytes(good.read_bytes()[:-30])  # the end-of-central-directory record is gone
    [item] = list(expand(str(archive)))
    # kept as a plain file: ingest then reports that no adapter recognised it, never a crash
    assert not isinstance(item, SourceError)
    assert item.member is None and item.size == archive.stat().st_size


def test_zip_with_a_corrupt_central_directory_is_reported(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a.json", b"{}" * 1000)
    data = bytearray(good.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    data[central : central + 4] = b"XXXX"  # the central directory entry's signature is broken
    archive = tmp_path / "broken.zip"
    archive.write_bytes(bytes(data))
    [item] = list(expand(str(archive)))
    assert isinstance(item, SourceError) and "corrupt zip" in str(item)


def test_missing_path_is_an_error_item(tmp_path):
    [item] = list(expand(str(tmp_path / "nope")))
    assert isinstance(item, SourceError) and "no such file" in str(item)
