"""The CLI is a thin shell: exit codes, JSON contracts and help texts are what scripts rely on."""

import json

import pytest
from click.testing import CliRunner

from discovery.cli import cli
from tests.lark_factory import message, write_directory, write_jsonl


@pytest.fixture
def export(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    write_directory(folder, {"oc_test": "Audit prep"}, {"ou_alice": "Alice Chen"})
    write_jsonl(folder / "messages.jsonl", [message(1, "hello"), message(2, "whitewash it"), message(3, "bye")])
    return folder


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def test_ingest_exits_0_when_everything_went_in_and_search_json_is_the_contract(tmp_path, export):
    case = tmp_path / "case"
    result = run("ingest", export, "--case", case, "--custodian", "Alice Chen")
    assert result.exit_code == 0, result.output
    assert "3 messages added" in result.output
    found = run("search", "whitewash", "--case", case, "--context", "1", "--json")
    data = json.loads(found.output)
    assert data["query"] == "whitewash" and data["total"] == 1
    assert [m["text"] for m in data["hits"][0]["context"]] == ["hello", "whitewash it", "bye"]
    assert [m["hit"] for m in data["hits"][0]["context"]] == [False, True, False]


def test_case_defaults_from_the_environment(tmp_path, export):
    env = {"DISCOVERY_CASE": str(tmp_path / "envcase")}
    assert run("ingest", export, env=env).exit_code == 0
    stats = json.loads(run("stats", "--json", env=env).output)
    assert {k: stats[k] for k in ("messages", "conversations", "participants", "sources", "exceptions")} == {
        "messages": 3, "conversations": 1, "participants": 1, "sources": 3, "exceptions": 0}


def test_ingest_exits_3_when_some_records_failed_and_lists_them(tmp_path, export):
    write_jsonl(export / "bad.jsonl", ["not json at all", message(9, "fine")])
    case = tmp_path / "case"
    result = run("ingest", export, "--case", case)
    assert result.exit_code == 3
    assert "bad.jsonl at line 1" in result.output
    rows = json.loads(run("exceptions", "--case", case, "--json").output)
    assert len(rows) == 1 and rows[0]["locator"] == "line 1" and rows[0]["path"].endswith("bad.jsonl")


def test_usage_errors_exit_2(tmp_path, export):
    assert run("ingest", tmp_path / "missing", "--case", tmp_path / "c").exit_code == 2
    assert run("ingest", export, "--case", tmp_path / "c", "--format", "nope").exit_code == 2
    assert run("search", "x", "--case", tmp_path / "not-a-case").exit_code == 2


def test_malformed_query_exits_2_with_a_caret_under_the_position(tmp_path, export):
    case = tmp_path / "case"
    run("ingest", export, "--case", case)
    result = CliRunner().invoke(cli, ["search", "(whitewash AND", "--case", str(case)])
    assert result.exit_code == 2
    assert "^" in result.output and "Traceback" not in result.output


def test_show_prints_provenance(tmp_path, export):
    case = tmp_path / "case"
    run("ingest", export, "--case", case)
    hit = json.loads(run("search", "whitewash", "--case", case, "--json").output)["hits"][0]["message"]
    shown = run("show", hit["id"], "--case", case, "--context", "0")
    assert hit["source"]["sha256"] in shown.output and "line 2" in shown.output
    assert json.loads(run("show", hit["id"], "--case", case, "--json").output)["message"]["id"] == hit["id"]
    assert run("show", "nope", "--case", case).exit_code == 2


def walk(group, prefix=()):
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from walk(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, _ in walk(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"`discovery {' '.join(path)} --help` has no example"
