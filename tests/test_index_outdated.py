"""An index built by an older version: every way in says to run `discovery reindex`, and reindex fixes it."""

from pathlib import Path

import whoosh.fields
import whoosh.index
from click.testing import CliRunner

from discovery.cli import cli
from tests.conftest import FIXTURES, WEB_USERS, ingest_folder, login, make_app


def _outdated_case(tmp_path: Path) -> Path:
    case_dir = ingest_folder(FIXTURES / "lark", tmp_path / "case")
    index_dir = case_dir / "index"
    for path in index_dir.iterdir():
        path.unlink()
    whoosh.index.create_in(str(index_dir), whoosh.fields.Schema(id=whoosh.fields.ID(stored=True)))
    return case_dir


def test_cli_names_reindex_instead_of_a_traceback_and_reindex_repairs(tmp_path: Path) -> None:
    case_dir = _outdated_case(tmp_path)
    result = CliRunner().invoke(cli, ["search", "whitewash", "--case", str(case_dir)])
    assert result.exit_code == 2
    assert "discovery reindex" in result.output
    assert "Traceback" not in result.output

    assert CliRunner().invoke(cli, ["reindex", "--case", str(case_dir)]).exit_code == 0
    again = CliRunner().invoke(cli, ["search", "whitewash", "--case", str(case_dir)])
    assert again.exit_code == 0 and "whitewash" in again.output.lower()


def test_web_search_says_the_index_must_be_rebuilt(tmp_path: Path) -> None:
    app = make_app(_outdated_case(tmp_path))
    try:
        client = app.test_client()
        assert login(client, *WEB_USERS["investigator"]).status_code == 302
        page = client.get("/search?q=whitewash")
        assert page.status_code == 503
        assert "discovery reindex" in page.get_data(as_text=True)
        twin = client.get("/search.json?q=whitewash")
        assert twin.status_code == 503 and "discovery reindex" in twin.get_json()["error"]
    finally:
        app.extensions["discovery_cases"].close()
