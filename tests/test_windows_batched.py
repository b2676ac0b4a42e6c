"""Context windows read for a whole page at once (Case.windows, search._windows) give exactly what reading
them one message at a time did, with no dict or list shared between windows or with the caller's records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from discovery.case import MESSAGE_SELECT, WINDOW_CHUNK, Case, message_record
from discovery.ingest import ingest
from discovery.search import _windows, search
from tests.lark_factory import message, write_directory, write_jsonl

# minutes of the messages of oc_tied: runs of equal timestamps, ordered by id within a run
TIED_MINUTES = [0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4, 5]


def reference_window(case: Case, message_id: str, before: int, after: int) -> list[dict[str, Any]]:
    """Case.window as it was before windows were batched: one message, two full-row queries."""
    anchor = case.db.execute("SELECT stream, sent_at_us, id FROM messages WHERE id = ?", (message_id,)).fetchone()
    if anchor is None:
        return []
    stream, at, mid = anchor
    earlier = case.db.execute(
        f"{MESSAGE_SELECT} WHERE m.stream = ? AND (m.sent_at_us, m.id) < (?, ?) "
        "ORDER BY m.sent_at_us DESC, m.id DESC LIMIT ?",
        (stream, at, mid, before),
    ).fetchall()
    later = case.db.execute(
        f"{MESSAGE_SELECT} WHERE m.stream = ? AND (m.sent_at_us, m.id) >= (?, ?) "
        "ORDER BY m.sent_at_us, m.id LIMIT ?",
        (stream, at, mid, after + 1),
    ).fetchall()
    return [message_record(row) for row in [*reversed(earlier), *later]]


@pytest.fixture(scope="module")
def demo(demo_case_dir: Path) -> Iterator[Case]:
    """fixtures/lark: several conversations, two merged-forward bundles, attachments, mentions, reactions."""
    case = Case(demo_case_dir)
    yield case
    case.close()


@pytest.fixture(scope="module")
def tied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    """One conversation with runs of equal timestamps (windows then order by id), two small ones."""
    folder = tmp_path_factory.mktemp("tied-export")
    write_directory(folder, {"oc_tied": "Tied", "oc_pair": "Pair", "oc_one": "One"}, {"ou_alice": "Alice"})
    tied_chat = [message(n, f"needle {n}" if n % 3 else f"hay {n}", chat="oc_tied", minutes=minute)
                 for n, minute in enumerate(TIED_MINUTES)]
    write_jsonl(folder / "tied.jsonl", tied_chat)
    write_jsonl(folder / "pair.jsonl", [message(n, f"needle pair {n}", chat="oc_pair") for n in range(2)])
    write_jsonl(folder / "one.jsonl", [message(0, "needle alone", chat="oc_one")])
    case = Case(tmp_path_factory.mktemp("tied-case"), create=True)
    ingest(case, [str(folder)])
    yield case
    case.close()


def all_ids(case: Case) -> list[str]:
    """Every message id, in an order unrelated to time or stream (hits come ranked, not sorted)."""
    return [row[0] for row in case.db.execute("SELECT id FROM messages ORDER BY substr(id, 5), id")]


def stream_ids(case: Case, stream_like: str) -> list[str]:
    rows = case.db.execute(
        "SELECT id FROM messages WHERE stream LIKE ? ORDER BY stream, sent_at_us, id", (stream_like,))
    return [row[0] for row in rows]


def containers(value: Any) -> Iterator[int]:
    """The identities of every dict and list inside VALUE, VALUE included."""
    if isinstance(value, dict | list):
        yield id(value)
        for item in value.values() if isinstance(value, dict) else value:
            yield from containers(item)


@pytest.mark.parametrize("case_name", ["demo", "tied"])
@pytest.mark.parametrize("context", [0, 1, 3])
def test_page_windows_equal_one_at_a_time(request: pytest.FixtureRequest, case_name: str, context: int) -> None:
    case: Case = request.getfixturevalue(case_name)
    ids = [*all_ids(case), "no-such-message", *all_ids(case)[:2]]  # a missing id and repeats, too
    assert len(ids) > WINDOW_CHUNK or case_name == "tied"  # the demo page spans several statements
    expected = {i: reference_window(case, i, context, context) for i in ids}
    assert _windows(case, ids, context) == expected
    assert _windows(case, ids, context, known=case.messages_by_id(ids)) == expected
    assert expected["no-such-message"] == []


def test_the_demo_case_has_what_these_tests_need(demo: Case) -> None:
    assert stream_ids(demo, "%#bundle:%"), "bundle streams"
    assert demo.db.execute("SELECT COUNT(*) FROM messages WHERE attachments != '[]'").fetchone()[0]


@pytest.mark.parametrize(("before", "after"), [(0, 0), (0, 2), (2, 0), (5, 1), (20, 20)])
def test_case_window_equals_the_old_single_message_queries(tied: Case, demo: Case, before: int, after: int) -> None:
    for case in (tied, demo):
        for message_id in all_ids(case):
            assert case.window(message_id, before, after) == reference_window(case, message_id, before, after)
    assert tied.window("no-such-message", 1, 1) == []


def test_windows_stop_at_the_ends_of_their_stream(tied: Case, demo: Case) -> None:
    chat = stream_ids(tied, "oc_tied")
    windows = _windows(tied, [chat[0], chat[-1], chat[1]], 3)
    assert [m["id"] for m in windows[chat[0]]] == chat[:4]
    assert [m["id"] for m in windows[chat[-1]]] == chat[-4:]
    assert [m["id"] for m in windows[chat[1]]] == chat[:5]
    bundle = stream_ids(demo, "%#bundle:om_b75421bdf4f875665a7357e2d9c0013a")
    assert [m["id"] for m in _windows(demo, [bundle[0]], 50)[bundle[0]]] == bundle  # nothing from outside


def test_overlapping_windows_share_no_dict_or_list(demo: Case) -> None:
    with_attachment = demo.db.execute(
        "SELECT id, stream FROM messages WHERE attachments != '[]' ORDER BY sent_at_us, id").fetchone()
    stream = stream_ids(demo, with_attachment["stream"])
    at = stream.index(with_attachment["id"])
    hits = [with_attachment["id"], stream[at - 1] if at else stream[at + 1]]
    known = demo.messages_by_id(hits)
    pristine = demo.messages_by_id(hits)
    windows = _windows(demo, hits, 3, known=known)
    first, second = windows[hits[0]], windows[hits[1]]
    assert {m["id"] for m in first} & {m["id"] for m in second} >= set(hits)  # they overlap

    seen = [set(containers(window)) for window in (first, second)] + [set(containers(known))]
    assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2]

    entry = next(m for m in first if m["id"] == with_attachment["id"])
    entry["hit"] = True
    entry["source"]["path"] = "changed"
    entry["attachments"][0]["name"] = "changed"
    entry["mentions"].append("changed")
    assert second == reference_window(demo, hits[1], 3, 3)
    assert known == pristine


def test_search_marks_each_window_on_its_own(tied: Case) -> None:
    result = search(tied, "needle", context=2, limit=50, sort="time_asc")
    assert len(result.hits) >= 3
    chat = stream_ids(tied, "oc_tied")
    for hit in result.hits:
        message_id = hit.message["id"]
        assert [m["id"] for m in hit.context] == [m["id"] for m in reference_window(tied, message_id, 2, 2)]
        assert [m["hit"] for m in hit.context] == [m["id"] == message_id for m in hit.context]
        own = next(m for m in hit.context if m["hit"])
        assert own is not hit.message and own["highlights"] == hit.message["highlights"] != []
        assert all("highlights" not in m for m in hit.context if not m["hit"])
        assert "hit" not in hit.message
    neighbours = [(a, b) for a, b in zip(result.hits, result.hits[1:], strict=False)
                  if a.message["id"] in chat and b.message["id"] in [m["id"] for m in a.context]]
    assert neighbours  # some hits sit in each other's windows, each marked only in its own
    for a, b in neighbours:
        assert next(m for m in a.context if m["id"] == b.message["id"])["hit"] is False
