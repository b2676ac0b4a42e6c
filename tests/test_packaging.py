"""A built wheel ships the templates and static files, and the app finds them outside the checkout."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # pyproject's build requirements (setuptools, wheel) come from this venv when it has them; else pip fetches them.
    isolation = [] if importlib.util.find_spec("wheel") else ["--use-pep517"]
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)]
    command[5:5] = isolation or ["--no-build-isolation"]
    result = subprocess.run(command, cwd=build, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("discovery-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contains_templates_and_static_files(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").rglob("*.html"):
        assert f"discovery/templates/{template.relative_to(ROOT / 'templates').as_posix()}" in names
    assert "discovery/templates/base.html" in names
    assert "discovery/templates/static/app.css" in names and "discovery/templates/static/app.js" in names
    assert "discovery/web/__init__.py" in names and "discovery/facets.py" in names


def test_installed_app_renders_from_the_package(wheel: Path, tmp_path: Path, demo_case_dir: Path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent("""
        import sys
        import discovery.web as web
        from discovery.web import create_app, template_folder
        assert web.__file__.startswith(sys.argv[1]), web.__file__
        folder = template_folder()
        assert str(folder).startswith(sys.argv[1]), folder
        from discovery import users
        from discovery.case import Case
        case = Case(sys.argv[2])  # every page needs an account: an API token for this check
        if users.get(case, "packaging-check") is None:
            users.add(case, "packaging-check", "auditor", "packaging-check-password")
        token = users.new_token(case, "packaging-check")
        case.close()
        app = create_app(case=sys.argv[2], config={"TESTING": True})
        client = app.test_client()
        assert client.get("/login").status_code == 200
        page = client.get("/search?q=whitewash", headers={"Authorization": "Bearer " + token})
        assert page.status_code == 200, page.status_code
        assert "<mark>" in page.get_data(as_text=True)
        css = client.get("/static/app.css")
        assert css.status_code == 200 and b"--accent" in css.data
        css.close()
        with app.test_request_context("/"):
            from flask import render_template
            html = render_template("base.html")
        assert "<!doctype html>" in html
        app.extensions["discovery_cases"].close()
        print("ok")
    """)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run(
        [sys.executable, "-c", script, str(site), str(demo_case_dir)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
