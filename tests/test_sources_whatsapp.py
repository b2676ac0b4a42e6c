"""WhatsApp "Export chat": Android, iOS, German and a zip with media, parsed to exact values."""

import hashlib
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from discovery.model import Message, SourceError
from discovery.sources import _whatsapp_text as wt
from discovery.sources import detect
from discovery.sources._dayorder import decide_order
from discovery.sources._localtime import LocalZone
from discovery.sources.base import ParseOptions
from discovery.sources.files import expand
from discovery.sources.whatsapp import ADAPTER

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "whatsapp"
ANDROID = FIXTURES / "WhatsApp Chat with Refund cleanup.txt"
IOS = FIXTURES / "WhatsApp Chat - Mark Ellison" / "_chat.txt"
GERMAN = FIXTURES / "WhatsApp Chat mit Revisionsteam.txt"
ZIPPED = FIXTURES / "WhatsApp Chat with Wang Fang.zip"
SHANGHAI = "Asia/Shanghai (from --timezone)"


def parse(path, timezone="Asia/Shanghai"):
    files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
    out = list(ADAPTER.parse(files, ParseOptions(timezone=timezone)))
    messages = {m.locator: m for _, m in out if isinstance(m, Message)}
    errors = [m for _, m in out if isinstance(m, SourceError)]
    return out, messages, errors


def source_lines(path):
    if str(path).endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            data = archive.read("WhatsApp Chat with Wang Fang.txt")
    else:
        data = Path(path).read_bytes()
    return data.decode("utf-8-sig").replace("\r\n", "\n").split("\n")


