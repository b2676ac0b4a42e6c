"""The helpers that keep a results page cheap give exactly what the slower ways they replace gave:
url_for_each (url_for), time_tag (the ``when`` macro's markup), format_both, highlight, url_with,
the Jinja environment's dict lookups, and what :func:`render.kept` keeps between requests."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import g, render_template_string, url_for
from markupsafe import Markup, escape

from discovery.web import render, zones
from tests.conftest import make_app, private_copy

ODD = ["m0123456789abcdefabc", "a b", "a/b c", "100%", "x#y?z=1&w", "洗白", "a+b", "'\"<>", "", " ",
       "~-._!$&'()*+,;=:@"]
ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns",
         "Europe/London", "Pacific/Chatham"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, demo_case_dir: Path) -> Any:
    app = make_app(private_copy(demo_case_dir, tmp_path_factory.mktemp("helpers") / "case"))
    yield app
    app.extensions["discovery_cases"].close()


def test_url_for_each_is_url_for(app: Any) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    for value in ODD:
        for q in (None, "whitewash", 'a "b" & c#d'):
            calls.append(("conversations.show",
                          {"conversation_id": value, "at": value, "q": q, "_anchor": "msg-" + value}))
        calls += [("conversations.show", {"conversation_id": value}),
                  ("messages.show", {"message_id": value}),
                  ("review.tag_message", {"message_id": value}),
                  ("review.add_note", {"message_id": value}),
                  ("messages.show", {"message_id": value, "fmt": "json"}),  # picks a rule: url_for itself
                  ("review.edit_note", {"note_id": "7"})]  # an int converter: url_for itself
    for script_root in ("", "/under/here"):
        with app.test_request_context("/search?q=x", environ_base={"SCRIPT_NAME": script_root}):
            for endpoint, values in calls * 2:  # the second round uses the shapes the first made
                assert render.url_for_each(endpoint, **values) == url_for(endpoint, **values), (endpoint, values)
            assert any(g.url_shapes.values())  # (and some were cut, not all left to url_for)


def _when_macro(iso: str | None, seconds: bool = True) -> str:
    """The ``when`` macro as it was, before time_tag."""
    if not iso:
        return '<span class="muted">time unknown</span>'
    where = render.display_zone()
    return (f'<time datetime="{escape(iso)}" title="{escape(zones.format_utc(iso))}">'
            f"{escape(zones.format_local(iso, where, seconds))}</time>")


@pytest.mark.parametrize("zone_name", ["UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata"])
def test_time_tag_is_the_when_macro(app: Any, zone_name: str) -> None:
    times = ["2024-03-10T06:59:59.999Z", "2024-03-10T07:00:00Z", "2024-11-03T05:30:00.5Z", "2023-12-31T23:59:59Z",
             "1999-01-01T00:00:00Z", None, ""]
    with app.test_request_context("/search"):
        g.zone_name = zone_name
        for iso in times:
            for seconds in (True, False):
                tag = render.time_tag(iso, seconds)
                assert isinstance(tag, Markup)
                assert str(tag) == _when_macro(iso, seconds)
                macro = render_template_string('{% import "_macros.html" as ui %}{{ ui.when(iso, seconds) }}',
                                               iso=iso, seconds=seconds)
                assert macro == str(tag)


@pytest.mark.parametrize("zone_name", ZONES)
def test_format_both_is_format_utc_and_format_local(zone_name: str) -> None:
    rng = random.Random(zone_name)
    where = zones.zone(zone_name)
    assert where is not None
    for _ in range(1500):
        start = datetime(rng.choice([1, 999, 1000, 1970, 2007, 2024, 2038, 2100, 9998]), 1, 1, tzinfo=UTC)
        moment = start + timedelta(seconds=rng.randint(0, 364 * 86400),
                                   microseconds=rng.choice([0, 999, 1000, rng.randint(0, 999_999)]))
        iso = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if rng.random() < 0.3:
            iso = iso.replace(".000Z", "Z")
        for seconds in (True, False):
            try:
                expected = (zones.format_utc(iso), zones.format_local(iso, where, seconds))
            except (OverflowError, ValueError):
                continue  # out of datetime's range in that zone, either way
            assert zones.format_both(iso, where, seconds) == expected, (iso, seconds)


def _highlight_before(text: str | None, spans: Iterable[Sequence[int]] | None) -> Markup:
    """render.highlight as it was (Markup % per span)."""
    text = text or ""
    merged: list[list[int]] = []
    for start, end in sorted((max(0, int(s[0])), min(len(text), int(s[1]))) for s in spans or ()):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[Markup] = []
    last = 0
    for start, end in merged:
        parts.append(escape(text[last:start]))
        parts.append(Markup("<mark>%s</mark>") % text[start:end])
        last = end
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def test_highlight_as_before() -> None:
    rng = random.Random(3)
    alphabet = "ab <>&\"'洗白\n"
    for n in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) if n % 40 else None
        spans = [[rng.randint(-3, 35), rng.randint(-3, 35)] for _ in range(rng.randint(0, 5))] if n % 7 else None
        got = render.highlight(text, spans)
        assert isinstance(got, Markup)
        assert got == _highlight_before(text, spans), (text, spans)


def test_url_with_as_urlencode(app: Any) -> None:
    given = [("q", 'a "b" & 洗白'), ("from", "2024-01-01"), ("page", "2"), ("sender", "x+y z")]
    with app.test_request_context(f"/search.json?{urlencode(given)}"):
        for drop, changes in [((), {}), (("page",), {}), ((), {"page": 3}), ((), {"q": None, "new": "é&"}),
                              (("from", "to", "page"), {"sort": "time"}), ((), {"sender": ""})]:
            expected: dict[str, Any] = {k: v for k, v in given if k not in drop}
            for key, value in changes.items():
                if value is None or value == "":
                    expected.pop(key, None)
                else:
                    expected[key] = value
            assert render.url_with(drop, **changes) == "/search" + ("?" + urlencode(expected) if expected else "")


def test_templates_read_dict_fields_as_jinja_does(app: Any) -> None:
    record = {"text": "hello", "items": "a key named like a dict method"}
    with app.test_request_context("/"):
        assert render_template_string("{{ m.text }}|{{ m['items'] }}|{{ m.items is callable }}", m=record) == \
            "hello|a key named like a dict method|True"
        assert render_template_string("{{ m.missing is defined }}", m=record) == "False"
        with pytest.raises(Exception, match="missing"):
            render_template_string("{{ m.missing }}", m=record)  # StrictUndefined still refuses to print it


def test_kept_until_another_connection_writes(app: Any) -> None:
    from discovery.web import get_case

    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    with app.test_request_context("/"):
        assert render.kept(get_case(), "k", compute) == 1
    with app.test_request_context("/"):
        assert render.kept(get_case(), "k", compute) == 1  # another request, nothing written: kept
    other = sqlite3.connect(Path(app.config["CASE_FOLDER"]) / "case.db")
    with other:
        other.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('test_kept', 'x')")
    other.close()
    with app.test_request_context("/"):
        assert render.kept(get_case(), "k", compute) == 2  # an ingest (say) wrote: worked out again
