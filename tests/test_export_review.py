"""Review decisions travel with the evidence: tags and notes in every bundle file but the RSMF.

A real case on disk (tests.test_export_fixtures), tagged and annotated through discovery.review,
exported to real zips that are read back with ordinary tools (json, csv, byte splitting, an HTML
parser) and checked by ``discovery verify``.
"""

from __future__ import annotations

import csv
import html.parser
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from discovery import review
from discovery.cli import cli
from discovery.export import csv_out, dat
from discovery.export.review_snapshot import SNAPSHOT
from discovery.export.verify import verify_bundle
from tests.test_export_fixtures import build_case, export
from tests.test_verify import _reseal, rewrite

HOSTILE_NOTE = "<script>alert('note')</script> see the ledger; page 2\nsecond line"
ODD_TAG = "=SUM;x"  # a formula for spreadsheets and a multi-value separator for the DAT
OPTIONS: dict[str, Any] = {"context": 2, "slice": "24h", "tz": "Asia/Shanghai", "bates_prefix": "ACME",
                           "bates_start": 101}


def _ids(case) -> dict[str, str]:
    """Native id -> message id."""
    return {row[1]: row[0] for row in case.db.execute("SELECT id, native_id FROM messages")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Any]:
    """A bundle before any review, then tags and notes (some taken back), then bundles after."""
    folder = tmp_path_factory.mktemp("review-export")
    case = build_case(folder)
    before = export(case, folder / "before.zip", **OPTIONS)
    ids = _ids(case)
    review.add_tag(case, [ids["om_0002"], ids["om_0004"]], "hot", actor="alice")
    review.add_tag(case, [ids["om_0004"]], "privileged", actor="bob")
    review.define_tag(case, ODD_TAG, actor="admin")
    review.add_tag(case, [ids["om_0041"]], ODD_TAG, actor="carol")
    review.add_tag(case, [ids["om_0003"]], "responsive", actor="alice")
    review.remove_tag(case, [ids["om_0003"]], "responsive", actor="alice")  # taken off: not exported
    review.add_note(case, ids["om_0004"], HOSTILE_NOTE, actor="alice")
    edited = review.add_note(case, ids["om_0002"], "确认：这是洗白", actor="alice")
    review.edit_note(case, edited.id, "确认：这就是洗白", actor="bob", admin=True)
    gone = review.add_note(case, ids["om_0041"], "draft, delete me", actor="carol")
    review.delete_note(case, gone.id, actor="carol")  # deleted: not exported, history stays in case.db
    after = export(case, folder / "after.zip", **OPTIONS)
    again = export(case, folder / "again.zip", **OPTIONS)
    yield {"case": case, "ids": ids, "before": Path(before.path), "after": Path(after.path),
           "again": Path(again.path), "report": after, "folder": folder}
    case.close()


def _read(bundle: Path, name: str) -> bytes:
    with zipfile.ZipFile(bundle) as archive:
        return archive.read(name)


def _jsonl(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _read(bundle, "messages.jsonl").decode("utf-8").splitlines()]


def _csv(bundle: Path) -> list[list[str]]:
    data = _read(bundle, "messages.csv")
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _dat(bundle: Path) -> list[dict[str, str]]:
    """The DAT split by hand: rows on CRLF, cells on 0x14, each cell inside þ...þ, ® for newlines."""
    data = _read(bundle, "loadfile.dat")
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data[3:].decode("utf-8").split("\r\n")
    assert lines[-1] == ""
    rows = []
    for line in lines[:-1]:
        cells = line.split("\x14")
        assert all(c[0] == c[-1] == "\u00fe" and "\u00fe" not in c[1:-1] for c in cells)
        rows.append([c[1:-1] for c in cells])
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _by_native(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["native_id"]: row for row in rows}


# ------------------------------------------------------------------------------------- messages.jsonl


