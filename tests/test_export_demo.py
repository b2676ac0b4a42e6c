"""Bundles of the shared fixtures: the demo Lark export, and the hostile one every output must keep inert."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from discovery.case import Case
from discovery.export import dat
from discovery.export.verify import verify_bundle
from tests.conftest import XSS, ingest_folder, write_hostile_export
from tests.test_export_bundle import _Page
from tests.test_export_fixtures import export, unpack
from tests.test_export_rsmf import SCHEMA_PATH, open_rsmf, references_resolve


@pytest.fixture(scope="module")
def demo(demo_case_dir: Path, tmp_path_factory):
    case = Case(demo_case_dir)
    folder = tmp_path_factory.mktemp("demo")
    report = export(case, folder / "demo.zip", query="", context=0, slice="24h", tz="Asia/Shanghai",
                    terms=["whitewash", "洗白", "refund*"])
    case.close()
    return report, unpack(folder / "demo.zip", folder / "unpacked")


def test_demo_bundle_verifies_with_every_tool(demo):
    report, folder = demo
    assert verify_bundle(report.path).ok
    if shutil.which("sha256sum"):
        done = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=folder, check=False,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_demo_rsmf_files_validate(demo):
    report, folder = demo
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    natives = sorted((folder / "rsmf").iterdir())
    assert len(natives) == report.counts["documents"] > 1
    for path in natives:
        _, manifest, names, _ = open_rsmf(path.read_bytes())
        assert not [e.message for e in validator.iter_errors(manifest)], path.name
        references_resolve(manifest, names)


def test_demo_every_message_is_exported_once(demo, demo_case_dir):
    _, folder = demo
    case = Case(demo_case_dir)
    total = case.stats()["messages"]
    case.close()
    ids = [json.loads(line)["id"] for line in (folder / "messages.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids)) == total


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    case_dir = ingest_folder(write_hostile_export(base / "export"), base / "case")
    case = Case(case_dir)
    report = export(case, base / "hostile.zip", query="", context=0)
    case.close()
    return report, unpack(base / "hostile.zip", base / "unpacked")


def test_hostile_text_is_inert_in_the_transcript(hostile):
    _, folder = hostile
    page = (folder / "transcript.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<svg" not in page.lower()
    parsed = _Page()
    parsed.feed(page)
    assert {"script", "img", "svg", "iframe", "object"} & parsed.tags == set()
    for _, name, value in parsed.attrs:
        assert not name.startswith("on") and name != "src"
        if name == "href":
            assert value.startswith("#")
    text = "".join(parsed.text)
    for payload in XSS.values():
        assert payload in text  # shown, exactly, as text


def test_hostile_csv_and_dat_stay_well_formed(hostile):
    report, folder = hostile
    with open(folder / "messages.csv", encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == report.counts["messages"]
    assert all(not value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())
    records = dat.parse((folder / "loadfile.dat").read_bytes())
    assert len(records) == report.counts["documents"]
    assert records[0]["CONVERSATION"] == XSS["img"] + " " + XSS["quote"]
    assert verify_bundle(report.path).ok
