"""`discovery serve`: waitress serving the real app."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

from discovery.cli import cli
from tests.conftest import WEB_USERS, free_port


def test_serve_help_has_an_example():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "discovery serve --case" in result.output
    assert "--host" in result.output and "--port" in result.output


def test_serve_refuses_a_folder_that_is_not_a_case(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--case", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a case folder" in result.output


def test_serve_answers_with_waitress(demo_app, demo_case_dir, tmp_path):
    from discovery import users
    from discovery.case import Case

    case = Case(demo_case_dir)
    try:
        token = users.new_token(case, WEB_USERS["auditor"][0])
    finally:
        case.close()
    port = free_port()
    log = tmp_path / "serve.log"  # a file, not a pipe: a server that logs a lot must not block on a full pipe
    with open(log, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "discovery", "serve", "--case", str(demo_case_dir), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=stderr, text=True,
        )
    try:
        deadline = time.monotonic() + 30
        url = f"http://127.0.0.1:{port}/search.json?q=whitewash&context=1"
        while True:
            try:
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(request, timeout=20) as response:
                    data = json.loads(response.read())
                    server = response.headers["Server"]
                break
            except urllib.error.HTTPError as error:
                error.close()
                raise AssertionError(f"HTTP {error.code}; server log:\n{log.read_text()}") from None
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert data["total"] == 4
        assert server == "discovery"  # waitress's ident, not Werkzeug's debug server
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token, no cookie: nothing
            urllib.request.urlopen(url, timeout=20)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    output = log.read_text(encoding="utf-8")
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