def test_jsonl_carries_tags_and_notes_as_the_review_library_has_them(exported):
    case, rows = exported["case"], _jsonl(exported["after"])
    ids = [row["id"] for row in rows]
    tags, notes = review.message_tags(case, ids), review.notes_for(case, ids)
    for row in rows:
        assert row["tags"] == [{"name": t.name, "added_by": t.added_by, "added_at": t.added_at}
                               for t in tags[row["id"]]]
        assert [(n["id"], n["author"], n["created_at"], n["text"]) for n in row["notes"]] == [
            (n.id, n.created_by, n.created_at, n.text) for n in notes[row["id"]]]
    by = _by_native(rows)
    assert [t["name"] for t in by["om_0004"]["tags"]] == ["privileged", "hot"]  # tag-list order
    assert by["om_0004"]["tags"][1]["added_by"] == "alice" and by["om_0004"]["tags"][1]["added_at"].endswith("Z")
    assert by["om_0003"]["tags"] == []  # the tag taken off is not exported
    assert by["om_0041"]["tags"][0]["name"] == ODD_TAG and by["om_0041"]["notes"] == []  # deleted note left out
    (hostile,) = by["om_0004"]["notes"]
    assert hostile["text"] == HOSTILE_NOTE and hostile["edited_at"] is None and hostile["edited_by"] is None
    (edited,) = by["om_0002"]["notes"]
    assert edited["author"] == "alice" and edited["edited_by"] == "bob" and edited["text"] == "确认：这就是洗白"
    assert edited["edited_at"] >= edited["created_at"] and edited["edited_at"].endswith("Z")
    assert all(row["tags"] == [] and row["notes"] == [] for row in rows
               if row["native_id"] not in {"om_0002", "om_0004", "om_0041"})


def test_without_review_the_shapes_are_the_same_and_empty(exported):
    before, after = _jsonl(exported["before"]), _jsonl(exported["after"])
    assert all(row["tags"] == [] and row["notes"] == [] for row in before)
    stripped = [{**row, "tags": [], "notes": []} for row in after]
    assert stripped == before  # nothing else changed
    header, *rows = _csv(exported["before"])
    assert header == list(csv_out.COLUMNS) and all(row[-2:] == ["", ""] for row in rows)
    records = _dat(exported["before"])
    assert records and all(r["TAGS"] == "" and r["NOTES"] == "" for r in records)
    manifest = json.loads(_read(exported["before"], "manifest.json"))
    assert manifest["review"] == {"snapshot": SNAPSHOT, "tagged_messages": 0, "tags_applied": 0, "tags": {},
                                  "notes": 0, "messages_with_notes": 0}
    assert verify_bundle(exported["before"]).ok


def test_everything_taken_back_exports_empty_values(tmp_path):
    case = build_case(tmp_path)
    try:
        ids = _ids(case)
        review.add_tag(case, [ids["om_0002"]], "hot", actor="alice")
        review.remove_tag(case, [ids["om_0002"]], "hot", actor="alice")
        note = review.add_note(case, ids["om_0002"], "second thoughts", actor="alice")
        review.delete_note(case, note.id, actor="alice")
        report = export(case, tmp_path / "b.zip", **OPTIONS)
    finally:
        case.close()
    assert report.counts["tagged_messages"] == 0 and report.counts["notes"] == 0
    bundle = Path(report.path)
    assert all(row["tags"] == [] and row["notes"] == [] for row in _jsonl(bundle))
    for name in ("messages.jsonl", "messages.csv", "transcript.html", "loadfile.dat"):
        assert b"second thoughts" not in _read(bundle, name)
    assert verify_bundle(bundle).ok


# --------------------------------------------------------------------------------------- messages.csv


def test_csv_appends_tags_and_notes_columns(exported):
    header, *rows = _csv(exported["after"])
    assert header == list(csv_out.COLUMNS)
    assert header[-2:] == ["tags", "notes"] and header[-3] == "raw"  # existing columns keep their places
    records = [dict(zip(header, row, strict=True)) for row in rows]
    by = {r["native_id"]: r for r in records}
    jsonl = _by_native(_jsonl(exported["after"]))
    tags = jsonl["om_0004"]["tags"]
    assert by["om_0004"]["tags"] == (f"privileged (bob, {tags[0]['added_at']}); "
                                     f"hot (alice, {tags[1]['added_at']})")
    note = jsonl["om_0004"]["notes"][0]
    assert by["om_0004"]["notes"] == f"[alice, {note['created_at']}] {HOSTILE_NOTE}"
    edited = jsonl["om_0002"]["notes"][0]
    assert by["om_0002"]["notes"] == (f"[alice, {edited['created_at']}, edited by bob {edited['edited_at']}] "
                                      "确认：这就是洗白")
    assert by["om_0041"]["tags"].startswith("'=SUM;x (carol, ")  # neutralised, not a formula
    assert by["om_0003"]["tags"] == "" and by["om_0041"]["notes"] == ""
    before = _csv(exported["before"])
    assert [row[:-2] for row in before] == [row[:-2] for row in [header, *rows]]  # old columns unchanged


