"""The export button: POST + CSRF, the bundle streamed as a download, audited, its audit entry inside it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from discovery import audit, users
from discovery.case import Case
from discovery.export.verify import verify_bundle
from tests.conftest import WEB_USERS, Logins, with_csrf

INVESTIGATOR = WEB_USERS["investigator"]


def case_entries(app: Any, **filters: Any) -> list[dict[str, Any]]:
    case = Case(Path(app.config["CASE_FOLDER"]))
    try:
        return audit.entries(case, **filters)
    finally:
        case.close()


def test_the_search_page_has_the_export_button(client):
    html = client.get("/search?q=whitewash&sender=Mark%20Ellison&context=2").get_data(as_text=True)
    form = html[html.index('<form class="export-form"'):]
    form = form[:form.index("</form>")]
    assert 'method="post" action="/export"' in form and 'name="csrf_token"' in form
    assert '<input type="hidden" name="q" value="whitewash">' in form
    assert '<input type="hidden" name="sender" value="Mark Ellison">' in form
    assert '<input type="hidden" name="context" value="2">' in form
    assert "Export 2 hits with context (zip)" in form
    assert "export-form" not in client.get("/search?q=nosuchwordanywhere").get_data(as_text=True)


def test_export_downloads_a_verified_bundle_with_its_own_audit_entry(private_app, tmp_path):
    client = Logins(private_app).client("investigator")
    expected = client.get("/search.json?q=whitewash&sender=Mark%20Ellison").get_json()["total"]
    response = client.post("/export", data=with_csrf(client, q="whitewash", sender="Mark Ellison", context="1",
                                                     bates_prefix="ACME", bates_start="100", slice="24h"))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data()
    response.close()
    assert response.mimetype == "application/zip"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".zip" in disposition
    assert response.headers["Cache-Control"] == "no-store"
    assert hashlib.sha256(body).hexdigest() == response.headers["X-Bundle-SHA256"]
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(body)
    verdict = verify_bundle(bundle, expect_fingerprint=response.headers["X-Bundle-Fingerprint"])
    assert verdict.ok, verdict.text()
    with zipfile.ZipFile(bundle) as archive:
        custody = json.loads(archive.read("chain_of_custody.json"))
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["counts"]["hits"] == expected
    assert manifest["bates"]["first"].startswith("ACME") and manifest["options"]["slice"] == "24h"
    assert manifest["created_by"] == f"{INVESTIGATOR[0]} (web, investigator)"
    [inside] = custody["audit"]
    assert inside["action"] == "export" and inside["outcome"] == "started" and inside["actor"] == INVESTIGATOR[0]
    assert audit.entry_hash(inside) == inside["hash"]  # checkable from the bundle alone
    started, done = case_entries(private_app, action="export")[-2:]
    assert started["hash"] == inside["hash"] and started["seq"] == inside["seq"]
    assert json.loads(inside["details"])["query"] == "whitewash"
    assert done["outcome"] == "ok" and done["details"]["zip_sha256"] == response.headers["X-Bundle-SHA256"]
    assert done["details"]["fingerprint"] == response.headers["X-Bundle-Fingerprint"]
    assert done["details"]["filters"] == {"sender": "Mark Ellison"} and done["details"]["started_seq"] == started["seq"]
    assert not list(Path(private_app.config.get("EXPORT_TMP_DIR") or "/tmp").glob("discovery-web-export-*/bundle.zip"))


def test_export_staging_goes_where_configured_and_is_removed(private_app, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    private_app.config["EXPORT_TMP_DIR"] = str(staging)
    client = Logins(private_app).client("auditor")
    response = client.post("/export", data=with_csrf(client, q="whitewash"))
    assert response.status_code == 200 and list(staging.iterdir())  # staged there while being sent
    response.close()
    assert list(staging.iterdir()) == []


def test_export_with_a_bearer_token_needs_no_csrf(private_app):
    case = Case(Path(private_app.config["CASE_FOLDER"]))
    try:
        token = users.new_token(case, WEB_USERS["auditor"][0])
    finally:
        case.close()
    response = private_app.test_client().post("/export", data={"q": "whitewash"},
                                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_data()[:2] == b"PK"
    response.close()
    assert "Set-Cookie" not in response.headers
    assert case_entries(private_app, action="export")[-1]["details"]["via"] == "web-token"


def test_export_refusals(private_app):
    client = Logins(private_app).client("investigator")
    assert client.post("/export", data={"q": "whitewash"}).status_code == 400  # no CSRF token
    empty = client.post("/export", data=with_csrf(client, q=""),
                        headers={"Accept": "application/json"})
    assert empty.status_code == 400 and empty.get_json()["param"] == "q"
    bad = client.post("/export", data=with_csrf(client, q="whitewash (refund"), headers={"Accept": "application/json"})
    assert bad.status_code == 400 and bad.get_json()["position"] is not None
    assert case_entries(private_app, action="export")[-1]["outcome"] == "error"
    prefix = client.post("/export", data=with_csrf(client, q="whitewash", bates_prefix="A B"),
                         headers={"Accept": "application/json"})
    assert prefix.status_code == 400 and prefix.get_json()["param"] == "bates_prefix"
    sliced = client.post("/export", data=with_csrf(client, q="whitewash", slice="6h"),
                         headers={"Accept": "application/json"})
    assert sliced.status_code == 400 and sliced.get_json()["param"] == "slice"


def test_export_form_escapes_what_the_user_typed(client):
    from urllib.parse import quote

    from tests.conftest import XSS
    from tests.test_web_security import live_markup

    query = f'whitewash OR "{XSS["script"]}"'
    html = client.get(f"/search?q={quote(query)}&participant={quote(XSS['img'])}").get_data(as_text=True)
    assert live_markup(html) == []
    html = client.get(f"/search?q={quote(query)}").get_data(as_text=True)
    form = html[html.index('<form class="export-form"'):]
    form = form[:form.index("</form>")]
    assert live_markup(form) == [] and "&#34;&lt;script&gt;window.__xss=1" in form
