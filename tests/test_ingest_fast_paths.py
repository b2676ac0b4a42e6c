"""The ingest fast paths give exactly what the plain paths give (each is checked against a reference).

Ingest was made faster by caches and shortcuts in sniffing, by decoding small Lark pages whole, by
skipping the first pass over files that cannot teach it names, by parsing Lark's second pass in
worker processes, by building index documents without reading messages back, and by building the
messages table's secondary indexes once at the end of a first ingest. None of that may change a
byte of what is stored or indexed: these tests compare each with the way it was done before.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import sys
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from discovery import analysis
from discovery.case import DEFERRABLE_INDEXES, Case
from discovery.engine import IndexDoc
from discovery.ingest import index_docs, ingest
from discovery.model import SourceError, iso_utc
from discovery.sources import _discord_csv, _whatsapp_text, adapters, detect, encoding, lark, rsmf
from discovery.sources._jsonio import sniff_loads
from discovery.sources.files import SourceFile, expand

ROOT = Path(__file__).resolve().parent.parent
LARK = ROOT / "fixtures" / "lark"


def every_fixture_file() -> list[SourceFile]:
    files = []
    for folder in (ROOT / "fixtures", ROOT / "tests" / "data"):
        if folder.exists():
            files += [f for f in expand(str(folder)) if isinstance(f, SourceFile)]
    return files


# ---------------------------------------------------------------------------- sniffing


def reference_detect(file: SourceFile):
    best, best_score = None, 0
    for adapter in adapters():
        score = adapter.sniff(file)
        if score > best_score:
            best, best_score = adapter, score
    return (None, best_score) if best_score < 10 else (best, best_score)


def test_detect_answers_as_asking_every_adapter_in_order():
    files = every_fixture_file()
    assert len(files) > 50
    for file in files:
        got, want = detect(file), reference_detect(file)
        assert (got[0] and got[0].name, got[1]) == (want[0] and want[0].name, want[1]), file.display


def test_adapters_are_found_once_and_handed_out_as_fresh_lists():
    first, second = adapters(), adapters()
    assert first == second and first is not second
    assert [a.name for a in first] == sorted(a.name for a in first) or len(first) > 1


def reference_utf16(sample: bytes):
    units = len(sample) // 2
    if units < 2:
        return None
    even = sum(1 for i in range(0, units * 2, 2) if sample[i] == 0)
    odd = sum(1 for i in range(1, units * 2, 2) if sample[i] == 0)
    if odd >= units * 0.3 and even <= units * 0.05:
        return "utf-16-le"
    if even >= units * 0.3 and odd <= units * 0.05:
        return "utf-16-be"
    return None


def test_utf16_by_nuls_counts_as_before():
    rng = random.Random(5)
    samples = [b"", b"a", b"a\x00", "hello world".encode("utf-16-le"), "hello world".encode("utf-16-be")]
    samples += [bytes(rng.choice([0, 0, 65, 66, 200]) for _ in range(rng.randint(0, 41))) for _ in range(3000)]
    for sample in samples:
        assert encoding._utf16_by_nuls(sample) == reference_utf16(sample), sample


def test_rsmf_header_checks_match_the_regexes():
    rng = random.Random(7)
    alphabet = ["\r", "\n", "\r\n", " ", "x", "X-RSMF-Version:", "x-rsmf-version:", "X-RSMF-VERSION :", "a:b", "\u212a"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        block = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
        assert rsmf._header_block(text) == block, repr(text)
        assert rsmf._has_version_header(block) == bool(re.search(r"(?im)^X-RSMF-Version:", block)), repr(block)


def reference_match_header(line: str) -> bool:
    line = _whatsapp_text.clean(line).lstrip()
    return any(pattern.match(line) for pattern in _whatsapp_text._HEADERS.values())


def test_whatsapp_header_check_on_long_lines_matches_the_full_check():
    rng = random.Random(11)
    starts = ["", " ", "\u200e", "\u202f", "\u200e" * 300, " " * 300, "[", "x", "\u0663", "12/24/19, 11:23 - ",
              "[31/12/2022 11:40:26] ", "{\"a\": 1"]
    for _ in range(3000):
        line = rng.choice(starts) + rng.choice(starts) + "y" * rng.choice([0, 10, 260, 600])
        assert _whatsapp_text.match_header(line) == reference_match_header(line), repr(line[:40])


def test_discord_csv_header_check():
    header = ",".join(_discord_csv.HEADER)
    quoted = ",".join(f'"{name}"' for name in _discord_csv.HEADER)
    for text, expected in [(header + "\n1,2", True), (quoted + "\r\nx", True), ("\ufeff" + quoted, True),
                           (header + "x", False), ('"' * 50 + header, True), ("{" + "a" * 5000, False), ("", False)]:
        assert _discord_csv.is_dce_csv(text) is expected, text[:30]


def test_sniff_loads_is_json_loads():
    for line in ['{"a": 1}', '{"a": 1}', "[1, 2", "[1, 2", "null", "{}"]:
        try:
            expected = json.loads(line)
        except ValueError as error:
            with pytest.raises(type(error)):
                sniff_loads(line)
        else:
            assert sniff_loads(line) == expected


# ---------------------------------------------------------------------------- Lark: reading and parsing


def outcome(items) -> list:
    """Parsed items in a comparable form (messages whole, errors by text, locator and raw)."""
    out = []
    for file, item in items:
        if isinstance(item, SourceError):
            out.append((file.display, "error", str(item), item.locator, item.raw))
        else:
            out.append((file.display, "message", item.to_dict()))
    return out


def records(file: SourceFile) -> list:
    return [(item.obj, item.locator, item.envelope, item.raw) if isinstance(item, lark._Record)
            else ("error", str(item), item.locator, item.raw) for item in lark._read(file)]


def tricky_pages(folder: Path) -> list[Path]:
    """Documents where decoding a page whole could differ from streaming it."""
    page = json.loads((LARK / "messages_oc_63608005d31756c05765d230523d14c5_page1.json").read_text())
    text = json.dumps(page, ensure_ascii=False)
    folder.mkdir(parents=True, exist_ok=True)
    cases = {
        "plain.json": text,
        "bom.json": "\ufeff" + text,
        "duplicate_data.json": text[:-1] + ', "data": {"items": [{"message_id": "om_x", "msg_type": "text"}]}}',
        "lone_surrogate.json": text.replace('"msg": "', '"msg": "\\ud800', 1),
        "nan.json": text.replace('"code": 0', '"code": NaN', 1),
        "truncated.json": text[: len(text) // 2],
        "trailing.json": text + " {}",
        "array.json": json.dumps(page["data"]["items"], ensure_ascii=False),
        "escaped_keys.json": text.replace('"mentions"', '"mentio\\u006es"'),
        "not_utf8.json": None,
    }
    paths = []
    for name, content in cases.items():
        path = folder / name
        if content is None:
            path.write_bytes(text.encode("utf-8").replace("证".encode(), b"\xff", 1) if "证" in text
                             else text.encode("utf-8")[:-2] + b"\xff}")
        else:
            path.write_text(content, encoding="utf-8")
        paths.append(path)
    return paths


def _parse_serially(monkeypatch) -> None:
    """The Lark adapter's second pass in this process, whatever the size of the files."""
    monkeypatch.setattr(lark, "PARALLEL_MIN_FILES", 10**9)