# --------------------------------------------------------------------------------------- loadfile.dat


def test_dat_appends_tags_and_notes_fields(exported):
    records = _dat(exported["after"])
    assert list(records[0])[-2:] == ["TAGS", "NOTES"] and list(records[0])[-3] == "TEXT_LINK"
    parsed = dat.parse(_read(exported["after"], "loadfile.dat"))  # the reader verify uses agrees
    assert [{k: v.replace("\u00ae", "\n") for k, v in r.items()} for r in records] == parsed
    bates = {row["native_id"]: row["export"]["bates"] for row in _jsonl(exported["after"])}

    def document(native_id: str) -> dict[str, str]:
        number = int(bates[native_id][4:])
        return next(r for r in records if int(r["BEGBATES"][4:]) <= number <= int(r["ENDBATES"][4:]))

    first = document("om_0004")
    assert document("om_0002") is first
    assert first["TAGS"].split(";") == ["hot", "privileged"]
    notes = first["NOTES"].split(";")
    assert len(notes) == 2 and all(" UTC" in n for n in notes)
    hostile = next(n for n in notes if n.startswith(bates["om_0004"]))
    assert hostile.startswith(f"{bates['om_0004']} alice, 20") and hostile.endswith(
        ": <script>alert('note')</script> see the ledger, page 2\u00aesecond line")  # ';' -> ',', newline -> ®
    assert next(n for n in notes if n.startswith(bates["om_0002"])).endswith(": 确认：这就是洗白")
    assert ", edited by bob " in next(n for n in notes if n.startswith(bates["om_0002"]))
    assert document("om_0041")["TAGS"] == "=SUM,x" and document("om_0041")["NOTES"] == ""
    untouched = [r for r in records if r is not first and r is not document("om_0041")]
    assert untouched and all(r["TAGS"] == r["NOTES"] == "" for r in untouched)


# ------------------------------------------------------------------------------------ transcript.html


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_transcript_shows_tags_and_notes_inert(exported):
    page = _read(exported["after"], "transcript.html").decode("utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt;" in page
    parsed = _Page()
    parsed.feed(page)
    assert parsed.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "table", "tr", "th", "td",
                           "p", "span", "ol", "li", "a", "section", "div", "b", "mark"}
    assert {name for name, _ in parsed.attrs} <= {"lang", "charset", "http-equiv", "content", "name", "class",
                                                  "id", "href"}
    text = "".join(parsed.text)
    assert HOSTILE_NOTE in text  # shown exactly, as text
    assert page.count('<span class="tag">') == 4  # privileged, hot (om_0004), hot (om_0002), =SUM;x
    assert '<span class="tag">=SUM;x <span class="by">· carol, 20' in page
    assert page.count('<div class="note">') == 2 and "delete me" not in text
    assert "Note by alice, 20" in text and ", edited by bob 20" in text and "确认：这就是洗白" in text
    assert "+08:00" in text.split("Note by alice, ", 1)[1][:40]  # note times shown in the export's zone
    assert "3 messages tagged, 2 notes: " + SNAPSHOT in text


def test_transcript_without_review_has_no_review_boxes(exported):
    page = _read(exported["before"], "transcript.html").decode("utf-8")
    assert 'class="tag"' not in page and 'class="note"' not in page and 'class="review"' not in page
    assert "0 messages tagged, 0 notes" in page


# ------------------------------------------------------------------------ manifest, README, RSMF, verify


def test_manifest_and_readme_state_the_snapshot_and_counts(exported):
    manifest = json.loads(_read(exported["after"], "manifest.json"))
    assert manifest["review"] == {"snapshot": SNAPSHOT, "tagged_messages": 3, "tags_applied": 4,
                                  "tags": {"privileged": 1, "hot": 2, ODD_TAG: 1}, "notes": 2,
                                  "messages_with_notes": 2}
    assert "created_at" in manifest["review"]["snapshot"] and "deleted notes are not exported" in SNAPSHOT
    assert manifest["counts"]["tagged_messages"] == 3 and manifest["counts"]["notes"] == 2
    assert exported["report"].counts == manifest["counts"]
    custody = json.loads(_read(exported["after"], "chain_of_custody.json"))
    assert custody["export"]["counts"] == manifest["counts"]
    readme = _read(exported["after"], "README.txt").decode("utf-8")
    assert "Review:         3 messages tagged (privileged 1, hot 2, =SUM;x 1), 2 notes on 2 messages" in readme
    assert "snapshot as of the export time: manifest.json's created_at" in readme
    assert "deleted notes are not exported" in readme and "not in the RSMF files" in readme


