"""Evidence bundles end to end: a real case on disk, a real zip, every file read back by ordinary tools."""

from __future__ import annotations

import csv
import html.parser
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from discovery.cli import cli
from discovery.export import dat
from discovery.export.csv_out import COLUMNS
from discovery.export.select import Selection
from discovery.search import parse_query
from tests.test_export_fixtures import FORMULAS, HOSTILE, build_case, export, jsonl, unpack


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    case = build_case(tmp_path_factory.mktemp("case"))
    yield case
    case.close()


@pytest.fixture(scope="module")
def bundle(case, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    terms = folder / "terms.txt"
    terms.write_text("whitewash\n洗白\n\n=cmd\n", encoding="utf-8")
    report = export(case, folder / "bundle.zip", context=2, terms=["whitewash", "洗白", "=cmd"], slice="24h",
                    tz="Asia/Shanghai", bates_prefix="ACME", bates_start=101)
    return report, unpack(folder / "bundle.zip", folder / "unpacked")


def test_layout_names_every_file(bundle):
    report, folder = bundle
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    fixed = {"README.txt", "manifest.json", "SHA256SUMS", "messages.jsonl", "messages.csv", "transcript.html",
             "loadfile.dat", "chain_of_custody.json", "search_term_report.csv"}
    assert fixed <= set(names)
    rsmf = [n for n in names if n.startswith("rsmf/")]
    text = [n for n in names if n.startswith("text/")]
    assert rsmf and len(rsmf) == len(text) == report.counts["documents"]
    assert set(names) == fixed | set(rsmf) | set(text)
    assert "loadfile.opt" not in names  # no images are produced
    with zipfile.ZipFile(report.path) as archive:
        content, seals = archive.namelist()[:-2], archive.namelist()[-2:]
        assert content == sorted(content) and seals == ["manifest.json", "SHA256SUMS"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_sha256sum_accepts_sums(bundle):
    _, folder = bundle
    if not shutil.which("sha256sum"):
        pytest.skip("sha256sum (coreutils) is not installed")
    done = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=folder, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert len(lines) == len(files) - 1  # every file but SHA256SUMS itself
    assert all(line.endswith(": OK") for line in lines)


def test_manifest_lists_every_other_file_with_size_and_hash(bundle):
    report, folder = bundle
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    listed = {f["path"]: f for f in manifest["files"]}
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(listed) == files - {"manifest.json", "SHA256SUMS"}
    for name, entry in listed.items():
        assert entry["size"] == (folder / name).stat().st_size
    assert manifest["bundle_id"] == report.bundle_id and manifest["created_at"].endswith("Z")
    assert manifest["created_by"] == "tester"
    assert manifest["tool"]["name"] == "discovery" and manifest["tool"]["version"]
    assert manifest["query"]["text"] == "whitewash OR 洗白"
    assert manifest["options"]["context"] == 2 and manifest["options"]["tz"] == "Asia/Shanghai"
    assert manifest["counts"]["messages"] == report.counts["messages"]
    assert manifest["bates"] == {"prefix": "ACME", "first": "ACME0000101",
                                 "last": f"ACME{100 + report.counts['messages']:07d}", "width": 7}
    assert manifest["case"]["name"] == "case"


def test_messages_jsonl_marks_hits_and_context_with_provenance(case, bundle):
    report, folder = bundle
    rows = jsonl(folder)
    assert len(rows) == report.counts["messages"]
    assert [r["export"]["bates"] for r in rows] == [f"ACME{n:07d}" for n in range(101, 101 + len(rows))]
    order = [(r["conversation_id"], r["sent_at"], r["id"]) for r in rows]
    assert order == sorted(order)
    hits = [r for r in rows if r["hit"]]
    assert {r["native_id"] for r in hits} == {"om_0002", "om_0004", "om_0030", "om_0041"}
    for row in rows:
        assert row["export"]["role"] == ("hit" if row["hit"] else "context")
        assert row["raw"] and json.loads(row["raw"])["message_id"] == row["native_id"]
        assert len(row["source"]["sha256"]) == 64 and row["source"]["locator"].startswith("line ")
        assert row["export"]["sent_at_local"].endswith("+08:00")
    chinese = next(r for r in hits if r["native_id"] == "om_0002")
    start, end = chinese["highlights"][0]
    assert chinese["text"][start:end] == "洗白"
    # the same messages the search shows: each hit's window of 2 within its conversation
    expected = set()
    for hit in hits:
        expected |= {m["id"] for m in case.window(hit["id"], 2, 2)}
    assert {r["id"] for r in rows} == expected


def test_csv_has_bom_every_row_and_no_live_formula(bundle):
    report, folder = bundle
    raw = (folder / "messages.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(folder / "messages.csv", encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == report.counts["messages"]
    assert list(rows[0]) == list(COLUMNS)
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (column, value)
    texts = {row["native_id"]: row["text"] for row in rows}
    assert texts["om_0002"] == "我们需要洗白这笔账"
    by_jsonl = {r["native_id"]: r["text"] for r in jsonl(folder)}
    for native_id, text in texts.items():
        if by_jsonl[native_id].startswith(tuple("=+-@")):
            assert text == "'" + by_jsonl[native_id]
        else:
            assert text == by_jsonl[native_id]
    assert "'" + FORMULAS[1] in texts.values()  # the reply "+1 agreed" is context of the hostile hit
    for row, message in zip(rows, jsonl(folder), strict=True):  # every column holds its own value
        source, export = message["source"], message["export"]
        assert [row["bates"], row["document"], row["role"], row["sent_at_local"]] == [
            export["bates"], export["document"], export["role"], export["sent_at_local"]]
        assert [row["id"], row["sender_id"], row["sent_at"], row["raw"], row["custodian"]] == [
            message["id"], message["sender_id"], message["sent_at"], message["raw"], message["custodian"]]
        assert [row["source_path"], row["source_sha256"], row["source_locator"]] == [
            source["path"], source["sha256"], source["locator"]]
        assert row["edited"] == str(message["edited"]).lower() and json.loads(row["attachments"]) == message[
            "attachments"]


class _Page(html.parser.HTMLParser):
    """Every tag, attribute and text run of a page, as a browser's tokenizer would see them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, name, value) for name, value in attrs]

    def handle_data(self, data):
        self.text.append(data)


def test_transcript_is_self_contained_and_hostile_text_inert(bundle):
    _, folder = bundle
    page = (folder / "transcript.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    parsed = _Page()
    parsed.feed(page)
    assert parsed.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "table", "tr", "th", "td",
                           "p", "span", "ol", "li", "a", "section", "div", "b", "mark"}
    for tag, name, value in parsed.attrs:
        assert name in {"lang", "charset", "http-equiv", "content", "name", "class", "id", "href"}, (tag, name)
        assert not name.startswith("on")
        if name == "href":
            assert value.startswith("#")
    assert "@import" not in page and "url(" not in page
    text = "".join(parsed.text)
    assert HOSTILE.replace(" whitewash the numbers", "") in text  # shown as text, exactly
    assert "Alpha 项目组 þ\x14 <i>room</i>" in text  # the hostile conversation name, as text
    assert "<mark>whitewash</mark>" in page and "<mark>洗白</mark>" in page
    assert 'class="msg context"' in page and 'class="msg hit"' in page
    assert "+08:00" in page and "sha256 " in page and "[edited 2024-09-10 12:09:00.000 +08:00]" in page


def test_dat_parses_back_with_gap_free_bates(bundle):
    report, folder = bundle
    data = (folder / "loadfile.dat").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf\xc3\xbeBEGBATES\xc3\xbe\x14")
    lines = data[3:].split(b"\r\n")
    assert lines[-1] == b""
    rows = []
    for line in lines[:-1]:
        cells = line.decode("utf-8").split("\x14")
        assert all(c.startswith("\u00fe") and c.endswith("\u00fe") and "\u00fe" not in c[1:-1] for c in cells)
        rows.append([c[1:-1] for c in cells])
    header, body = rows[0], rows[1:]
    assert len(body) == report.counts["documents"]
    records = [dict(zip(header, row, strict=True)) for row in body]
    assert records == dat.parse(data)
    numbers = [(int(r["BEGBATES"][4:]), int(r["ENDBATES"][4:])) for r in records]
    assert numbers[0][0] == 101 and numbers[-1][1] == 100 + report.counts["messages"]
    for (_, end), (begin, _) in zip(numbers, numbers[1:], strict=False):
        assert begin == end + 1
    for record in records:
        native = folder / record["NATIVE_LINK"].replace("\\", "/")
        assert native.is_file() and (folder / record["TEXT_LINK"].replace("\\", "/")).is_file()
        assert record["CUSTODIAN"] == "Li Wei"
        assert len(record["SHA256_HASH"]) == 64 and len(record["MD5_HASH"]) == 32
        assert record["DATE_BEGIN_UTC"][4] == "-" and len(record["DATE_BEGIN_UTC"]) == 19
    alpha = [r for r in records if r["CONVERSATION_ID"] == "oc_alpha"]
    assert alpha and all("\x14" not in r["CONVERSATION"] and "Alpha 项目组" in r["CONVERSATION"] for r in alpha)


def test_chain_of_custody_names_each_source_and_the_export(case, bundle):
    report, folder = bundle
    custody = json.loads((folder / "chain_of_custody.json").read_text(encoding="utf-8"))
    used = {r["source"]["sha256"] for r in jsonl(folder)}
    assert {s["sha256"] for s in custody["sources"]} == used
    runs = {run["id"]: run for run in custody["ingest_runs"]}
    for source in custody["sources"]:
        assert source["size"] > 0 and source["format"] == "lark" and source["custodian"] == "Li Wei"
        assert source["tool_version"] and source["ingested_at"].endswith("Z")
        run = runs[source["ingest_run"]]
        assert run["started_at"].endswith("Z") and run["arguments"]["custodian"] == "Li Wei"
    assert "lark" in custody["format_limits"]
    event = custody["export"]
    assert event["event"] == "export" and event["created_by"] == "tester" and event["query"] == "whitewash OR 洗白"
    assert event["counts"] == report.counts
    assert custody["audit"] == []


def test_search_term_report_csv(bundle):
    _, folder = bundle
    with open(folder / "search_term_report.csv", encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["term", "messages", "with_context", "conversations", "unique"]
    assert rows[1][:2] == ["whitewash", "3"] and rows[2][:2] == ["洗白", "1"]
    assert rows[3][0] == "'=cmd"  # a term is neutralised like any cell
    assert rows[-1][0] == "TOTAL" and rows[-1][1] == "4"


def test_readme_says_what_and_how_to_verify(bundle):
    _, folder = bundle
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    for needle in ("whitewash OR 洗白", "sha256sum -c SHA256SUMS", "discovery verify", "ACME0000101",
                   "manifest.json", "chain_of_custody.json", "loadfile.dat", "Asia/Shanghai"):
        assert needle in readme


def test_same_export_twice_is_byte_identical_but_the_manifest(case, tmp_path):
    first = export(case, tmp_path / "a.zip", context=2, slice="24h", tz="Asia/Shanghai", terms=["whitewash"])
    second = export(case, tmp_path / "b.zip", context=2, slice="24h", tz="Asia/Shanghai", terms=["whitewash"])
    with zipfile.ZipFile(first.path) as a, zipfile.ZipFile(second.path) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if name in ("manifest.json", "SHA256SUMS"):
                continue
            assert a.read(name) == b.read(name), name
        ma, mb = json.loads(a.read("manifest.json")), json.loads(b.read("manifest.json"))
        assert ma["bundle_id"] != mb["bundle_id"]
        for key in ("bundle_id", "created_at"):
            ma.pop(key), mb.pop(key)
        assert ma == mb
        # SHA256SUMS differs only in manifest.json's line
        sums_a = [line for line in a.read("SHA256SUMS").decode().splitlines() if not line.endswith("manifest.json")]
        sums_b = [line for line in b.read("SHA256SUMS").decode().splitlines() if not line.endswith("manifest.json")]
        assert sums_a == sums_b


def test_empty_result_is_still_a_valid_bundle(case, tmp_path):
    from discovery.export.verify import verify_bundle

    report = export(case, tmp_path / "none.zip", query="nosuchwordanywhere")
    assert report.counts["messages"] == 0 and report.bates_first is None
    assert verify_bundle(report.path).ok
    folder = unpack(Path(report.path), tmp_path / "none")
    assert (folder / "messages.jsonl").read_text() == ""
    assert len(dat.parse((folder / "loadfile.dat").read_bytes())) == 0


def test_filters_and_audit_hook(case, tmp_path):
    seen = []

    def hook(event):
        seen.append(event)
        return [{"action": "export requested", "user": "auditor"}]

    report = export(case, tmp_path / "f.zip", query="whitewash", filters=["conversation:oc_dm"], context=0,
                    audit_hook=hook)
    assert report.counts["messages"] == 1
    folder = unpack(Path(report.path), tmp_path / "f")
    custody = json.loads((folder / "chain_of_custody.json").read_text(encoding="utf-8"))
    assert custody["audit"] == [{"action": "export requested", "user": "auditor"}]
    assert seen and seen[0]["filters"] == ["conversation:oc_dm"]


def test_bad_options_raise_value_error(case, tmp_path):
    for options in ({"bates_prefix": "A B"}, {"bates_start": 0}, {"slice": "6h"}, {"tz": "Mars/Olympus"},
                    {"context": 51}, {"out_name": "missing-folder/x.zip"}):
        with pytest.raises(ValueError):
            export(case, tmp_path / options.pop("out_name", "x.zip"), **options)
    assert not (tmp_path / "x.zip").exists()


def test_cli_export_and_verify(case, tmp_path):
    runner = CliRunner()
    terms = tmp_path / "terms.txt"
    terms.write_text("whitewash\n洗白\n", encoding="utf-8")
    out = tmp_path / "cli.zip"
    result = runner.invoke(cli, ["export", "whitewash", "--case", str(case.folder), "--out", str(out), "--context",
                                 "1", "--terms", str(terms), "--slice", "12h", "--tz", "UTC", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["hits"] == 3 and len(data["manifest_sha256"]) == 64
    from discovery import audit

    recorded = audit.entries(case, action="export")[-1]
    assert recorded["outcome"] == "ok" and recorded["details"]["fingerprint"] == data["manifest_sha256"]
    result = runner.invoke(cli, ["verify", str(out), "--fingerprint", data["manifest_sha256"]])
    assert result.exit_code == 0, result.output
    assert "VERIFIED" in result.output
    result = runner.invoke(cli, ["verify", str(out), "--fingerprint", "0" * 64])
    assert result.exit_code == 1


def test_cli_usage_errors_exit_2(case, tmp_path):
    runner = CliRunner()
    base = ["--case", str(case.folder), "--out", str(tmp_path / "x.zip")]
    result = runner.invoke(cli, ["export", '"unclosed', *base])
    assert result.exit_code == 2 and "^" in result.output
    bad_terms = tmp_path / "bad.txt"
    bad_terms.write_text("fine\n(broken\n", encoding="utf-8")
    result = runner.invoke(cli, ["export", "whitewash", *base, "--terms", str(bad_terms)])
    assert result.exit_code == 2 and "term 2" in result.output
    result = runner.invoke(cli, ["export", "whitewash", *base, "--bates-prefix", "no spaces"])
    assert result.exit_code == 2
    result = runner.invoke(cli, ["export", "whitewash", *base, "--tz", "Nowhere/Land"])
    assert result.exit_code == 2


def test_help_has_examples():
    runner = CliRunner()
    for command in ("export", "verify"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output


def test_selection_matches_search_windows_on_both_paths(case):
    """The scan path (dense hits) and the seek path (sparse hits) select exactly case.window's messages."""
    from discovery.export import select

    node = parse_query(case, "filler OR whitewash")
    ids = case.engine().all_ids(node)
    expected = set()
    for message_id in ids:
        expected |= {m["id"] for m in case.window(message_id, 3, 3)}
    for path in (select._windows_by_scan, select._windows_by_seek):
        db = select.connect(case)
        hits = select.temp_table(db, "t_hits")
        select.load_hits(db, hits, ids)
        out = select.temp_table(db, "t_out")
        db.execute(f"INSERT INTO {out} SELECT * FROM {hits}")
        for (stream,) in db.execute(f"SELECT DISTINCT stream FROM {hits}").fetchall():
            path(db, hits, out, stream, 3)
        assert {r[0] for r in db.execute(f"SELECT id FROM {out}")} == expected
        db.close()
    with Selection.create(case, ids, 3) as selection:
        assert {m["id"] for m in selection.messages()} == expected
        assert selection.counts()["hits"] == len(ids)
