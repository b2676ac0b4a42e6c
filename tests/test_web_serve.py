"""`discovery serve`: waitress serving the real app."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from discovery.cli import cli
from tests.conftest import free_port


def test_serve_help_has_an_example():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "discovery serve --case" in result.output
    assert "--host" in result.output and "--port" in result.output


def test_serve_refuses_a_folder_that_is_not_a_case(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--case", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a case folder" in result.output


def test_serve_answers_with_waitress(demo_case_dir):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "discovery", "serve", "--case", str(demo_case_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/search.json?q=whitewash&context=1") as response:
                    data = json.loads(response.read())
                    server = response.headers["Server"]
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert data["total"] == 4
        assert server == "discovery"  # waitress's ident, not Werkzeug's debug server
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert f"http://127.0.0.1:{port}/" in stderr
