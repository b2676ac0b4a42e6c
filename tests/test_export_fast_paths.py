"""The export's fast paths write exactly what the plain versions they replace would.

A 200,000-message export (``discovery bench``) runs each of these per message or per cell, so each
was made cheaper; these tests hold every one to its reference: ``case.message_record``, the csv
module, Jinja's autoescape, ``Message.as_bytes`` and the date arithmetic of ``local_iso``.
"""

from __future__ import annotations

import csv
import io
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import jinja2
import pytest

from discovery.export import rsmf, slices
from discovery.export.csv_out import csv_line
from discovery.export.html import message_html
from discovery.export.select import Selection
from tests.test_export_fixtures import FORMULAS, HOSTILE, build_case

HOSTILE_CELLS = ["", "plain", "a,b", 'say "hi"', "line\nbreak", "cr\rcr", "crlf\r\n", "\x00", "\x14\xfe\xae",
                 " spaced ", "'quoted'", "洗白", "\t", '"', ",", "\u2028", *FORMULAS, HOSTILE]

# The template's former ``messages`` macro, which message_html replaced (same environment options).
MESSAGES_MACRO = """{% macro messages(batch) -%}
{%- for m in batch %}
<div class="msg {{ m['role'] }}" id="{{ m['bates'] }}">
<div class="line1"><span class="role">{{ m['role'] }}</span> <b>{{ m['bates'] }}</b> · {{ m['time'] }} · \
<span class="who">{{ m['sender'] }}</span>
{%- for flag in m['flags'] %} <span class="flag">[{{ flag }}]</span>{% endfor %}</div>
<div class="text">{% for text, marked in m['segments'] %}{% if marked %}<mark>{{ text }}</mark>\
{% else %}{{ text }}{% endif %}{% endfor %}</div>
{%- if m['tags'] or m['notes'] %}
<div class="review">
{%- if m['tags'] %}
<div class="tags">{% for tag in m['tags'] %}<span class="tag">{{ tag.name }} <span class="by">· {{ tag.by }}\
</span></span>{% endfor %}</div>
{%- endif %}
{%- for note in m['notes'] %}
<div class="note"><div class="note-by">Note by {{ note.heading }}</div><div class="note-text">{{ note.text }}\
</div></div>
{%- endfor %}
</div>
{%- endif %}
{%- for line in m['extra'] %}
<div class="extra">{{ line }}</div>
{%- endfor %}
<div class="prov">{{ m['provenance'] }}</div>
</div>
{%- endfor %}
{%- endmacro %}"""


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    case = build_case(tmp_path_factory.mktemp("case"))
    yield case
    case.close()


def test_selection_records_are_the_message_model(case):
    with Selection.create(case, None, 0) as selection:
        records = list(selection.messages())
    expected = case.messages_by_id([r["id"] for r in records])
    assert records
    for record in records:
        tags, notes = record.pop("tags"), record.pop("notes")
        assert (tags, notes) == ([], [])
        hit = record.pop("hit")
        assert hit is True
        assert list(record.items()) == list(expected[record["id"]].items())  # same keys, order and values


def test_csv_line_is_what_the_csv_module_writes():
    for cells in (HOSTILE_CELLS, ["", ""], [HOSTILE, "", "x"]):
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerow(cells)
        assert csv_line(cells) == out.getvalue()


def _view(text: str, **extra) -> dict:
    view = {"bates": "DISC0000001", "role": "hit", "time": "2024-09-10 12:00:00.000 +08:00", "sender": text,
            "flags": [], "segments": [(text, False)], "extra": [], "provenance": text, "tags": [], "notes": []}
    return {**view, **extra}


def test_message_html_is_what_the_template_wrote():
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    macro = env.from_string(MESSAGES_MACRO).module.messages
    views = [_view(text) for text in HOSTILE_CELLS]
    views.append(_view(HOSTILE, role="context", flags=["edited 2024-09-10 <b>", "recalled/deleted"],
                       segments=[("a <b>", False), ("whitewash", True), ("'&\"", False)],
                       extra=["in reply to <x>", "attachment: a&b.pdf"],
                       tags=[{"name": "hot <1>", "by": "alice, 2024"}, {"name": "x'y", "by": '"b"'}],
                       notes=[{"heading": "alice <a>", "text": "=1+1\n<script>"}]))
    views.append(_view("only notes", notes=[{"heading": "h", "text": "t"}]))
    assert "".join(message_html(v) for v in views) == str(macro(views))


def test_eml_generator_writes_what_as_bytes_writes():
    message = MIMEMultipart("mixed", boundary="=_b")
    message["Subject"] = rsmf._header("洗白 " * 40)
    message.attach(MIMEText("line one\nline two\r\nline three\r" + "洗白 " * 500, "plain", "utf-8"))
    message.attach(MIMEText("no newline at the end", "plain", "us-ascii"))
    message.preamble = "preamble\r\nwith CRLF"
    assert rsmf._as_bytes(message) == message.as_bytes(policy=rsmf._EML_POLICY)


