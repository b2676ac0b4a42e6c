"""Every file in fixtures/broken goes through a real ingest next to a valid export: each one becomes a
clear exception row that names it, nothing crashes, and the valid neighbour's messages still go in."""

from pathlib import Path

import pytest

from discovery.case import Case
from discovery.ingest import ingest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BROKEN = sorted((FIXTURES / "broken").iterdir())
# A neighbour that shares no message ids with any broken file (the truncated Telegram export
# shares ids with the Telegram fixture, so its first messages would count as duplicates).
VALID = FIXTURES / "whatsapp" / "WhatsApp Chat with Refund cleanup.txt"
VALID_MESSAGES = 16  # and one malformed record of its own, reported under its own path
VALID_ERRORS = ["line 18"]

# What each broken file must be reported as (a substring of its exception's text).
EXPECTED = {
    "binary_garbage.bin": "no adapter recognised this file's content",
    "empty.json": "no adapter recognised this file's content",
    "excel_utf16.csv": "no adapter recognised this file's content",
    "lark_wrong_types.json": "",
    "truncated_telegram_result.json": "invalid JSON after 8 messages",
    "zip_bomb.zip": "zip bomb",
    "zip_slip.zip": "zip-slip",
}


def test_every_broken_fixture_has_an_expectation():
    assert sorted(p.name for p in BROKEN) == sorted(EXPECTED)


def _messages_from(case: Case, path: Path) -> int:
    return case.db.execute(
        "SELECT COUNT(*) FROM messages m JOIN sources s ON s.id = m.source_id WHERE s.path = ?", (str(path),)
    ).fetchone()[0]


def _ingest(tmp_path: Path, paths: list[Path], copy: bool = False) -> tuple[object, list[dict]]:
    case = Case(tmp_path / "case", create=True)
    try:
        report = ingest(case, [str(p) for p in paths], copy_originals=copy)
        return report, case.exceptions(), _messages_from(case, VALID)
    finally:
        case.close()


def _names(row: dict, broken: Path) -> bool:
    """A row names the file by its path, or (for a zip's refused member) in its text."""
    return row["path"] == str(broken) or str(broken) in row["error"]


@pytest.mark.parametrize("broken", BROKEN, ids=lambda p: p.name)
def test_a_broken_file_is_an_exception_row_and_its_neighbour_still_goes_in(tmp_path, broken):
    report, rows, valid_messages = _ingest(tmp_path, [broken, VALID])
    mine = [row for row in rows if _names(row, broken)]
    assert mine, rows
    assert EXPECTED[broken.name] in mine[0]["error"], mine
    assert valid_messages == VALID_MESSAGES
    assert [row["locator"] for row in rows if row["path"] == str(VALID)] == VALID_ERRORS
    assert report.exceptions == len(rows) and report.exit_code == 3


@pytest.mark.parametrize("broken", BROKEN, ids=lambda p: p.name)
def test_no_adapter_crashes_on_a_broken_file(tmp_path, broken):
    _, rows, _ = _ingest(tmp_path, [broken, VALID])
    assert not any("please report this as a bug" in row["error"] for row in rows), rows


def test_the_whole_broken_folder_in_one_run(tmp_path):
    _, rows, valid_messages = _ingest(tmp_path, [FIXTURES / "broken", VALID], copy=True)
    for broken in BROKEN:
        assert any(_names(row, broken) for row in rows), broken.name
    assert valid_messages == VALID_MESSAGES