def test_rsmf_files_are_unchanged_by_review(exported):
    with zipfile.ZipFile(exported["before"]) as before, zipfile.ZipFile(exported["after"]) as after:
        names = [n for n in before.namelist() if n.startswith(("rsmf/", "text/"))]
        assert names and names == [n for n in after.namelist() if n.startswith(("rsmf/", "text/"))]
        for name in names:
            assert before.read(name) == after.read(name), name


def test_verify_passes_with_review_decisions(exported):
    result = CliRunner().invoke(cli, ["verify", str(exported["after"])])
    assert result.exit_code == 0, result.output
    assert "VERIFIED" in result.output


def test_same_case_exports_identically_but_the_manifest(exported):
    with zipfile.ZipFile(exported["after"]) as a, zipfile.ZipFile(exported["again"]) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if name not in ("manifest.json", "SHA256SUMS"):
                assert a.read(name) == b.read(name), name
        ma, mb = json.loads(a.read("manifest.json")), json.loads(b.read("manifest.json"))
        for key in ("bundle_id", "created_at"):
            ma.pop(key), mb.pop(key)
        assert ma == mb


def test_altered_note_is_caught(exported, tmp_path):
    tampered = rewrite(exported["after"], tmp_path / "t.zip", change=lambda n, d: d.replace(
        "这就是洗白".encode(), "这不是洗白".encode()) if n == "messages.jsonl" else d)
    verdict = verify_bundle(tampered)
    assert not verdict.ok and verdict.altered == ["messages.jsonl"]


def test_resealed_bundle_with_a_tag_dropped_is_caught(exported, tmp_path):
    """A forger who removes a tag and fixes every hash still leaves the manifest's review counts wrong."""
    rows = _jsonl(exported["after"])
    for row in rows:
        if row["native_id"] == "om_0041":
            row["tags"] = []
    data = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
                   for row in rows).encode("utf-8")
    verdict = verify_bundle(_reseal(exported["after"], tmp_path / "forged.zip", "messages.jsonl", data))
    assert not verdict.ok
    assert any("tagged messages in messages.jsonl" in p for p in verdict.problems), verdict.problems


# ------------------------------------------------------------------------------------ review sets, CLI


def test_review_set_export_carries_tags_and_notes(exported):
    case, folder = exported["case"], exported["folder"]
    frozen = review.create_set(case, "whitewash review", "whitewash", context=1, actor="alice")
    report = review.export_set(case, frozen.id, folder / "set.zip", actor="alice", bates_prefix="SET")
    rows = _by_native(_jsonl(Path(report.path)))
    natives = _ids(case)
    assert sorted(natives[n] for n in rows) == sorted(m for m, _ in review.set_message_ids(case, frozen.id))
    assert [t["name"] for t in rows["om_0004"]["tags"]] == ["privileged", "hot"]
    assert rows["om_0004"]["notes"][0]["text"] == HOSTILE_NOTE
    assert report.counts["tagged_messages"] == sum(bool(r["tags"]) for r in rows.values())
    assert verify_bundle(report.path).ok


def test_cli_export_reports_review_counts(exported, tmp_path):
    out = tmp_path / "cli.zip"
    result = CliRunner().invoke(cli, ["export", "whitewash OR 洗白", "--case", str(exported["case"].folder),
                                      "--out", str(out), "--context", "2", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)["counts"]
    assert counts["tagged_messages"] == 3 and counts["notes"] == 2
    assert verify_bundle(out).ok


def test_cli_export_says_what_review_it_carries(exported, tmp_path):
    result = CliRunner().invoke(cli, ["export", "whitewash", "--case", str(exported["case"].folder),
                                      "--out", str(tmp_path / "cli.zip"), "--context", "0"])
    assert result.exit_code == 0, result.output
    assert "review decisions as of now: 2 tagged messages, 1 notes" in result.output