def test_local_iso_fast_path_matches_the_arithmetic():
    utc = slices.zone("UTC")

    def slow(value: str) -> str:
        moment = slices.parse_utc(value).astimezone(utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + slices._offset(moment)

    for value in ("2024-09-10T04:00:00.000Z", "1999-12-31T23:59:59.999Z", "1000-01-01T00:00:00.001Z",
                  "2024-02-29T12:34:56.789Z", "2024-09-10T04:00:00.123456Z", "2024-09-10T04:00:00+00:00"):
        assert slices.local_iso(value, utc) == slow(value)


def test_bundle_zip_bytes_are_a_plain_zipfile_write(tmp_path):
    import os
    import zipfile

    from discovery.export import bundle, manifest

    staging = tmp_path / "staging"
    (staging / "rsmf").mkdir(parents=True)
    files = {"empty.txt": b"", "text.txt": "洗白 whitewash\n".encode() * 200_000,
             "rsmf/random.bin": os.urandom(3 << 20)}
    for name, data in files.items():
        (staging / name).write_bytes(data)
    entries, _ = bundle.write_bundle(staging, {"x": 1}, tmp_path / "fast.zip")
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        for name in sorted(files):
            with archive.open(rsmf.zip_info(name), "w") as dest:
                dest.write(files[name])
        listed = [e for e in entries if e["path"] in files]
        archive.writestr(rsmf.zip_info(manifest.MANIFEST), manifest.dumps({"x": 1, "files": listed}).encode())
        archive.writestr(rsmf.zip_info(manifest.SUMS), manifest.sums_text(entries[:-1]).encode())
    assert (tmp_path / "fast.zip").read_bytes() == (tmp_path / "plain.zip").read_bytes()
    assert sorted(p.name for p in staging.iterdir()) == ["empty.txt", "rsmf", "text.txt"]  # no scratch left


def test_base64_parts_are_what_the_email_package_makes():
    from email.mime.application import MIMEApplication

    for text in ("", "a", "ab", "abc", "洗白" * 1000, "line\n" * 777, "x" * 57, "x" * 58, "\r\n\x00é" * 99):
        assert rsmf._text_part(text).as_bytes() == MIMEText(text, "plain", "utf-8").as_bytes()
        data = text.encode("utf-8")
        ours = MIMEApplication(data, "zip", _encoder=rsmf._encode_base64)
        assert ours.as_bytes() == MIMEApplication(data, "zip").as_bytes()


def test_worker_process_writes_the_same_bundle(case, tmp_path, monkeypatch):
    import zipfile

    from discovery.export import pipeline
    from tests.test_export_fixtures import export

    options = {"context": 2, "slice": "24h", "tz": "Asia/Shanghai", "terms": ["whitewash"]}
    here = export(case, tmp_path / "here.zip", **options)
    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 0)
    monkeypatch.setattr(pipeline, "IN_FLIGHT", 1)
    worker = export(case, tmp_path / "worker.zip", **options)
    assert here.counts == worker.counts and here.counts["documents"] > 2
    with zipfile.ZipFile(tmp_path / "here.zip") as a, zipfile.ZipFile(tmp_path / "worker.zip") as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if name not in ("manifest.json", "SHA256SUMS"):  # they carry the creation time and bundle id
                assert a.read(name) == b.read(name), name


def _broken_worker(doc, directory):
    raise RuntimeError("the worker broke")


def test_worker_failure_fails_the_export_cleanly(case, tmp_path, monkeypatch):
    from discovery.export import pipeline
    from tests.test_export_fixtures import export

    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 0)
    monkeypatch.setattr(pipeline, "_write_in_worker", _broken_worker)
    with pytest.raises(RuntimeError, match="the worker broke"):
        export(case, tmp_path / "out.zip")
    assert list(tmp_path.iterdir()) == []  # no bundle, no partial file, no staging folder


def test_an_export_on_a_server_thread_never_forks(case, tmp_path, monkeypatch):
    """Web exports run on waitress's threads: forking there could leave the child on another thread's lock."""
    import threading

    from discovery.export import pipeline
    from tests.test_export_fixtures import export

    monkeypatch.setattr(pipeline, "PARALLEL_FROM", 0)
    monkeypatch.setattr(pipeline, "_write_in_worker", _broken_worker)  # used only if a worker were forked
    done: dict[str, object] = {}

    def run() -> None:
        done["report"] = export(case, tmp_path / "thread.zip")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert done["report"].counts["messages"] > 0 and (tmp_path / "thread.zip").exists()
