"""Accounts live in the case; passwords are hashed, tokens shown once, every change audited."""

import json

import pytest
from click.testing import CliRunner

from discovery import audit, users
from discovery.case import Case
from discovery.cli import cli


@pytest.fixture
def case(tmp_path):
    opened = Case(tmp_path / "case", create=True)
    yield opened
    opened.close()


def test_add_and_authenticate_with_a_hashed_password(case):
    users.add(case, "alice", "investigator", "correct horse battery")
    stored = case.db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert "correct horse" not in stored
    assert users.authenticate(case, "alice", "correct horse battery").role == "investigator"
    assert users.authenticate(case, "alice", "wrong password!!") is None
    assert users.authenticate(case, "nobody", "correct horse battery") is None


def test_disabled_users_cannot_log_in_or_use_tokens(case):
    users.add(case, "bob", "auditor", "a long enough pw")
    token = users.new_token(case, "bob")
    assert users.user_for_token(case, token).name == "bob"
    users.set_disabled(case, "bob")
    assert users.authenticate(case, "bob", "a long enough pw") is None
    assert users.user_for_token(case, token) is None


def test_tokens_are_stored_only_as_hashes_and_replaced(case):
    users.add(case, "carol", "admin", "a long enough pw")
    first = users.new_token(case, "carol")
    second = users.new_token(case, "carol")
    assert users.user_for_token(case, first) is None and users.user_for_token(case, second).name == "carol"
    assert second not in case.db.execute("SELECT token_hash FROM users").fetchone()[0]


def test_bad_requests_are_refused(case):
    with pytest.raises(users.UserError, match="role"):
        users.add(case, "x", "superuser", "a long enough pw")
    with pytest.raises(users.UserError, match="at least"):
        users.add(case, "x", "admin", "short")
    users.add(case, "x", "admin", "a long enough pw")
    with pytest.raises(users.UserError, match="exists"):
        users.add(case, "x", "admin", "a long enough pw")


def test_cli_user_lifecycle_is_audited(case):
    folder = str(case.folder)
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "dave", "--role", "auditor", "--generate", "--case", folder])
    assert added.exit_code == 0
    password = added.output.split("password (shown once): ")[1].strip()
    assert users.authenticate(case, "dave", password) is not None
    piped = runner.invoke(cli, ["users", "add", "erin", "--role", "investigator", "--password-stdin", "--case",
                                folder], input="from standard input\n")
    assert piped.exit_code == 0 and users.authenticate(case, "erin", "from standard input")
    assert runner.invoke(cli, ["users", "disable", "dave", "--case", folder]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["users", "list", "--case", folder, "--json"]).output)
    assert [(u["name"], u["disabled"]) for u in listed] == [("dave", True), ("erin", False)]
    assert runner.invoke(cli, ["users", "disable", "nobody", "--case", folder]).exit_code == 2
    actions = [e["action"] for e in audit.entries(case)]
    assert actions == ["user_add", "user_add", "user_disable"]
    assert audit.verify(case).ok