def file_hash(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


# ----------------------------------------------------------------------------- routing and counts


def test_the_auction_gives_every_file_to_whatsapp_media_included():
    for path in (ANDROID, IOS, GERMAN, ZIPPED):
        for file in expand(str(path)):
            adapter, score = detect(file)
            assert adapter is ADAPTER, file.display
            assert score == (30 if file.name.endswith(".jpg") else 90)


@pytest.mark.parametrize(("path", "count"), [(ANDROID, 16), (IOS, 13), (GERMAN, 14), (ZIPPED, 10)])
def test_fixture_counts(path, count):
    _, messages, errors = parse(path)
    assert (len(messages), len(errors)) == (count, 1)


@pytest.mark.parametrize("path", [ANDROID, IOS, GERMAN, ZIPPED])
def test_locators_are_the_records_lines(path):
    lines = source_lines(path)
    for _, item in parse(path)[0]:
        number = int(item.locator.removeprefix("line "))
        assert item.raw.split("\n")[0] == lines[number - 1]
        assert item.raw == "\n".join(lines[number - 1: number - 1 + item.raw.count("\n") + 1])


# ----------------------------------------------------------------------------- Android, en-GB 24 h


def test_android_day_month_decision_and_zone_are_recorded():
    _, messages, _ = parse(ANDROID)
    first = messages["line 5"]
    assert first.tz_assumption == f"{SHANGHAI}; day/month order DD/MM (a day field > 12 on line 16)"
    assert first.sent_at == datetime(2024, 10, 8, 14, 53, tzinfo=UTC)
    assert first.sent_at_raw == "08/10/2024, 22:53"
    _, plain, _ = parse(ANDROID, timezone=None)
    assert plain["line 5"].sent_at == datetime(2024, 10, 8, 22, 53, tzinfo=UTC)
    assert plain["line 5"].tz_assumption.startswith("UTC (assumed: no --timezone given); day/month order DD/MM")


def test_android_ids_and_conversation():
    _, messages, _ = parse(ANDROID)
    first = messages["line 5"]
    assert first.native_id == f"{file_hash(ANDROID)}:line 5"
    assert first.conversation_id == "whatsapp:" + hashlib.sha256(b"Refund cleanup").hexdigest()[:16]
    assert (first.conversation_name, first.conversation_type) == ("Refund cleanup", "group")
    assert (first.sender_id, first.sender_name, first.sender_kind) == ("whatsapp:Mark Ellison", "Mark Ellison", "user")


def test_android_system_lines_have_no_sender():
    _, messages, _ = parse(ANDROID)
    texts = {loc: (m.kind, m.sender_id, m.sender_kind, m.text) for loc, m in messages.items() if m.kind == "system"}
    assert texts["line 2"] == ("system", None, "system", 'Mark Ellison created group "Refund cleanup"')
    assert texts["line 3"][3] == "Mark Ellison added you"
    assert texts["line 19"][3] == "Tom Becker left"
    assert texts["line 1"][3].startswith("Messages and calls are end-to-end encrypted.")
    assert len(texts) == 5


def test_android_content_markers():
    _, messages, _ = parse(ANDROID)
    multi = messages["line 6"]
    assert multi.text == ('Table is done. Manual adjustments are folded into "FX rounding" now.\n'
                          "Nobody will see 380k as one line.")
    media = messages["line 8"]
    assert (media.kind, media.text, [(a.name, a.type) for a in media.attachments]) == ("file", "", [(None, None)])
    mention = messages["line 10"]
    assert mention.text == "@Tom Becker make sure the old debug logs are actually gone, not archived"
    assert [(m.id, m.name) for m in mention.mentions] == [("whatsapp:Tom Becker", "Tom Becker")]
    # a continuation line that starts with a date is not a new message
    assert messages["line 11"].text.endswith("\n12/10/2024 is when Harwell sends the PBC list, we're fine.")
    deleted = messages["line 13"]
    assert (deleted.deleted, deleted.text) == (True, "")
    edited = messages["line 15"]
    assert (edited.edited, edited.text) == (True, "We whitewash the Q3 numbers once, then we stop talking about it.")
    assert messages["line 16"].text == "审计那边问日志为什么只有7天，我说是新的合规策略 😬"


def test_android_malformed_date_is_one_error():
    _, messages, errors = parse(ANDROID)
    [error] = errors
    assert error.locator == "line 18" and error.raw == "31/09/2024, 21:45 - Li Wei: ok"
    assert "31/09/2024, 21:45" in str(error) and "read as DD/MM" in str(error)
    assert "line 19" in messages


# ----------------------------------------------------------------------------- iOS, en-US 12 h


def test_ios_month_first_with_narrow_spaces_and_marks():
    _, messages, errors = parse(IOS)
    photo = messages["line 3"]
    assert photo.sent_at_raw == "10/9/24, 9:30:11\u202fPM"
    assert photo.sent_at == datetime(2024, 10, 9, 13, 30, 11, tzinfo=UTC)
    assert photo.tz_assumption == f"{SHANGHAI}; day/month order MM/DD (a day field > 12 on line 11)"
    assert [(a.name, a.type) for a in photo.attachments] == [("00000012-PHOTO-2024-10-09-21-30-11.jpg", "image")]
    assert (photo.kind, photo.text) == ("image", "")
    assert (photo.conversation_name, photo.conversation_type) == ("Mark Ellison", "dm")
    [error] = errors
    assert error.locator == "line 12" and "hour 13 with PM" in str(error)


def test_ios_system_lines_that_look_authored():
    _, messages, _ = parse(IOS)
    notice = messages["line 1"]
    assert (notice.kind, notice.sender_id, notice.sender_kind) == ("system", None, "system")
    assert notice.text.startswith("Messages and calls are end-to-end encrypted.")
    assert messages["line 2"].sender_name == "Mark Ellison"


def test_ios_markers():
    _, messages, _ = parse(IOS)
    deleted = messages["line 6"]
    assert (deleted.deleted, deleted.text, deleted.sender_name) == (True, "", "Mark Ellison")
    document = messages["line 7"]
    assert [(a.name, a.type) for a in document.attachments] == [("00000013-audit_scope.pdf", "file")]
    assert document.text == ""
    assert messages["line 8"].text == ("Harwell's scope letter. They want raw logs for September.\n"
                                       "Do we still have them?")
    omitted = messages["line 11"]
    assert [(a.name, a.type) for a in omitted.attachments] == [(None, "image")]
    assert (messages["line 13"].kind, messages["line 13"].text) == ("call", "Missed voice call")
    edited = messages["line 14"]
    assert (edited.edited, edited.text) == (True, "我不想再改数字了。This is going too far.")


# ----------------------------------------------------------------------------- German


def test_german_locale():
    _, messages, errors = parse(GERMAN, timezone="Europe/Berlin")
    first = messages["line 5"]
    assert first.tz_assumption == ("Europe/Berlin (from --timezone); day/month order DD/MM (the first field "
                                   "changes more often (4 vs 0 times), so it is the day)")
    assert first.sent_at == datetime(2024, 10, 7, 16, 5, tzinfo=UTC)
    assert (first.conversation_name, first.conversation_type) == ("Revisionsteam", "group")
    assert [messages[f"line {n}"].kind for n in (1, 2, 3, 4, 16)] == ["system"] * 5
    assert messages["line 4"].text == "Tom Becker hat +49 151 23456789 hinzugefügt"
    media = messages["line 9"]
    assert (media.sender_name, media.text, len(media.attachments)) == ("+49 151 23456789", "", 1)
    assert (messages["line 12"].deleted, messages["line 12"].text) == (True, "")
    edited = messages["line 13"]
    assert (edited.edited, edited.text) == (True, "Ist intern abgestimmt. @Jonas Weber bitte einfach die neue "
                                                  "Policy umsetzen")
    assert [m.name for m in edited.mentions] == ["Jonas Weber"]
    [error] = errors
    assert error.locator == "line 15" and "24:61" in str(error)


# ----------------------------------------------------------------------------- zip with media


def test_zip_links_the_media_member():
    out, messages, errors = parse(ZIPPED)
    image = messages["line 3"]
    assert (image.kind, image.text) == ("image", "this is the version Harwell will see")
    [attachment] = image.attachments
    assert (attachment.name, attachment.type, attachment.size, attachment.key) == \
        ("IMG-20241011-WA0003.jpg", "image", 141, "IMG-20241011-WA0003.jpg")
    missing = messages["line 10"].attachments[0]
    assert (missing.name, missing.size) == ("refund_adjustments_v2.xlsx", None)
    assert {file.member for file, _ in out} == {"WhatsApp Chat with Wang Fang.txt"}  # the jpg yields nothing
    assert image.tz_assumption == f"{SHANGHAI}; day/month order MM/DD (a day field > 12 on line 9)"
    assert (image.conversation_name, image.conversation_type) == ("Wang Fang", "dm")
    [error] = errors
    assert error.locator == "line 8" and "hour 0 with AM" in str(error)


# ----------------------------------------------------------------------------- header grammar


@pytest.mark.parametrize(
    ("line", "style", "date", "time", "ampm", "rest"),
    [
        ("12/24/19, 11:23 - John: hi", "android", "12/24/19", "11:23", None, "John: hi"),
        ("1/1/21, 12:00\u202fPM - A: x", "android", "1/1/21", "12:00", "PM", "A: x"),
        ("24/12/2019, 23:11 - John: x", "android", "24/12/2019", "23:11", None, "John: x"),
        ("9/24/2019 11:30 p.m. - John: x", "android", "9/24/2019", "11:30", "p.m.", "John: x"),
        ("3/6/2018 1:55 p.\u00a0m. - a: m", "android", "3/6/2018", "1:55", "p. m.", "a: m"),
        ("2022/12/14, 13:34. - John: x", "android", "2022/12/14", "13:34", None, "John: x"),
        ("13.06.18, 21:25 - a: m", "android", "13.06.18", "21:25", None, "a: m"),
        ("13.6.2018 klo 21.25.15 - a: m", "android", "13.6.2018", "21.25.15", None, "a: m"),
        ("[31/12/2022 11:40:26] John Doe: x", "ios", "31/12/2022", "11:40:26", None, "John Doe: x"),
        ("[14/10/2021, 3:34:09\u202fPM] John: x", "ios", "14/10/2021", "3:34:09", "PM", "John: x"),
        ("[10.21.21, 15:21:45] John: x", "ios", "10.21.21", "15:21:45", None, "John: x"),
        ("\u200e[3/6/18 1:55:00 p.\u00a0m.] a: m", "ios", "3/6/18", "1:55:00", "p. m.", "a: m"),
        ("[23.09.2016 17:00:28] Ali: x", "ios", "23.09.2016", "17:00:28", None, "Ali: x"),
    ],
)
def test_header_shapes_from_the_reference(line, style, date, time, ampm, rest):
    found = wt.parse_header(line, style)
    assert (found["date"], found["time"], found["ampm"], found["rest"]) == (date, time, ampm, rest)
    assert wt.match_header(line)


@pytest.mark.parametrize("line", ["12/10/2024 is when Harwell sends it", "24/12/2019, 23:11 no separator",
                                  "[31/12/2022] John: x", "- 12/24/19, 11:23 - John: x"])
def test_lines_that_only_look_like_headers_are_not(line):
    assert not wt.match_header(line)


# ----------------------------------------------------------------------------- day/month order


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ([("13/10/2024", 3), ("14/10/2024", 4)], ("DD/MM", "a day field > 12 on line 3")),
        ([("10/13/24", 7)], ("MM/DD", "a day field > 12 on line 7")),
        ([("2022/12/14", 1)], ("YYYY/MM/DD", "the year comes first (line 1)")),
        ([("01/02/2024", 1), ("01/03/2024", 2), ("02/01/2024", 3)],
         ("MM/DD", "dates run forward read as MM/DD; read as DD/MM they go backwards at line 3")),
        ([("03/10/24", 1), ("04/10/24", 2), ("05/10/24", 3)],
         ("DD/MM", "the first field changes more often (2 vs 0 times), so it is the day")),
        ([("05/05/24", 1)], ("DD/MM", "assumed: no date decides it (every field <= 12 and none changes more often)")),
    ],
)
def test_day_month_rules(dates, expected):
    assert decide_order([(d, line, False) for d, line in dates]) == expected


