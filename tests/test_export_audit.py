"""A CLI export puts its own audit entry into the bundle's chain of custody, hash and all."""

import json
import zipfile
from pathlib import Path

from click.testing import CliRunner

from discovery import audit
from discovery.case import Case
from discovery.cli import cli
from discovery.ingest import ingest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lark"


def test_cli_export_records_itself_in_the_trail_and_in_the_bundle(tmp_path):
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(FIXTURES)])
    case.close()
    out = tmp_path / "bundle.zip"
    result = CliRunner().invoke(cli, ["export", "whitewash", "--case", str(tmp_path / "case"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    case = Case(tmp_path / "case")
    started, finished = audit.entries(case, action="export")
    assert (started["outcome"], finished["outcome"]) == ("started", "ok")
    assert finished["details"]["started_seq"] == started["seq"]
    with zipfile.ZipFile(out) as bundle:
        custody = json.loads(bundle.read("chain_of_custody.json"))
    assert [entry["hash"] for entry in custody["audit"]] == [started["hash"]]
    assert audit.verify(case).ok
    case.close()
