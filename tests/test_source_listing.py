"""Listing what the user points at never loses an entry silently and never ends the run.

Real files on disk: symbolic links (dangling, looping, to folders), FIFOs, sockets, files removed
while the folder is being listed, zips corrupt in the middle or cut short, empty files. Every entry
that is not read comes back as a SourceError naming it (an exception row after ingest); the rest go in.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import zipfile
import zlib
from pathlib import Path

import pytest

from discovery.case import Case
from discovery.ingest import ingest
from discovery.model import SourceError
from discovery.sources import detect, get_adapter, rsmf
from discovery.sources import files as source_files
from discovery.sources.files import SourceFile, expand
from tests.lark_factory import message, write_jsonl

WORDS = ["refund", "invoice", "meeting", "urgent", "contract", "budget", "alpha", "delta", "ledger", "audit"]


@pytest.fixture(autouse=True)
def _never_hang():
    """Opening a FIFO blocks for ever: fail instead of hanging if anything here ever opens one."""
    def timed_out(*_):
        raise TimeoutError("listing blocked (a FIFO opened?)")
    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _chat(path: Path, chat: str, count: int = 5) -> Path:
    rng = random.Random(chat)
    return write_jsonl(path, [message(n, " ".join(rng.choice(WORDS) for _ in range(12)) + f" {chat}-{n}", chat=chat)
                              for n in range(count)])


def _chat_bytes(chat: str, count: int) -> bytes:
    rng = random.Random(chat)
    lines = [json.dumps(message(n, " ".join(rng.choice(WORDS) for _ in range(12)) + f" {chat}-{n}", chat=chat))
             for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


def _corrupt_zip(path: Path, members: int = 20, count: int = 50) -> Path:
    """A real zip of Lark chats, then 2,000 bytes in the middle of it overwritten: from the start of
    the compressed bytes of the member in the middle (0xFF there is an invalid deflate block, so
    reading it raises zlib.error, as the tester met) on into the members after it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for k in range(members):
            archive.writestr(f"chat_{k:02d}.jsonl", _chat_bytes(f"oc_z{k:02d}", count))
        info = archive.infolist()[members // 2]
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode())
    data[start : start + 2000] = b"\xff" * 2000
    path.write_bytes(bytes(data))
    return path


def _unreadable_members(path: Path) -> dict[str, BaseException]:
    bad = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            try:
                archive.read(info)
            except Exception as error:  # noqa: BLE001 - collecting what a corrupt member raises
                bad[info.filename] = error
    return bad


def _errors(items: list[SourceFile | SourceError]) -> dict[str, str]:
    return {Path(item.path).name: str(item) for item in items if isinstance(item, SourceError)}


def _files(items: list[SourceFile | SourceError]) -> list[str]:
    return [item.display for item in items if isinstance(item, SourceFile)]


# --- H3a: a file gone between the listing and its stat -------------------------------------------------------

def test_a_file_removed_after_the_listing_is_an_error_item_and_the_rest_still_listed(tmp_path):
    for name in ("a.jsonl", "b.jsonl", "c.jsonl"):
        _chat(tmp_path / name, name)
    listing = expand(str(tmp_path))
    first = next(listing)  # expand is lazy: the folder is listed, "b" not yet looked at
    assert isinstance(first, SourceFile) and first.name == "a.jsonl"
    (tmp_path / "b.jsonl").unlink()
    rest = list(listing)
    assert _files(rest) == [str(tmp_path / "c.jsonl")]
    [error] = [item for item in rest if isinstance(item, SourceError)]
    assert error.path == str(tmp_path / "b.jsonl") and "disappeared" in str(error)


def test_a_file_removed_just_before_expand_file_stats_it(tmp_path):
    gone = tmp_path / "gone.jsonl"
    [item] = list(source_files._expand_file(str(gone)))  # what vanish.py's hook did: unlinked, then expanded
    assert isinstance(item, SourceError) and item.path == str(gone) and "disappeared" in str(item)


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    _chat(tmp_path / "sub" / "x.jsonl", "x")
    _chat(tmp_path / "y.jsonl", "y")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(source_files.os, "scandir", scandir)
    items = list(expand(str(tmp_path)))
    assert _files(items) == [str(tmp_path / "y.jsonl")]
    assert "cannot list this folder (Permission denied)" in _errors(items)["sub"]