def test_day_month_default_for_us_style_and_conflicts():
    assert decide_order([("5/5/24", 1, True)])[0] == "MM/DD"
    order, reason = decide_order([("13/01/24", 1, False), ("01/13/24", 2, False), ("14/01/24", 3, False)])
    assert order == "DD/MM" and reason.startswith("conflicting dates")


# ----------------------------------------------------------------------------- zones


def test_daylight_saving_oddities_are_noted():
    zone = LocalZone("Europe/Berlin")
    moment, note = zone.to_utc(datetime(2024, 10, 27, 2, 30))
    assert moment == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    assert note.endswith("ambiguous local time (clocks went back), read as the first occurrence")
    moment, note = zone.to_utc(datetime(2024, 3, 31, 2, 30))
    assert note.endswith("local time does not exist (clocks went forward), read with the earlier offset")
    assert zone.to_utc(datetime(2024, 7, 1, 12))[1] == "Europe/Berlin (from --timezone)"


def test_unknown_zone_is_an_error_item():
    _, messages, errors = parse(ANDROID, timezone="Not/AZone")
    assert "unknown time zone 'Not/AZone'" in str(errors[0])
    assert messages["line 5"].sent_at == datetime(2024, 10, 8, 22, 53, tzinfo=UTC)


def test_a_file_with_no_headers_is_one_error():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "notes.txt"
        path.write_text("just some notes\nnot a chat\n")
        _, messages, errors = parse(path)
    assert not messages and "no WhatsApp message header lines" in str(errors[0])


