"""discovery.review on a real case (fixtures/lark ingested): tags, notes, saved searches, review sets.

Each test gets its own copy of one ingested case, so tests can tag, note and freeze freely.
"""

from __future__ import annotations

import inspect
import json
import shutil
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from discovery import audit, review
from discovery.case import Case
from discovery.ingest import ingest
from discovery.query import Field, Not, QueryError, matches
from discovery.search import parse_query
from tests.lark_factory import message, write_directory, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
LARK = ROOT / "fixtures" / "lark"

# fixtures/lark: "whitewash" hits these four messages (two conversations)
WHITEWASH = ["m044238d6be100d9bba1", "m3729745350dba2b9392", "m55df6804f151ecf4375", "m904acdda71862264efd"]


def lark_case(folder: Path) -> Path:
    """fixtures/lark ingested into a new case at FOLDER (closed again)."""
    case = Case(folder, create=True)
    try:
        ingest(case, [str(LARK)], copy_originals=False)
    finally:
        case.close()
    return folder


@pytest.fixture(scope="session")
def lark_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lark_case(tmp_path_factory.mktemp("review-template") / "case")


@pytest.fixture
def case_dir(lark_template: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested Lark case."""
    target = tmp_path / "case"
    shutil.copytree(lark_template, target)
    return target


@pytest.fixture
def case(case_dir: Path) -> Iterator[Case]:
    opened = Case(case_dir)
    yield opened
    opened.close()


def add_more_whitewash(case: Case, folder: Path, count: int = 2) -> list[str]:
    """Ingest a further small export holding COUNT new 'whitewash' messages; their ids."""
    folder.mkdir()
    write_directory(folder, {"oc_late": "Late chat"}, {"ou_alice": "Alice Chen"})
    write_jsonl(folder / "messages.jsonl",
                [message(n, f"late whitewash number {n}", chat="oc_late") for n in range(1, count + 1)])
    ingest(case, [str(folder)], copy_originals=False)
    rows = case.db.execute("SELECT id FROM messages WHERE conversation_id = 'oc_late' ORDER BY sent_at_us")
    return [row[0] for row in rows]


def actions(case: Case, name: str) -> list[dict]:
    return audit.entries(case, action=name)


# ---------------------------------------------------------------------------------------------- schema


def test_schema_is_created_on_first_use_with_the_default_tags(case):
    assert case.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'message_tags'").fetchone() is None
    tags = review.list_tags(case)
    assert [(t.name, t.shortcut) for t in tags] == [
        ("responsive", "1"), ("not responsive", "2"), ("privileged", "3"), ("hot", "4"), ("needs second look", "5")]
    assert all(t.colour.startswith("#") and len(t.colour) == 7 for t in tags)
    review.ensure_schema(case.db)  # idempotent: no second set of defaults
    assert len(review.list_tags(case)) == 5


def test_the_schema_sql_runs_on_a_bare_database(tmp_path):
    db = sqlite3.connect(tmp_path / "bare.db")
    db.executescript(review.SCHEMA)
    db.executescript(review.SCHEMA)  # IF NOT EXISTS throughout
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tags", "message_tags", "notes", "note_revisions", "saved_searches", "review_sets",
            "review_items"} <= names
    db.close()


# ---------------------------------------------------------------------------------------------- tags


def test_add_and_remove_record_who_and_when_and_keep_history(case):
    change = review.add_tag(case, WHITEWASH[:2], "hot", actor="alice", address="10.0.0.1")
    assert change.changed == WHITEWASH[:2] and change.unchanged == [] and change.actor == "alice"
    again = review.add_tag(case, WHITEWASH[:3], "HOT", actor="bob")  # names are case-insensitive
    assert again.changed == WHITEWASH[2:3] and again.unchanged == WHITEWASH[:2]
    removed = review.remove_tag(case, [WHITEWASH[0], WHITEWASH[3]], "hot", actor="carol")
    assert removed.changed == [WHITEWASH[0]] and removed.unchanged == [WHITEWASH[3]]

    assert review.tagged_ids(case, "hot") == frozenset(WHITEWASH[1:3])
    applied = review.message_tags(case, [WHITEWASH[0], WHITEWASH[1]])
    assert applied[WHITEWASH[0]] == []
    assert [(t.name, t.added_by) for t in applied[WHITEWASH[1]]] == [("hot", "alice")]

    history = review.tag_history(case, message_id=WHITEWASH[0])
    assert [(e.action, e.actor) for e in history] == [("add", "alice"), ("remove", "carol")]
    assert history[0].at <= history[1].at
    # a removal is a tombstone: every row is still there
    rows = case.db.execute("SELECT COUNT(*), COUNT(removed_at) FROM message_tags").fetchone()
    assert tuple(rows) == (3, 1)

    adds, removes = actions(case, "tag_add"), actions(case, "tag_remove")
    assert [(e["actor"], e["details"]["message_ids"]) for e in adds] == [
        ("alice", WHITEWASH[:2]), ("bob", WHITEWASH[2:3])]
    assert adds[0]["address"] == "10.0.0.1"
    assert [(e["actor"], e["details"]["tag"], e["details"]["count"]) for e in removes] == [("carol", "hot", 1)]
    assert audit.verify(case).ok


def test_re_adding_a_removed_tag_is_a_new_row(case):
    for actor in ("alice", "bob"):
        review.add_tag(case, [WHITEWASH[0]], "hot", actor=actor)
        review.remove_tag(case, [WHITEWASH[0]], "hot", actor=actor)
    review.add_tag(case, [WHITEWASH[0]], "hot", actor="carol")
    events = review.tag_history(case, message_id=WHITEWASH[0], tag="hot")
    assert [(e.action, e.actor) for e in events] == [
        ("add", "alice"), ("remove", "alice"), ("add", "bob"), ("remove", "bob"), ("add", "carol")]
    assert review.tagged_ids(case, "hot") == {WHITEWASH[0]}


def test_history_cannot_be_deleted_or_rewritten(case):
    review.add_tag(case, [WHITEWASH[0]], "hot", actor="alice")
    review.remove_tag(case, [WHITEWASH[0]], "hot", actor="bob")
    review.add_tag(case, [WHITEWASH[1]], "hot", actor="alice")
    for sql in ("DELETE FROM message_tags",
                "UPDATE message_tags SET added_by = 'mallory'",
                "UPDATE message_tags SET removed_by = 'mallory' WHERE removed_at IS NOT NULL",
                "UPDATE message_tags SET removed_at = NULL"):
        with pytest.raises(sqlite3.IntegrityError):
            case.db.execute(sql)
        case.db.rollback()
    note = review.add_note(case, WHITEWASH[0], "first", actor="alice")
    review.edit_note(case, note.id, "second", actor="alice")
    for sql in ("DELETE FROM notes", "DELETE FROM note_revisions", "UPDATE note_revisions SET text = 'forged'"):
        with pytest.raises(sqlite3.IntegrityError):
            case.db.execute(sql)
        case.db.rollback()


def test_unknown_messages_or_tags_change_nothing(case):
    with pytest.raises(review.ReviewError, match="no such message in this case: nope"):
        review.add_tag(case, [WHITEWASH[0], "nope"], "hot")
    with pytest.raises(review.ReviewError, match="no tag 'warm'.*responsive, not responsive"):
        review.add_tag(case, [WHITEWASH[0]], "warm")
    with pytest.raises(review.ReviewError, match="no message ids"):
        review.add_tag(case, [], "hot")
    assert review.tagged_ids(case) == frozenset()
    assert actions(case, "tag_add") == []


def test_define_and_update_tags(case):
    tag = review.define_tag(case, "  Key   document ", actor="admin1")
    assert (tag.name, tag.position, tag.shortcut, tag.colour) == ("Key document", 6, "6", review.PALETTE[0])
    second = review.define_tag(case, "follow up", "#ABC", description="ask counsel")
    assert second.colour == "#aabbcc" and second.description == "ask counsel"
    for bad_name, message_text in (("HOT", "already exists"), ("", "needs a name"), ('say "x"', "double quotes"),
                                   ("x" * 65, "at most 64")):
        with pytest.raises(review.ReviewError, match=message_text):
            review.define_tag(case, bad_name)
    with pytest.raises(review.ReviewError, match="#rrggbb"):
        review.define_tag(case, "ok name", "red")

    review.add_tag(case, [WHITEWASH[0]], "key document")
    renamed = review.update_tag(case, "key document", new_name="Exhibit", colour="#123456", actor="admin1")
    assert (renamed.name, renamed.colour, renamed.id) == ("Exhibit", "#123456", tag.id)
    assert review.tagged_ids(case, "exhibit") == {WHITEWASH[0]}  # messages keep a renamed tag
    with pytest.raises(review.ReviewError, match="already exists"):
        review.update_tag(case, "exhibit", new_name="hot")
    defined = actions(case, "tag_define")
    assert [e["details"]["tag"] for e in defined] == ["Key document", "follow up"]
    update = actions(case, "tag_update")[0]["details"]
    assert update["before"] == {"colour": review.PALETTE[0], "name": "Key document"}
    assert update["after"] == {"colour": "#123456", "name": "Exhibit"}


def test_only_nine_tags_get_review_keys(case):
    for n in range(6):
        review.define_tag(case, f"extra {n}")
    shortcuts = [t.shortcut for t in review.list_tags(case)]
    assert shortcuts == [str(n) for n in range(1, 10)] + [None, None]


def test_tag_counts_is_the_tag_facet(case):
    review.add_tag(case, WHITEWASH[:3], "hot")
    review.add_tag(case, WHITEWASH[:1], "privileged")
    facet = review.tag_counts(case, WHITEWASH + WHITEWASH[:1])  # duplicates count once
    counts = {t.name: t.count for t in facet.tags}
    assert counts == {"responsive": 0, "not responsive": 0, "privileged": 1, "hot": 3, "needs second look": 0}
    assert (facet.total, facet.tagged, facet.untagged) == (4, 3, 1)
    whole = review.tag_counts(case)
    assert (whole.total, whole.tagged, whole.untagged) == (92, 3, 89)
    assert whole.to_dict()["tags"][3] == {"name": "hot", "colour": "#c62828", "count": 3, "shortcut": "4"}


# ---------------------------------------------------------------------------------------------- bulk


def test_query_ids_are_the_search_windows_in_export_order(case):
    pairs = review.query_ids(case, "whitewash", context=1)
    hits = {mid for mid, hit in pairs if hit}
    assert hits == set(WHITEWASH)
    windows = {m["id"] for mid in WHITEWASH for m in case.window(mid, 1, 1)}
    assert {mid for mid, _ in pairs} == windows
    order = {r[0]: (r[1], r[2], r[0]) for r in case.db.execute("SELECT id, conversation_id, sent_at_us FROM messages")}
    assert [mid for mid, _ in pairs] == sorted(windows, key=order.__getitem__)
    assert review.count_query(case, "whitewash", context=1) == {"hits": 4, "context": len(windows) - 4,
                                                                 "messages": len(windows)}
    assert review.count_query(case, "whitewash") == {"hits": 4, "context": 0, "messages": 4}
    assert len(review.query_ids(case, "")) == 92


def test_bulk_tag_checks_the_confirmed_count_and_records_one_batch(case):
    only = ["sender:ou_76927bc596a3349ded94c92ecd8131a1 OR 洗白"]
    counts = review.count_query(case, "whitewash", context=1, filters=only)
    assert counts["messages"] < review.count_query(case, "whitewash", context=1)["messages"]
    with pytest.raises(review.ReviewError, match=f"now finds {counts['messages']} messages, not the 3 confirmed"):
        review.tag_query(case, "whitewash", "responsive", context=1, filters=only, expected=3)
    assert review.tagged_ids(case) == frozenset()
    change = review.tag_query(case, "whitewash", "responsive", context=1, filters=only,
                              expected=counts["messages"], actor="alice")
    assert change.batch and len(change.changed) == counts["messages"]
    assert set(change.changed) == {mid for mid, _ in review.query_ids(case, "whitewash", context=1, filters=only)}
    batches = {row[0] for row in case.db.execute("SELECT added_batch FROM message_tags")}
    assert batches == {change.batch}
    entry = actions(case, "tag_add")[-1]["details"]
    assert entry["bulk"] is True and entry["batch"] == change.batch and entry["context"] == 1
    assert entry["filters"] == only and entry["count"] == counts["messages"]
    undone = review.tag_query(case, "whitewash", "responsive", remove=True, context=1, actor="bob")
    assert set(undone.changed) == set(change.changed) and review.tagged_ids(case) == frozenset()


def test_bulk_tag_rejects_a_bad_query_or_tag_before_anything_changes(case):
    with pytest.raises(QueryError):
        review.tag_query(case, "(whitewash", "hot")
    with pytest.raises(review.ReviewError):
        review.tag_query(case, "whitewash", "warm")
    with pytest.raises(review.ReviewError, match="context"):
        review.tag_query(case, "whitewash", "hot", context=51)
    assert review.tag_query(case, "nothingmatchesthis", "hot").changed == []


# ---------------------------------------------------------------------------------------------- notes


def test_notes_keep_every_revision(case):
    note = review.add_note(case, WHITEWASH[0], "  Ask Wei who asked for this  ", actor="alice")
    assert (note.text, note.revisions, note.created_by) == ("Ask Wei who asked for this", 1, "alice")
    edited = review.edit_note(case, note.id, "Wei confirmed: Mark asked", actor="bob", admin=True)
    assert (edited.revisions, edited.updated_by, edited.created_by) == (2, "bob", "alice")
    unchanged = review.edit_note(case, note.id, "Wei confirmed: Mark asked", actor="alice")
    assert unchanged.revisions == 2  # unchanged: no revision
    other = review.add_note(case, WHITEWASH[0], "privileged? check with counsel", actor="carol")
    assert [n.id for n in review.notes_for(case, [WHITEWASH[0], WHITEWASH[1]])[WHITEWASH[0]]] == [note.id, other.id]

    deleted = review.delete_note(case, other.id, actor="carol")
    assert deleted.deleted and deleted.text == ""
    assert [n.id for n in review.list_notes(case, WHITEWASH[0])] == [note.id]
    assert [n.id for n in review.list_notes(case, WHITEWASH[0], include_deleted=True)] == [note.id, other.id]
    history = review.note_history(case, other.id)
    assert [(r.revision, r.text, r.deleted, r.actor) for r in history] == [
        (1, "privileged? check with counsel", False, "carol"), (2, "", True, "carol")]
    with pytest.raises(review.ReviewError, match="deleted"):
        review.edit_note(case, other.id, "again", actor="carol")
    with pytest.raises(review.ReviewError, match="needs some text"):
        review.add_note(case, WHITEWASH[0], "   ")
    with pytest.raises(review.ReviewError, match="no such message"):
        review.add_note(case, "nope", "text")
    with pytest.raises(review.ReviewError, match="no note 999"):
        review.note_history(case, 999)
    assert [e["action"] for e in audit.entries(case) if e["action"].startswith("note_")] == [
        "note_add", "note_edit", "note_add", "note_delete"]


def test_only_a_notes_author_or_an_admin_edits_or_deletes_it(case):
    note = review.add_note(case, WHITEWASH[0], "Ask Wei who asked for this", actor="alice")
    assert review.edit_note(case, note.id, "Wei says Mark asked", actor="alice").revisions == 2  # the author
    for refused in (lambda: review.edit_note(case, note.id, "rewritten by bob", actor="bob"),
                    lambda: review.edit_note(case, note.id, "Wei says Mark asked", actor="bob"),  # even unchanged
                    lambda: review.edit_note(case, note.id, "by the CLI actor"),  # cli:<os user>, not admin
                    lambda: review.delete_note(case, note.id, actor="bob"),
                    lambda: review.delete_note(case, note.id, actor="bob", admin=False)):
        with pytest.raises(review.ReviewError, match=r"only its author \(alice\) or an admin may (edit|delete) "
                                                     r"this note"):
            refused()
    with pytest.raises(review.ReviewError, match=r"only its author \(alice\) or an admin may edit this note"):
        review.edit_note(case, note.id, "x", actor="bob")
    kept = review.get_note(case, note.id)
    assert (kept.text, kept.revisions, kept.deleted, kept.updated_by) == ("Wei says Mark asked", 2, False, "alice")
    assert [e["action"] for e in audit.entries(case) if e["action"].startswith("note_")] == ["note_add", "note_edit"]

    by_admin = review.edit_note(case, note.id, "Wei says Mark asked (admin: see thread)", actor="ada", admin=True)
    assert (by_admin.revisions, by_admin.created_by, by_admin.updated_by) == (3, "alice", "ada")
    assert review.may_change_note(by_admin, "alice") and review.may_change_note(by_admin, "bob", admin=True)
    assert not review.may_change_note(by_admin, "ada")  # the last editor is not the author
    with pytest.raises(review.ReviewError, match=r"only its author \(alice\) or an admin may delete"):
        review.delete_note(case, note.id, actor="ada")  # an admin only with admin=True
    gone = review.delete_note(case, note.id, actor="ada", admin=True)
    assert gone.deleted and gone.created_by == "alice" and gone.updated_by == "ada"
    assert [(r.revision, r.text, r.deleted, r.actor) for r in review.note_history(case, note.id)] == [
        (1, "Ask Wei who asked for this", False, "alice"), (2, "Wei says Mark asked", False, "alice"),
        (3, "Wei says Mark asked (admin: see thread)", False, "ada"), (4, "", True, "ada")]
    assert [n.id for n in review.list_notes(case, WHITEWASH[0], include_deleted=True)] == [note.id]
    with pytest.raises(review.ReviewError, match="already deleted"):
        review.delete_note(case, note.id, actor="alice")

    own = review.add_note(case, WHITEWASH[1], "my own draft", actor="bob")
    assert review.delete_note(case, own.id, actor="bob").deleted  # an author deletes their own note
    assert [r.actor for r in review.note_history(case, own.id)] == ["bob", "bob"]
    assert [e["action"] for e in audit.entries(case) if e["action"].startswith("note_")] == [
        "note_add", "note_edit", "note_edit", "note_delete", "note_add", "note_delete"]


def test_note_ids_match_words_phrases_and_wildcards_in_live_notes(case):
    review.add_note(case, WHITEWASH[0], "Call counsel about the refund table")
    gone = review.add_note(case, WHITEWASH[1], "counsel said no")
    review.delete_note(case, gone.id)
    review.add_note(case, WHITEWASH[2], "律师说要保留证据")
    assert review.note_ids(case, "counsel") == {WHITEWASH[0]}
    assert review.note_ids(case, '"call counsel"') == {WHITEWASH[0]}
    assert review.note_ids(case, '"counsel call"') == frozenset()
    assert review.note_ids(case, "refu*") == {WHITEWASH[0]}
    assert review.note_ids(case, "律师") == {WHITEWASH[2]}


# ---------------------------------------------------------------------------------------------- resolution


def test_resolve_field_turns_review_fields_into_message_ids(case):
    review.add_tag(case, WHITEWASH[:2], "hot")
    review.add_tag(case, WHITEWASH[3:], "needs second look")
    review.add_note(case, WHITEWASH[2], "refund counsel")
    hot = review.resolve_field(case, Field("tag", "Hot"))
    assert hot == Field("ids", frozenset(WHITEWASH[:2])) and str(hot.value) == 'tagged "hot"'
    assert review.resolve_field(case, Field("tag", "needs  second LOOK")).value == {WHITEWASH[3]}
    unknown = review.resolve_field(case, Field("tag", "reviewed"))
    assert unknown.value == frozenset() and "no such tag" in str(unknown.value)
    assert review.resolve_field(case, Field("is", "tagged")).value == {WHITEWASH[0], WHITEWASH[1], WHITEWASH[3]}
    untagged = review.resolve_field(case, Field("is", "untagged"))
    assert isinstance(untagged, Not) and untagged.child.value == {WHITEWASH[0], WHITEWASH[1], WHITEWASH[3]}
    assert review.resolve_field(case, Field("note", "counsel")).value == {WHITEWASH[2]}
    assert review.resolve_field(case, Field("sender", "x")) == Field("sender", "x")


def test_parse_query_resolves_review_fields_for_the_oracle(case):
    from discovery.ingest import all_index_docs

    review.add_tag(case, WHITEWASH[:2], "hot")
    docs = list(all_index_docs(case))
    expectations = {
        "tag:hot": set(WHITEWASH[:2]),
        "whitewash -tag:hot": set(WHITEWASH[2:]),
        "whitewash is:untagged": set(WHITEWASH[2:]),
        "is:tagged": set(WHITEWASH[:2]),
    }
    for query, expected in expectations.items():
        node = parse_query(case, query)
        assert {d.id for d in docs if matches(node, d)} == expected, query
    assert sum(1 for d in docs if matches(parse_query(case, "-tag:hot"), d)) == 90


# ---------------------------------------------------------------------------------------------- saved searches


def test_saved_search_shows_its_hit_count_then_and_now(case, tmp_path):
    saved = review.save_search(case, "cover-up", "whitewash", filters=["date:2024"], context=2, sort="time_asc",
                               view={"from": "2024-01-01"}, actor="alice")
    assert (saved.hits_at_save, saved.owner, saved.shared, saved.view) == (4, "alice", False, {"from": "2024-01-01"})
    first = review.run_saved(case, "cover-up", user="alice", actor="alice")
    assert (first.hits_then, first.hits_previous_run, first.hits_now) == (4, None, 4)
    add_more_whitewash(case, tmp_path / "late", count=2)
    later = review.run_saved(case, saved.id, actor="bob")
    assert (later.hits_then, later.hits_previous_run, later.hits_now) == (4, 4, 6)
    assert later.to_dict()["new_since_saved"] == 2
    assert (later.saved.last_run_by, later.saved.last_run_hits) == ("bob", 6)
    assert [n.__class__.__name__ for n in saved.filter_nodes()] == ["DateRange"]
    assert [e["details"]["hits_now"] for e in actions(case, "saved_run")] == [4, 6]
    assert actions(case, "saved_add")[0]["details"]["hits"] == 4


def test_saved_searches_are_private_until_shared(case):
    mine = review.save_search(case, "wash", "whitewash", actor="alice")
    review.save_search(case, "wash", "洗白", actor="bob")
    with pytest.raises(review.ReviewError, match="already have"):
        review.save_search(case, "wash", "x", actor="alice")
    assert [s.owner for s in review.list_saved(case, user="carol")] == []
    assert [s.owner for s in review.list_saved(case)] == ["alice", "bob"]
    with pytest.raises(review.ReviewError, match="no saved search"):
        review.get_saved(case, mine.id, user="carol")
    with pytest.raises(review.ReviewError, match="no saved search"):  # private: carol cannot even see it
        review.share_saved(case, mine.id, actor="carol")
    review.share_saved(case, mine.id, actor="alice")
    assert [s.id for s in review.list_saved(case, user="carol")] == [mine.id]
    assert review.get_saved(case, "wash", user="carol").id == mine.id
    assert review.get_saved(case, "wash", user="bob").owner == "bob"  # own first
    with pytest.raises(review.ReviewError, match="several saved searches"):
        review.share_saved(case, "wash", actor="root", admin=True)
    with pytest.raises(review.ReviewError, match="belongs to alice"):
        review.delete_saved(case, mine.id, actor="bob")
    review.delete_saved(case, mine.id, actor="root", admin=True)
    assert [s.owner for s in review.list_saved(case)] == ["bob"]
    row = case.db.execute("SELECT deleted_by FROM saved_searches WHERE id = ?", (mine.id,)).fetchone()
    assert row[0] == "root"  # a tombstone, not a deletion
    assert [e["action"] for e in audit.entries(case) if e["action"].startswith("saved_")] == [
        "saved_add", "saved_add", "saved_share", "saved_delete"]


def test_saving_a_bad_search_fails(case):
    with pytest.raises(QueryError):
        review.save_search(case, "bad", "(whitewash")
    with pytest.raises(QueryError):
        review.save_search(case, "bad", "whitewash", filters=["date:nope"])
    with pytest.raises(review.ReviewError, match="sort"):
        review.save_search(case, "bad", "whitewash", sort="random")
    assert review.list_saved(case) == []


# ---------------------------------------------------------------------------------------------- review sets


def test_a_review_set_freezes_hits_and_context_in_export_order(case, tmp_path):
    pairs = review.query_ids(case, "whitewash", context=1)
    made = review.create_set(case, "first pass", "whitewash", context=1, actor="alice")
    assert (made.id, made.items, made.hits, made.reviewed, made.created_by) == (1, len(pairs), 4, 0, "alice")
    assert made.explained == 'the word "whitewash"'
    assert review.set_message_ids(case, made.id) == pairs
    items = review.set_items(case, made.id)
    assert [i.position for i in items] == list(range(1, len(pairs) + 1))
    assert [i.hit for i in items] == [hit for _, hit in pairs]
    add_more_whitewash(case, tmp_path / "late")
    assert review.set_message_ids(case, made.id) == pairs  # frozen: later ingests do not change it
    assert review.create_set(case, "second", "whitewash", context=0).items == 6
    assert [s.id for s in review.list_sets(case)] == [1, 2]
    entry = actions(case, "set_create")[0]["details"]
    assert (entry["set"], entry["items"], entry["hits"], entry["context"]) == (1, len(pairs), 4, 1)
    for sql in ("DELETE FROM review_items", "UPDATE review_items SET message_id = 'x'",
                "UPDATE review_sets SET name = 'x'", "DELETE FROM review_sets"):
        with pytest.raises(sqlite3.IntegrityError):
            case.db.execute(sql)
        case.db.rollback()


def test_walking_a_set_marks_items_and_counts_progress(case):
    made = review.create_set(case, "pass", "whitewash", context=1)
    first = review.next_item(case, made.id)
    assert first is not None and first.position == 1
    reviewed = review.review_item(case, made.id, 1, tags=["hot", "responsive"], actor="alice")
    assert (reviewed.reviewed, reviewed.reviewed_by) == (True, "alice")
    assert [t.name for t in review.message_tags(case, [first.message_id])[first.message_id]] == ["responsive", "hot"]
    review.review_item(case, made.id, 2, actor="bob")
    assert review.next_item(case, made.id).position == 3
    assert review.next_item(case, made.id, after=1, unreviewed=False).position == 2
    first_hit_after = review.next_item(case, made.id, after=1, hits_only=True)
    assert first_hit_after is not None and first_hit_after.hit
    progress = review.set_progress(case, made.id)
    assert (progress.items, progress.reviewed, progress.remaining) == (made.items, 2, made.items - 2)
    assert progress.by_reviewer == {"alice": 1, "bob": 1}
    assert progress.hits == 4 and progress.hits_reviewed == sum(
        1 for i in review.set_items(case, made.id, reviewed=True) if i.hit)
    review.review_item(case, made.id, 1, reviewed=False, untags=["hot"], actor="carol")
    assert review.set_progress(case, made.id).reviewed == 1
    assert review.tagged_ids(case, "hot") == frozenset()
    assert review.get_set(case, made.id).reviewed == 1
    assert [len(review.set_items(case, made.id, reviewed=flag)) for flag in (True, False)] == [1, made.items - 1]
    assert len(review.set_items(case, made.id, offset=2, limit=3)) == 3
    events = actions(case, "set_review")
    assert [(e["actor"], e["details"]["position"], e["details"]["reviewed"]) for e in events] == [
        ("alice", 1, True), ("bob", 2, True), ("carol", 1, False)]
    assert actions(case, "tag_add")[0]["details"]["set"] == made.id
    with pytest.raises(review.ReviewError, match="no item 999"):
        review.review_item(case, made.id, 999)
    with pytest.raises(review.ReviewError, match="no tag"):
        review.review_item(case, made.id, 3, tags=["warm"])
    assert not review.set_item(case, made.id, 3).reviewed  # a bad tag changes nothing
    with pytest.raises(review.ReviewError, match="no review set 9"):
        review.set_progress(case, 9)


def test_an_empty_search_makes_no_set(case):
    with pytest.raises(review.ReviewError, match="finds no messages"):
        review.create_set(case, "empty", "nothingmatchesthis")
    assert review.list_sets(case) == []


# Needs Field("ids") wired into the engine (discovery.engine._ids.ids_query): the set's ids are a filter.
def test_export_set_holds_exactly_the_frozen_messages(case, tmp_path):
    from discovery.export import export_bundle
    from discovery.export.verify import verify_bundle

    made = review.create_set(case, "pass", "whitewash", context=1)
    add_more_whitewash(case, tmp_path / "late")
    out = tmp_path / "set.zip"
    report = review.export_set(case, made.id, out, actor="alice")
    assert verify_bundle(out).ok
    with zipfile.ZipFile(out) as bundle:
        lines = bundle.read("messages.jsonl").decode("utf-8").splitlines()
    exported = [json.loads(line)["id"] for line in lines]
    assert sorted(exported) == sorted(mid for mid, _ in review.set_message_ids(case, made.id))
    assert report.counts["messages"] == made.items
    if "items" in inspect.signature(export_bundle).parameters:  # the exact-selection hook keeps the marks
        assert (report.counts["hits"], report.counts["context"]) == (made.hits, made.items - made.hits)
    entry = actions(case, "set_export")[0]
    assert entry["actor"] == "alice" and entry["details"]["fingerprint"] == report.manifest_sha256