# --- M4: entries of a folder that are not regular files ------------------------------------------------------

def _odd_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder holding one good chat and every kind of entry that is not a regular file."""
    root, elsewhere = tmp_path / "export", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    _chat(root / "good.jsonl", "oc_good", 5)
    _chat(elsewhere / "linked.jsonl", "oc_linked", 7)
    (root / "dangling.json").symlink_to(tmp_path / "nonexistent")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    os.mkfifo(root / "fifo.json")
    (root / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    (root / "again").symlink_to(elsewhere, target_is_directory=True)  # the same folder a second time
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)  # a folder that contains itself
    return root, elsewhere


def test_a_folder_accounts_for_every_entry(tmp_path):
    root, _ = _odd_folder(tmp_path)
    items = list(expand(str(root)))
    assert _files(items) == [str(root / "again" / "linked.jsonl"), str(root / "good.jsonl")]
    errors = _errors(items)
    assert "dangling symbolic link" in errors["dangling.json"]
    assert "symbolic link loop" in errors["loop1"] and "symbolic link loop" in errors["loop2"]
    assert errors["fifo.json"] == "not a regular file but a FIFO (named pipe): skipped, never opened"
    # "again" sorts before "linkdir", so the folder is read from there and "linkdir" is the repeat
    assert errors["linkdir"] == (f"the same folder as {root / 'again'}, already listed: "
                                 "its files are read once, from there")
    assert "symbolic link loop" in errors["up"] and str(root) in errors["up"]
    assert sorted(errors) == ["dangling.json", "fifo.json", "linkdir", "loop1", "loop2", "up"]


def test_a_symlinked_folder_is_followed_into(tmp_path):
    root, elsewhere = tmp_path / "export", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    _chat(elsewhere / "linked.jsonl", "oc_linked")
    (root / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    items = list(expand(str(root)))
    assert items and all(isinstance(item, SourceFile) for item in items)
    assert _files(items) == [str(root / "linkdir" / "linked.jsonl")]


def test_sockets_are_reported_not_opened(tmp_path):
    path = tmp_path / "s.sock"
    if len(str(path)) > 100:
        pytest.skip("a unix socket path must be short")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        errors = _errors(list(expand(str(tmp_path))))
        assert errors == {"s.sock": "not a regular file but a socket: skipped, never opened"}
    finally:
        server.close()


def test_odd_paths_given_directly(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to("loop")
    [fifo] = list(expand(str(tmp_path / "fifo")))
    [dangling] = list(expand(str(tmp_path / "dangling")))
    [loop] = list(expand(str(tmp_path / "loop")))
    assert isinstance(fifo, SourceError) and "FIFO" in str(fifo)
    assert isinstance(dangling, SourceError) and "dangling symbolic link" in str(dangling)
    assert isinstance(loop, SourceError) and "symbolic link loop" in str(loop)
    [device] = list(expand("/dev/null"))
    assert isinstance(device, SourceError) and "character device" in str(device)


def test_a_file_replaced_by_a_fifo_after_its_stat_is_not_blocked_on(tmp_path, monkeypatch):
    fifo, regular = tmp_path / "swapped.json", tmp_path / "regular.json"
    os.mkfifo(fifo)
    regular.write_text("{}")
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):  # the stat saw a regular file; by the open, it is a FIFO
        return real_stat(regular if str(path) == str(fifo) else path, *args, **kwargs)

    monkeypatch.setattr(source_files.os, "stat", stale_stat)
    [item] = list(source_files._expand_file(str(fifo)))
    assert isinstance(item, SourceError) and item.path == str(fifo) and "FIFO" in str(item)


def test_macos_junk_is_still_left_out_quietly(tmp_path):
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "._chat.jsonl").write_bytes(b"junk")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    _chat(tmp_path / "chat.jsonl", "oc_c")
    assert [item.name for item in expand(str(tmp_path))] == ["chat.jsonl"]


def test_order_is_the_sorted_recursive_listing(tmp_path):
    for name in ("b/z.json", "a.json", "a/x.json", "a/b/y.json", "c.json", "a.b/w.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    expected = [str(p) for p in sorted(p for p in tmp_path.rglob("*") if p.is_file())]
    assert _files(list(expand(str(tmp_path)))) == expected


# --- H3b: a zip corrupt in the middle ------------------------------------------------------------------------

def test_sniffing_a_good_member_of_a_zip_corrupt_in_the_middle_does_not_raise(tmp_path):
    archive = _corrupt_zip(tmp_path / "mid.zip")
    bad = _unreadable_members(archive)
    assert any(isinstance(error, zlib.error) for error in bad.values()), bad  # the case the tester met
    lark = get_adapter("lark")
    good = [item for item in expand(str(archive)) if isinstance(item, SourceFile) and item.member not in bad]
    assert len(good) == 20 - len(bad)
    for item in good:
        assert detect(item) == (lark, lark.sniff(item))
        assert "rsmf" not in (item.note or "")  # rsmf's look at the other members skips the bad one


def test_whatsapp_media_references_survive_an_unreadable_member(tmp_path):
    from discovery.sources import whatsapp

    archive = _corrupt_zip(tmp_path / "mid.zip")
    whatsapp._referenced_media.cache_clear()
    assert whatsapp._referenced_media(str(archive), whatsapp._stamp(str(archive))) == {}


def test_rsmf_references_survive_an_unreadable_member(tmp_path):
    manifest = {"version": "2.0.0", "participants": [{"id": "P1", "display": "A"}],
                "conversations": [{"id": "C1", "participants": ["P1"]}],
                "events": [{"id": "1", "type": "message", "participant": "P1", "conversation": "C1",
                            "body": "see photo", "timestamp": "2024-01-01T00:00:00Z",
                            "attachments": [{"id": "photo.png", "display": "photo.png", "size": 3}]}]}
    path = tmp_path / "rsmf.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("rsmf_manifest.json", json.dumps(manifest))
        archive.writestr("photo.png", b"png")
        archive.writestr("noise.jsonl", _chat_bytes("oc_noise", 300))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("noise.jsonl")
    start = info.header_offset + 30 + len(info.filename)
    data[start : start + 200] = b"\xff" * 200  # noise.jsonl's compressed bytes: an invalid deflate block
    path.write_bytes(bytes(data))
    with pytest.raises(zlib.error), zipfile.ZipFile(path) as archive, archive.open("noise.jsonl") as stream:
        stream.read(rsmf.HEAD_BYTES)  # what rsmf's sniffer meets looking for manifests
    rsmf._referenced.cache_clear()
    assert rsmf._referenced(str(path), rsmf._stamp(str(path))) == frozenset({"photo.png"})
    photo = next(item for item in expand(str(path)) if isinstance(item, SourceFile) and item.member == "photo.png")
    assert get_adapter("rsmf").sniff(photo) == 30


def test_a_sniffer_that_fails_reading_is_not_this_adapter_and_is_noted(tmp_path, monkeypatch):
    item = next(iter(expand(str(_chat(tmp_path / "c.jsonl", "oc_c")))))
    lark = get_adapter("lark")

    def broken(_file):
        raise zlib.error("Error -3 while decompressing data: invalid distance too far back")

    monkeypatch.setattr(get_adapter("rsmf"), "sniff", broken)
    assert detect(item)[0] is lark  # another adapter's read failure does not take the file from lark
    assert "could not be read while recognising its format (rsmf: error: Error -3" in item.note

    monkeypatch.setattr(lark, "sniff", broken)
    other = SourceFile(path=item.path, member=None, size=item.size)
    assert detect(other)[0] is None  # nothing else claims it: ingest records it as unrecognised, and why
    assert "could not be read while recognising its format (lark: error" in other.note


def test_a_sniffer_bug_does_not_end_the_run(tmp_path, monkeypatch):
    item = next(iter(expand(str(_chat(tmp_path / "c.jsonl", "oc_c")))))

    def buggy(_file):
        raise KeyError("oops")

    monkeypatch.setattr(get_adapter("rsmf"), "sniff", buggy)
    assert detect(item)[0] is get_adapter("lark")
    assert "rsmf format check failed on it (KeyError" in item.note


# --- L1 / L3: what listing learns about files no adapter will read -------------------------------------------

def test_a_truncated_zip_is_noted_as_one(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as archive:
        for k in range(5):
            archive.writestr(f"chat_{k}.jsonl", _chat_bytes(f"oc_t{k}", 40))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    [item] = list(expand(str(cut)))
    assert isinstance(item, SourceFile) and item.member is None and item.size == cut.stat().st_size
    assert item.note == ("starts with a zip signature (PK\\x03\\x04) but has no readable central directory: "
                         "a truncated or corrupt zip archive")
    assert detect(item)[0] is None


def test_an_empty_file_is_noted_as_one(tmp_path):
    (tmp_path / "empty.json").write_bytes(b"")
    [item] = list(expand(str(tmp_path / "empty.json")))
    assert isinstance(item, SourceFile) and item.size == 0 and item.note == "empty file (0 bytes)"


# --- end to end ----------------------------------------------------------------------------------------------

def _message_count(case: Case) -> int:
    return case.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def test_ingest_of_a_folder_with_good_and_bad_entries(tmp_path, monkeypatch):
    root, _ = _odd_folder(tmp_path)
    _chat(root / "vanishing.jsonl", "oc_vanishing", 4)
    archive = _corrupt_zip(root / "mid.zip")
    bad_members = _unreadable_members(archive)
    expand_file = source_files._expand_file

    def vanish_then_expand(path):  # gone between the folder listing and its stat, as in vanish.py
        if path.endswith("vanishing.jsonl"):
            os.unlink(path)
        return expand_file(path)

    monkeypatch.setattr(source_files, "_expand_file", vanish_then_expand)
    case = Case(tmp_path / "case", create=True)
    try:
        report = ingest(case, [str(root)])
        rows = case.exceptions()
        messages = _message_count(case)
    finally:
        case.close()
    # good.jsonl (5), linkdir's chat read once (7), every readable member of the corrupt zip (50 each)
    assert messages == 5 + 7 + 50 * (20 - len(bad_members))
    by_path = {(row["path"], row["member"]): row["error"] for row in rows}
    expected = {
        (str(root / "dangling.json"), None): "dangling symbolic link",
        (str(root / "loop1"), None): "symbolic link loop",
        (str(root / "loop2"), None): "symbolic link loop",
        (str(root / "fifo.json"), None): "not a regular file but a FIFO",
        (str(root / "linkdir"), None): "the same folder as",
        (str(root / "sub" / "up"), None): "symbolic link loop",
        (str(root / "vanishing.jsonl"), None): "disappeared",
    }
    expected.update({(str(archive), member): "cannot read this file's bytes" for member in bad_members})
    for where, text in expected.items():
        assert text in (by_path.get(where) or ""), (where, rows)
    assert report.exceptions == len(rows) == len(expected)


def test_ingest_says_why_an_empty_file_or_a_truncated_zip_was_not_read(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "empty.json").write_bytes(b"")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as archive:
        for k in range(5):
            archive.writestr(f"chat_{k}.jsonl", _chat_bytes(f"oc_t{k}", 40))
    (tmp_path / "export" / "cut.zip").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    case = Case(tmp_path / "case", create=True)
    try:
        ingest(case, [str(tmp_path / "export")])
        errors = {Path(row["path"]).name: row["error"] for row in case.exceptions()}
        sources = case.db.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
    finally:
        case.close()
    assert errors["empty.json"].startswith("empty file (0 bytes): no adapter recognised")
    assert errors["cut.zip"].startswith("starts with a zip signature (PK\\x03\\x04) but has no readable central "
                                        "directory: a truncated or corrupt zip archive: no adapter recognised")
    assert sources == 2  # both kept as sources