# ----------------------------------------------------------------------------- never raises


def _parse_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "WhatsApp Chat with Fuzz.txt"
        path.write_bytes(data)
        files = [f for f in expand(str(path)) if not isinstance(f, SourceError)]
        ADAPTER.sniff(files[0])
        return list(ADAPTER.parse(files, ParseOptions(timezone="Europe/Berlin")))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    for _, item in _parse_bytes(data):
        assert isinstance(item, Message | SourceError)


_HEADERS = st.sampled_from(["31/12/2022, 23:59 - ", "[1/2/03, 4:05:06\u202fPM] ", "13.6.2018 klo 21.25.15 - ",
                            "99/99/99, 99:99 - ", "\u200e[10.21.21, 15:21:45] ", ""])
_BODIES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["A: <Media omitted>", "B: \u200eimage omitted", "C: This message was deleted", "D: x <This message was edited>",
     "E: \u200e<attached: 0001-PHOTO.jpg>", "F added G", "Grp: \u200eH added I", "J: @\u2068K\u2069 hi", ": ", ":"])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_HEADERS, _BODIES), max_size=12))
def test_arbitrary_chat_lines_never_raise(lines):
    data = "\n".join(header + body for header, body in lines).encode("utf-8")
    for _, item in _parse_bytes(data):
        assert isinstance(item, Message | SourceError)


def test_forced_on_a_zip_without_a_chat_every_member_is_an_error():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "slack.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("general/2024-10-08.json", "[]")
            archive.writestr("users.json", "[]")
        _, messages, errors = parse(path)
    assert not messages and len(errors) == 2
    assert all("no WhatsApp message header lines" in str(e) for e in errors)


def test_an_unnamed_chat_is_its_own_conversation():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "_chat.txt"
        path.write_text("[10/9/24, 9:11:02\u202fPM] Mark Ellison: hi\n")
        digest = file_hash(path)
        _, messages, _ = parse(path)
    [message] = messages.values()
    assert message.conversation_name == "_chat"
    assert message.conversation_id == "whatsapp:" + hashlib.sha256(f"file:{digest}".encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("line", "sender", "kind"),
    [
        ('08/10/2024, 22:50 - Mark Ellison changed the subject from "Audit: prep" to "Refund cleanup"', None, "system"),
        ("08/10/2024, 22:51 - Li Wei: I added the clean table to the folder", "Li Wei", "message"),
        ("08/10/2024, 22:52 - Li Wei: Mark Ellison added Tom Becker yesterday", "Li Wei", "message"),
        ("[10/9/24, 9:11:02\u202fPM] Li Wei: I added Bo to the thread", "Li Wei", "message"),
        ("[10/9/24, 9:11:03\u202fPM] Atlas: \u200eMark Ellison added Li Wei", None, "system"),
        ("[10/9/24, 9:11:04\u202fPM] ~\u202fDicle: hi", "Dicle", "message"),
    ],
)
def test_system_lines_and_authors_are_told_apart(line, sender, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "WhatsApp Chat with X.txt"
        path.write_text(line + "\n")
        _, messages, errors = parse(path)
    [message] = messages.values()
    assert (message.sender_name, message.kind) == (sender, kind) and not errors
