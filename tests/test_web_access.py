"""Every route × every role (and no login, and Bearer tokens): the outcome the one policy table says.

The walk reads ``app.url_map``, so a route added later is walked too, and fails here until its
blueprint module declares it in ``ROLES``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from discovery import users
from discovery.case import Case
from discovery.web.access import PUBLIC, PolicyError, build_policy, policy_of
from tests.conftest import WEB_USERS, login, make_app, with_csrf

ROLES = (None, "admin", "investigator", "auditor")
READ = ("admin", "auditor", "investigator")

# The policy, written out: a change to who may do what has to be made here too, on purpose.
EXPECTED = {
    "static": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": READ,
    "search.home": READ,
    "search.search": READ,
    "conversations.index": READ,
    "conversations.show": READ,
    "messages.show": READ,
    "settings.show": READ,
    "settings.update": READ,
    "exports.create": READ,
    "audit.index": ("auditor",),
    "review.tag_message": ("admin", "investigator"),
    "review.bulk_confirm": ("admin", "investigator"),
    "review.bulk_apply": ("admin", "investigator"),
    "review.sets": READ,
    "review.create_set": ("admin", "investigator"),
    "review.walk": READ,
    "review.review_position": ("admin", "investigator"),
    "review.add_note": ("admin", "investigator"),
    "review.edit_note": ("admin", "investigator"),
    "review.delete_note": ("admin", "investigator"),
    "review.tags": READ,
    "review.define_tag": ("admin",),
    "review.update_tag": ("admin",),
    "terms.report": READ,
    "terms.download": READ,
    "saved.index": READ,
    "saved.create": ("admin", "investigator"),
    "saved.run": READ,
    "saved.share": ("admin", "investigator"),
    "saved.delete": ("admin", "investigator"),
}


@pytest.fixture(scope="module")
def samples(client_as_module: Any) -> dict[str, str]:
    hit = client_as_module("auditor").get("/search.json?q=whitewash").get_json()["hits"][0]["message"]
    return {"conversation_id": hit["conversation_id"], "message_id": hit["id"], "filename": "app.css",
            "set_id": "1", "position": "1", "note_id": "999999",
            "saved_id": "999999"}


@pytest.fixture(scope="module")
def client_as_module(demo_logins: Any) -> Any:
    return demo_logins.client


@pytest.fixture(scope="module")
def tokens(demo_app: Any, demo_case_dir: Any) -> dict[str, str]:
    case = Case(demo_case_dir)
    try:
        return {role: users.new_token(case, name) for role, (name, _) in WEB_USERS.items()}
    finally:
        case.close()


def requests(app: Any, samples: dict[str, str]) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every route and method of APP, with sample values in the URL."""
    out = []
    for rule in app.url_map.iter_rules():
        names = [part.split(":")[-1] for part in re.findall(r"<([^>]+)>", rule.rule)]
        unknown = [name for name in names if name not in samples]
        assert not unknown, f"{rule.rule}: add sample values for {unknown} to this test"
        url = re.sub(r"<([^>]+)>", lambda match: samples[match.group(1).split(":")[-1]], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


def test_every_endpoint_is_in_the_policy(demo_app):
    policy = policy_of(demo_app)
    missing = sorted(set(demo_app.view_functions) - set(policy))
    assert not missing, f"declare these in the blueprint module's ROLES: {missing}"


def test_the_policy_is_the_documented_table(demo_app):
    assert {endpoint: rule if rule == PUBLIC else tuple(sorted(rule))
            for endpoint, rule in policy_of(demo_app).items()} == EXPECTED


def _send(client: Any, method: str, url: str, **extra: Any) -> Any:
    if method == "GET":
        return client.get(url, **extra)
    return client.open(url, method=method, **extra)


def _outcome(response: Any) -> str:
    """login (sent to log in), denied (403), or allowed (anything else: 200, 302 elsewhere, 400, 404...)."""
    location = response.headers.get("Location", "")
    if response.status_code == 401 or (response.status_code == 302 and "/login?" in location
                                       and "out=1" not in location) or location.endswith("/login"):
        return "login"
    if response.status_code == 403:
        return "denied"
    return "allowed"


def _expected(rule: Any, role: str | None) -> str:
    if rule == PUBLIC:
        return "allowed"
    if role is None:
        return "login"
    return "allowed" if role in rule else "denied"


def test_every_route_with_every_role_and_without_login(demo_app, demo_logins, samples):
    policy = policy_of(demo_app)
    seen = set()
    for endpoint, method, url in requests(demo_app, samples):
        rule = policy[endpoint]
        for role in ROLES:
            if endpoint == "auth.logout" and role is not None:
                client = demo_app.test_client()  # logging out revokes the session: use a fresh one
                login(client, *WEB_USERS[role])
            else:
                client = demo_logins.client(role)
            extra = {"data": with_csrf(client)} if method != "GET" else {}
            response = _send(client, method, url, **extra)
            response.close()
            got = _outcome(response)
            assert got == _expected(rule, role), (endpoint, method, url, role, response.status_code,
                                                  response.headers.get("Location"))
            if got == "denied":
                assert "may not use this page" in response.get_data(as_text=True)
            seen.add(endpoint)
    assert seen == set(demo_app.view_functions)


def test_every_route_with_bearer_tokens(demo_app, samples, tokens):
    policy = policy_of(demo_app)
    for endpoint, method, url in requests(demo_app, samples):
        rule = policy[endpoint]
        for role in ROLES:
            headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {"Accept": "application/json"}
            response = _send(demo_app.test_client(), method, url, headers=headers)  # no cookie, no CSRF token
            response.close()
            got = _outcome(response)
            assert got == _expected(rule, role), (endpoint, method, url, role, response.status_code)
            assert "Set-Cookie" not in response.headers or role is None, endpoint  # tokens never get a cookie


def test_json_twins_answer_401_as_json(anon_client):
    for url in ("/search.json?q=x", "/conversations.json", "/audit.json", "/settings.json"):
        response = anon_client.get(url)
        assert response.status_code == 401 and response.is_json, url
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "discovery users token" in response.get_json()["error"]


def test_pages_redirect_to_login_with_the_way_back(anon_client):
    response = anon_client.get("/search?q=whitewash&context=2")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/search?q%3Dwhitewash%26context%3D2"


def test_unknown_urls_reveal_nothing_before_login(anon_client, client):
    assert anon_client.get("/no/such/page").status_code == 302
    assert anon_client.get("/no/such/page.json").status_code == 401
    assert client.get("/no/such/page").status_code == 404


def test_a_route_nobody_declared_is_open_to_nobody(demo_case_dir):
    app = make_app(demo_case_dir)
    try:
        @app.get("/undeclared")
        def undeclared() -> str:
            return "secret"

        from tests.conftest import Logins

        logins = Logins(app)
        for role in READ:
            response = logins.client(role).get("/undeclared")
            assert response.status_code == 403 and "not open to any role" in response.get_data(as_text=True)
        assert logins.client(None).get("/undeclared").status_code == 302
    finally:
        app.extensions["discovery_cases"].close()


def test_a_policy_naming_what_does_not_exist_is_refused(demo_app):
    class Module:
        __name__ = "fake"
        ROLES = {"nope.missing": ("admin",)}

    class BadRole:
        __name__ = "bad"
        ROLES = {"search.search": ("superuser",)}

    class NoRoles:
        __name__ = "none"
        ROLES: dict[str, Any] = {}

    with pytest.raises(PolicyError, match="do not exist"):
        build_policy(demo_app, [Module])
    with pytest.raises(PolicyError, match="unknown role"):
        build_policy(demo_app, [BadRole])
    with pytest.raises(PolicyError, match="declares no ROLES"):
        build_policy(demo_app, [NoRoles])


def test_denials_are_audited(client_as, demo_case_dir):
    from discovery import audit

    response = client_as("investigator").get("/audit")
    assert response.status_code == 403
    case = Case(demo_case_dir)
    try:
        last = audit.entries(case, action="access_denied")[-1]
    finally:
        case.close()
    assert last["actor"] == WEB_USERS["investigator"][0] and last["outcome"] == "denied"
    assert last["details"]["endpoint"] == "audit.index" and last["address"] == "127.0.0.1"