def _parse_in_parallel(monkeypatch, files: list[SourceFile], chunk: int) -> None:
    """The Lark adapter's second pass in worker processes, CHUNK files a run (skips where it cannot fork)."""
    monkeypatch.setattr(lark, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(lark, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(lark, "PARALLEL_CHUNK", chunk)
    if not lark._parallel(files):
        pytest.skip("needs two CPUs and fork")


def lark_source_files(paths) -> list[SourceFile]:
    files = []
    for path in paths:
        files += [f for f in expand(str(path)) if isinstance(f, SourceFile)]
    return files


def test_pages_decoded_whole_give_the_streamed_records(tmp_path, monkeypatch):
    files = lark_source_files([*sorted(LARK.iterdir()), *tricky_pages(tmp_path / "tricky")])
    whole = {file.display: records(file) for file in files}
    monkeypatch.setattr(lark, "WHOLE_JSON_LIMIT", -1)  # stream everything, as before
    for file in files:
        assert records(file) == whole[file.display], file.display


def test_skipping_files_that_teach_nothing_learns_the_same(tmp_path, monkeypatch):
    quiet = tmp_path / "quiet.json"  # a page as the bench writes them: nothing in it names anyone
    items = [{"message_id": f"om_q{n}", "msg_type": "text", "create_time": "1700000000000", "chat_id": "oc_q",
              "sender": {"id": "ou_6ef2bf51f656c9ac243f5954a6f2a00b", "id_type": "open_id", "sender_type": "user"},
              "body": {"content": json.dumps({"text": f"hello {n}"})}} for n in range(3)]
    quiet.write_text(json.dumps({"code": 0, "data": {"items": items}}))
    files = lark_source_files([*sorted(LARK.iterdir()), *tricky_pages(tmp_path / "tricky"), quiet])
    skipped = [file.name for file in files if lark._teaches_nothing(file)]
    assert "quiet.json" in skipped  # ("open_id" there is a value, not a key)
    fast = outcome(lark.ADAPTER.parse(files))
    monkeypatch.setattr(lark, "_teaches_nothing", lambda file: False)
    assert outcome(lark.ADAPTER.parse(files)) == fast


@pytest.mark.parametrize("zipped", [False, True])
def test_second_pass_in_worker_processes_yields_the_same_in_the_same_order(tmp_path, monkeypatch, zipped):
    paths = [*sorted(LARK.iterdir()), *tricky_pages(tmp_path / "tricky")]
    if zipped:
        archive = tmp_path / "export.zip"
        with zipfile.ZipFile(archive, "w") as out:
            for path in paths:
                out.write(path, f"export/{path.name}")
        paths = [archive]
    files = lark_source_files(paths)
    _parse_serially(monkeypatch)
    serial = outcome(lark.ADAPTER.parse(files))
    _parse_in_parallel(monkeypatch, files, chunk=2)
    parallel_items = list(lark.ADAPTER.parse(files))
    assert outcome(parallel_items) == serial
    by_id = {id(file) for file in files}
    assert all(id(file) in by_id for file, _ in parallel_items)  # the caller's own file objects
    assert not any(analysis._REMEMBERED in item.__dict__ for _, item in parallel_items)  # (not asked to)
    with analysis.remembering_tokens(True):
        parallel_items = list(lark.ADAPTER.parse(files))
    assert outcome(parallel_items) == serial
    for _, item in parallel_items:  # tokens come along, computed by the worker, as the indexer would
        if not isinstance(item, SourceError):
            joined = " ".join(analysis.token_texts(item.text))
            assert item.__dict__[analysis._REMEMBERED] == (item.text, joined)
            assert analysis.remembered_joined_tokens(item, item.text) == joined


def test_remembered_tokens_are_only_used_for_the_same_text():
    class Holder:
        pass

    holder = Holder()
    assert analysis.remembered_joined_tokens(holder, "Hello, world") == "hello world"
    analysis.remember_tokens(holder, "上线前 Debug")
    assert analysis._REMEMBERED not in holder.__dict__  # only while remembering_tokens(True)
    with analysis.remembering_tokens(True):
        analysis.remember_tokens(holder, "上线前 Debug")
    assert analysis.remembered_joined_tokens(holder, "上线前 Debug") == " ".join(analysis.token_texts("上线前 Debug"))
    holder.__dict__[analysis._REMEMBERED] = ("other", "not these")
    assert analysis.remembered_joined_tokens(holder, "Hello, world") == "hello world"
    other = Holder()
    analysis.carry_tokens(holder, other)
    assert analysis.remembered_joined_tokens(other, "other") == "not these"


def test_tantivy_analysis_with_remembered_tokens_is_the_same():
    tantivy_engine = pytest.importorskip("discovery.engine.tantivy_engine")
    for text in ["", "ok", "上线前把debug logs清理掉", "a 上 b", "ｉｎｖｏｉｃｅ 証拠", "x" * 70_000, "  ", "日"]:
        joined = " ".join(analysis.token_texts(text))
        assert tantivy_engine.analyzed(text, joined) == tantivy_engine.analyzed(text)


def test_an_adapter_bug_in_a_worker_stops_after_what_came_before_it(tmp_path, monkeypatch):
    files = lark_source_files(sorted(LARK.iterdir()))
    monkeypatch.setattr(lark, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(lark, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(lark, "PARALLEL_CHUNK", 1)
    if not lark._parallel(files):
        pytest.skip("needs two CPUs and fork")
    broken = files[3]
    original = lark._file_messages

    def failing(file, directory):
        if file is lark._WORK[0][3]:
            yield from list(original(file, directory))[:1]
            raise KeyError("boom")
        yield from original(file, directory)

    monkeypatch.setattr(lark, "_file_messages", failing)
    seen = []
    with pytest.raises(KeyError, match="boom"):
        for file, _ in lark.ADAPTER.parse(files):
            seen.append(file)
    assert seen and seen[-1] is broken or files.index(seen[-1]) < 3


# ---------------------------------------------------------------------------- analysis and the model


_OLD_TOKEN = re.compile(f"({analysis._CJK_CHAR}+)|((?:(?!{analysis._CJK_CHAR})[\\w])+)")


def test_token_pattern_is_the_lookahead_one():
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert analysis._TOKEN.findall(every) == _OLD_TOKEN.findall(every)
    rng = random.Random(3)
    pool = [chr(c) for c in range(0x3100) if not 0xD800 <= c <= 0xDFFF] + list("上线前把日志清理掉 a1_.")
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        assert analysis._TOKEN.findall(text) == _OLD_TOKEN.findall(text), text


def test_ascii_token_texts_are_the_regex_ones():
    ascii_chars = [chr(c) for c in range(128)]
    for a in ascii_chars:
        for b in ascii_chars:
            text = f"Ab{a}{b}9_z"
            assert analysis.token_texts(text) == analysis._ASCII_WORD.findall(text.lower())
            assert analysis.token_texts(text) == [t.text for t in analysis.tokenize(text)]


def test_iso_utc_is_strftime():
    def reference(moment: datetime) -> str:
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    rng = random.Random(9)
    for _ in range(20000):
        moment = datetime(1, 1, 2, tzinfo=UTC) + timedelta(microseconds=rng.randrange(315537897500000000))
        zone = timezone(timedelta(minutes=rng.randrange(-600, 600)))
        with contextlib.suppress(OverflowError):
            moment = moment.astimezone(zone)
        assert iso_utc(moment) == reference(moment)


# ---------------------------------------------------------------------------- ingest


def test_index_documents_are_what_reading_case_db_back_gives(tmp_path, monkeypatch):
    case = Case(tmp_path / "case", create=True)
    given: list[IndexDoc] = []
    engine = case.engine()
    original = engine.add_new

    def capture(docs):
        # (compared when they are handed over: the run names DMs at its very end, after indexing)
        docs = list(docs)
        given.extend(docs)
        assert {doc.id: doc for doc in docs} == {doc.id: doc for doc in index_docs(case, [d.id for d in docs])}
        return original(docs)

    monkeypatch.setattr(engine, "add_new", capture)
    report = ingest(case, [str(LARK)], custodian="Alice", copy_originals=False)
    assert report.messages_added == len(given) > 20


def _indexes(case: Case) -> set[str]:
    return {row[0] for row in case.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_a_first_ingest_builds_the_message_indexes_at_the_end(tmp_path, monkeypatch):
    case = Case(tmp_path / "case", create=True)
    seen: list[set[str]] = []
    import discovery.ingest as ingest_module

    original = ingest_module._parse_group

    def watch(*args):
        seen.append(_indexes(case))
        return original(*args)

    monkeypatch.setattr(ingest_module, "_parse_group", watch)
    ingest(case, [str(LARK)], copy_originals=False)
    assert seen and not set(DEFERRABLE_INDEXES) & seen[0]  # dropped while writing
    assert set(DEFERRABLE_INDEXES) <= _indexes(case)  # and there again
    seen.clear()
    ingest(case, [str(ROOT / "fixtures" / "slack")] if (ROOT / "fixtures" / "slack").exists() else [str(LARK)],
           copy_originals=False)
    assert seen and set(DEFERRABLE_INDEXES) <= seen[0]  # a case holding messages keeps them


def test_a_failing_first_ingest_still_leaves_the_indexes(tmp_path, monkeypatch):
    case = Case(tmp_path / "case", create=True)
    import discovery.ingest as ingest_module

    def fail(*args):
        raise OSError("disk on fire")

    monkeypatch.setattr(ingest_module, "_parse_group", fail)
    with pytest.raises(OSError, match="disk on fire"):
        ingest(case, [str(LARK)], copy_originals=False)
    assert set(DEFERRABLE_INDEXES) <= _indexes(case)


def test_sources_are_recorded_without_a_commit_each_and_survive_a_failure(tmp_path, monkeypatch):
    case = Case(tmp_path / "case", create=True)
    import discovery.ingest as ingest_module

    def fail(*args):
        raise OSError("disk on fire")

    monkeypatch.setattr(ingest_module, "_parse_group", fail)
    with pytest.raises(OSError):
        ingest(case, [str(LARK)], copy_originals=False)
    case.close()
    again = Case(tmp_path / "case")
    assert again.stats()["sources"] == len(list(LARK.iterdir()))


# ---------------------------------------------------------------------------- Tantivy documents


def test_tantivy_documents_from_one_dict_equal_field_by_field(tmp_path):
    tantivy_engine = pytest.importorskip("discovery.engine.tantivy_engine")
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(LARK)], copy_originals=False)
    from discovery.ingest import all_index_docs

    rng = random.Random(2)
    for doc in all_index_docs(case):
        for _ in range(4):
            doc.has_attachment, doc.edited, doc.deleted = (rng.random() < 0.5 for _ in range(3))
            doc.custodian = rng.choice(["", "Alice Chen", doc.custodian])
            doc.sender_id = rng.choice(["", doc.sender_id])
            doc.text = rng.choice([doc.text, "", "上线前 x", "a" * 70_000])
            assert (tantivy_engine._document(doc).to_dict()
                    == tantivy_engine._document_by_calls(doc).to_dict())


def test_a_worker_that_dies_costs_nothing_but_time(tmp_path, monkeypatch):
    import os

    files = lark_source_files(sorted(LARK.iterdir()))
    _parse_serially(monkeypatch)
    serial = outcome(lark.ADAPTER.parse(files))
    _parse_in_parallel(monkeypatch, files, chunk=2)
    parent = os.getpid()
    original = lark._file_messages

    def dying(file, directory):
        if os.getpid() != parent and file is lark._WORK[0][4]:
            os._exit(9)  # as the kernel's OOM killer would end it
        return original(file, directory)

    monkeypatch.setattr(lark, "_file_messages", dying)
    assert outcome(lark.ADAPTER.parse(files)) == serial


def test_lark_scored_keys_from_the_head_keys_are_the_findall_ones():
    from discovery.sources import _jsonio

    rng = random.Random(13)
    pieces = [f'"{key}"' for key in lark._SCORED_KEYS] + ['"x"', " ", "\t", "\x0b", "\x1c", ":", "{", "[", ",",
                                                          "\u00a0", "\ufffd", "é", '"', "\\", "ab", "name"]
    heads = [(lark.BOM if rng.random() < 0.1 else b"")
             + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))).encode("utf-8")
             for _ in range(5000)]
    heads += [b'{"message_id"\xff: 1, "msg_type" :', b'\xef\xbb\xbf {"name":"chat_id":', b'["open_id"\x0c:']
    for head in heads:
        text = head.removeprefix(lark.BOM).lstrip()
        keys = _jsonio.head_keys(head.removeprefix(lark.BOM).decode("utf-8", "replace"))
        assert lark._scored_keys(text, keys) == lark._scored_keys(text, None), head


