"""One error handler: clear 400s, 404s and 405s as HTML or JSON; a bug is a 500 page without a traceback."""

from __future__ import annotations

import pytest

from discovery.web.access import policy_of
from tests.conftest import Logins, make_app


@pytest.mark.parametrize("url", ["/nope", "/search/extra", "/m/", "/static/missing.css"])
def test_unknown_paths_are_404_pages(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "Not Found" in response.get_data(as_text=True)
    response.close()


def test_unknown_json_path_is_a_json_404(client):
    response = client.get("/nope.json")
    assert response.status_code == 404 and response.is_json and response.get_json()["error"]


def test_wrong_method_is_405(client):
    assert client.post("/search").status_code == 405
    assert client.delete("/settings.json").get_json()["error"]


def test_a_bug_is_a_plain_500(demo_case_dir):
    app = make_app(demo_case_dir)
    app.testing = False  # let the error handler answer instead of raising into the test

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    policy_of(app)["boom"] = ("investigator",)  # a route added by hand declares its roles like any other
    try:
        response = Logins(app).client("investigator").get("/boom", headers={"Accept": "application/json"})
        assert response.status_code == 500
        assert "secret internals" not in response.get_data(as_text=True)
        assert response.get_json() == {"error": "The server could not answer this request."}
    finally:
        app.extensions["discovery_cases"].close()


def test_json_twins_of_every_page(client):
    hit = client.get("/search.json?q=whitewash").get_json()["hits"][0]["message"]
    for url in ("/search.json?q=whitewash", "/search.json", "/conversations.json", "/settings.json",
                f"/c/{hit['conversation_id']}.json", f"/m/{hit['id']}.json"):
        response = client.get(url)
        assert response.status_code == 200 and response.is_json, url
        html = client.get(url.replace(".json", ""))
        assert html.status_code == 200 and html.mimetype == "text/html", url
