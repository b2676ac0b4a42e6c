"""Display time zone per session; the case's session key; every time says its zone."""

from __future__ import annotations

import re
import stat

import pytest

from tests.conftest import Logins, make_app, with_csrf


def test_default_zone_is_utc_and_times_say_so(client):
    assert client.get("/settings.json").get_json() == {"timezone": "UTC"}
    html = client.get("/search?q=whitewash").get_data(as_text=True)
    assert re.search(r'<time datetime="2024-09-10T04:02:11\.\d{3}Z" title="2024-09-10 04:02:11\.\d{3} UTC">'
                     r"2024-09-10 04:02:11 UTC</time>", html)


def test_zone_setting_changes_display_and_keeps_utc_on_hover(client):
    response = client.post("/settings", data=with_csrf(client, timezone="Asia/Shanghai", next="/search?q=whitewash"))
    assert response.status_code == 302 and response.headers["Location"] == "/search?q=whitewash"
    html = client.get("/search?q=whitewash").get_data(as_text=True)
    assert re.search(r'title="2024-09-10 04:02:11\.\d{3} UTC">2024-09-10 12:02:11 CST</time>', html)
    assert "Times in <strong>Asia/Shanghai</strong>" in html
    assert client.get("/settings.json").get_json() == {"timezone": "Asia/Shanghai"}


def test_zone_is_per_session(client_as):
    one, two = client_as("investigator"), client_as("auditor")
    one.post("/settings", data=with_csrf(one, timezone="Europe/Berlin"))
    assert one.get("/settings.json").get_json()["timezone"] == "Europe/Berlin"
    assert two.get("/settings.json").get_json()["timezone"] == "UTC"


def test_json_settings_post(client):
    response = client.post("/settings.json", data=with_csrf(client, timezone="America/New_York"))
    assert response.get_json() == {"timezone": "America/New_York"}


@pytest.mark.parametrize("zone", ["", "Mars/Olympus", "EST5EDT,M3.2.0,M11.1.0", "../../etc/passwd", "x" * 300])
def test_unknown_zone_is_a_400(client, zone):
    response = client.post("/settings.json", data=with_csrf(client, timezone=zone))
    assert response.status_code == 400 and response.get_json()["param"] == "timezone"
    assert client.post("/settings", data=with_csrf(client, timezone=zone)).status_code == 400


def test_redirect_after_saving_stays_on_this_site(client):
    response = client.post("/settings", data=with_csrf(client, timezone="UTC", next="//evil.example/x"))
    assert response.headers["Location"].startswith("/settings")
    response = client.post("/settings", data=with_csrf(client, timezone="UTC", next="https://evil.example/"))
    assert response.headers["Location"].startswith("/settings")


def test_settings_page_lists_zones(client):
    html = client.get("/settings").get_data(as_text=True)
    assert '<label for="timezone">' in html and "<option>Asia/Shanghai</option>" in html


def test_case_default_zone(tmp_path, demo_case_dir):
    app = make_app(demo_case_dir, DEFAULT_TIMEZONE="Asia/Tokyo")
    try:
        assert Logins(app).client("auditor").get("/settings.json").get_json()["timezone"] == "Asia/Tokyo"
    finally:
        app.extensions["discovery_cases"].close()


def test_secret_key_is_made_once_and_private(demo_case_dir):
    path = demo_case_dir / "secret_key"
    assert path.exists()  # the session app fixture made it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    app = make_app(demo_case_dir)
    try:
        assert app.config["SECRET_KEY"] == key
    finally:
        app.extensions["discovery_cases"].close()
    override = make_app(demo_case_dir, SECRET_KEY="given")
    try:
        assert override.config["SECRET_KEY"] == "given"
    finally:
        override.extensions["discovery_cases"].close()