@pytest.mark.parametrize("engine", ["whoosh", "tantivy"])
def test_a_parallel_ingest_stores_and_indexes_what_a_serial_one_does(tmp_path, monkeypatch, engine):
    if engine == "tantivy":
        pytest.importorskip("tantivy")
    from discovery.engines import use_engine
    from discovery.query import parse as parse_query

    def run(name: str) -> tuple[list, dict]:
        case = Case(tmp_path / name, create=True)
        use_engine(case, engine)
        ingest(case, [str(LARK), *map(str, tricky_pages(tmp_path / "tricky"))], copy_originals=False)
        rows = [tuple(row)[1:] for row in case.db.execute("SELECT * FROM messages ORDER BY seq")]
        hits = {query: sorted(case.engine().all_ids(parse_query(query)))
                for query in ["a*", "whitewash", "清理", "上", '"debug logs"', "has:attachment", "sender:alice*"]}
        case.close()
        return rows, hits

    _parse_serially(monkeypatch)
    serial = run("serial")
    _parse_in_parallel(monkeypatch, lark_source_files([LARK]), chunk=3)
    parallel = run("parallel")
    assert parallel[0] == serial[0] and len(serial[0]) > 20
    assert parallel[1] == serial[1] and serial[1]["a*"]


def test_workers_are_forked_only_from_the_main_thread(monkeypatch):
    """A thread other than the main one (a web request's) parses and sniffs in-process: no fork."""
    import threading

    from discovery import ingest
    from discovery.processes import may_fork
    from discovery.sources import lark

    monkeypatch.setattr(lark, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(lark, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest, "SNIFF_POOL_MIN_FILES", 0)
    from discovery.sources.files import SourceFile

    files = [SourceFile(path=f"f{i}.json", member=None, size=1) for i in range(3)]  # never opened here
    answers: dict[str, object] = {}

    def on_a_thread() -> None:
        answers.update(fork=may_fork(), parallel=lark._parallel(files), sniffed=ingest._sniff_ahead(files))

    thread = threading.Thread(target=on_a_thread)
    thread.start()
    thread.join()
    assert answers == {"fork": False, "parallel": False, "sniffed": {}}
    assert may_fork() and lark._parallel(files)  # the main thread (the CLI) does fork


def _die(item):
    import os

    os._exit(3)  # a sniffing worker killed (out of memory, say)


def test_a_dead_sniffing_worker_costs_speed_not_files(tmp_path, monkeypatch):
    """If a sniffing worker dies, ingest sniffs every file itself: the same messages go in."""
    from discovery import ingest as ingest_module
    from discovery.case import Case
    from tests.conftest import FIXTURES

    expected = Case(tmp_path / "plain", create=True)
    plain = ingest_module.ingest(expected, [str(FIXTURES / "lark")], copy_originals=False)
    expected.close()
    monkeypatch.setattr(ingest_module, "SNIFF_POOL_MIN_FILES", 0)
    monkeypatch.setattr(ingest_module, "_sniff_one", _die)
    case = Case(tmp_path / "case", create=True)
    try:
        report = ingest_module.ingest(case, [str(FIXTURES / "lark")], copy_originals=False)
    finally:
        case.close()
    assert report.messages_added == plain.messages_added > 0
    assert report.unrecognized_files == plain.unrecognized_files
