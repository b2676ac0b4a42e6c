"""`discovery tag / note / saved / sets`: the review workflow from the command line (discovery.review).

Every command takes --json for scripts and --as USER to act as one of the case's users (recorded
in the audit trail as that user, from this host via the OS account; their role applies: auditors
cannot change anything, only admins define tags). Without --as the actor is `cli:<os user>`.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from discovery import audit, review, users
from discovery.case import Case
from discovery.commands._common import CONTEXT_SETTINGS, EXIT_USAGE, case_option, emit_json, open_case
from discovery.query import QueryError

WRITERS = ("admin", "investigator")


@dataclass
class Actor:
    name: str  # recorded as the actor
    address: str | None  # None: the host name (audit's default)
    role: str | None  # None: the machine's operator (no --as): may do everything

    @property
    def admin(self) -> bool:
        return self.role in (None, "admin")

    @property
    def user(self) -> str | None:
        """Whose saved searches to show: the --as user's own and the shared ones; all without --as."""
        return None if self.role is None else self.name


def as_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--as", "as_user", metavar="USER",
                        help="Act as this user of the case (default: the CLI actor cli:<os user>).")


def json_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _actor(case: Case, as_user: str | None, need: tuple[str, ...] | None = None) -> Actor:
    if as_user is None:
        return Actor(audit.cli_actor(), None, None)
    user = users.get(case, as_user)
    if user is None or user.disabled:
        raise click.UsageError(f"--as {as_user}: no enabled user of that name in this case")
    if need is not None and user.role not in need:
        raise click.UsageError(f"--as {as_user}: a {user.role} cannot do this (needs {' or '.join(need)})")
    return Actor(user.name, f"{socket.gethostname()} via {audit.cli_actor()}", user.role)


@contextmanager
def _case(case_dir: str, query: str | None = None) -> Iterator[Case]:
    """Open the case; turn the library's refusals into usage errors (exit 2) and always close it."""
    case = open_case(case_dir)
    try:
        yield case
    except review.ReviewError as error:
        raise click.UsageError(str(error)) from error
    except QueryError as error:
        _query_error(str(error), query, error.position)
    finally:
        case.close()


def _query_error(message: str, text: str | None, position: int | None) -> None:
    lines = [f"Error: {message}"]
    if text is not None and position is not None and position <= len(text):
        lines += [f"  {text}", "  " + " " * position + "^"]
    click.echo("\n".join(lines), err=True)
    sys.exit(EXIT_USAGE)


def _text(value: str) -> str:
    """TEXT as given, or standard input for '-'."""
    return sys.stdin.read() if value == "-" else value


def _show(as_json: bool, record: Any, printer: Callable[[Any], None]) -> None:
    """RECORD as JSON (its to_dict()) or through PRINTER."""
    if as_json:
        emit_json(record.to_dict())
    else:
        printer(record)


def _short(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# ---------------------------------------------------------------------------------------------- tag


@click.group("tag", context_settings=CONTEXT_SETTINGS)
def tag_group() -> None:
    """Tag messages (responsive, privileged, hot, ...), untag them, manage the case's tag list.

    Tag messages by id, or every message a search finds (--query, with --context messages around
    each hit) after confirming the count. Every change records who and when; removing a tag keeps
    its history. Search by tag with tag:hot, -tag:hot, is:tagged, is:untagged.

    \b
    Example:
        discovery tag add m044238d6be100d9bba1 --tag hot --case ./case
        discovery tag add --query 'whitewash' --context 2 --tag responsive --yes --case ./case
        discovery search 'tag:hot -tag:privileged' --case ./case
    """


def _bulk_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.argument("message_ids", nargs=-1, metavar="[ID]..."),
        click.option("--tag", "tags", multiple=True, required=True, metavar="TAG",
                     help="The tag (repeat for several)."),
        click.option("--query", metavar="QUERY", help="Instead of ids: every message this search finds."),
        click.option("--filter", "filters", multiple=True, metavar="QUERY",
                     help="With --query: a further condition ANDed with it (repeatable)."),
        click.option("--context", default=0, show_default=True, type=click.IntRange(0, 50),
                     help="With --query: also the messages this close to each hit in its conversation."),
        click.option("--expect", type=click.IntRange(0), metavar="N",
                     help="With --query: the count you confirmed; refuse if the search now finds another."),
        click.option("--yes", is_flag=True, help="With --query: do not ask for confirmation."),
        case_option(), as_option(), json_option(),
    ]):
        command = option(command)
    return command


def _tag_change(message_ids: tuple[str, ...], tags: tuple[str, ...], query: str | None, filters: tuple[str, ...],
                context: int, expect: int | None, yes: bool, case_dir: str, as_user: str | None, as_json: bool,
                remove: bool) -> None:
    if bool(message_ids) == (query is not None):
        raise click.UsageError("give message ids, or --query (not both)")
    if query is None and (filters or context or expect is not None or yes):
        raise click.UsageError("--filter, --context, --expect and --yes go with --query")
    verb = "untag" if remove else "tag"
    changes = []
    with _case(case_dir, query) as case:
        actor = _actor(case, as_user, WRITERS)
        for name in tags:
            review.get_tag(case, name)  # every tag checked before anything changes
        for name in tags:
            if query is None:
                apply = review.remove_tag if remove else review.add_tag
                change = apply(case, message_ids, name, actor=actor.name, address=actor.address)
            else:
                expected = expect
                if expected is None:
                    counts = review.count_query(case, query, filters=list(filters), context=context)
                    expected = counts["messages"]
                    if not yes:
                        click.confirm(f"{verb.capitalize()} {counts['messages']} messages ({counts['hits']} hits, "
                                      f"{counts['context']} context) {'from' if remove else 'with'} {name!r}?",
                                      abort=True, err=True)
                change = review.tag_query(case, query, name, remove=remove, filters=list(filters), context=context,
                                          expected=expected, actor=actor.name, address=actor.address)
            changes.append(change)
    if as_json:
        emit_json([change.to_dict() for change in changes])
        return
    for change in changes:
        if remove:
            click.echo(f"{change.tag}: removed from {len(change.changed)} messages "
                       f"({len(change.unchanged)} did not have it)")
        else:
            click.echo(f"{change.tag}: added to {len(change.changed)} messages "
                       f"({len(change.unchanged)} already had it)")


@tag_group.command("add", context_settings=CONTEXT_SETTINGS)
@_bulk_options
def tag_add(message_ids: tuple[str, ...], tags: tuple[str, ...], query: str | None, filters: tuple[str, ...],
            context: int, expect: int | None, yes: bool, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Put tags on messages: the IDs given, or every message --query finds (asks to confirm the count).

    \b
    Example:
        discovery tag add m044238d6be100d9bba1 m3729745350dba2b9392 --tag hot --case ./case
        discovery tag add --query 'whitewash' --context 2 --tag responsive --expect 9 --case ./case --json
    """
    _tag_change(message_ids, tags, query, filters, context, expect, yes, case_dir, as_user, as_json, remove=False)


@tag_group.command("remove", context_settings=CONTEXT_SETTINGS)
@_bulk_options
def tag_remove(message_ids: tuple[str, ...], tags: tuple[str, ...], query: str | None, filters: tuple[str, ...],
               context: int, expect: int | None, yes: bool, case_dir: str, as_user: str | None,
               as_json: bool) -> None:
    """Take tags off messages (the IDs given, or every message --query finds); the history stays.

    \b
    Example:
        discovery tag remove m044238d6be100d9bba1 --tag hot --case ./case
        discovery tag remove --query 'tag:hot date:2024-03' --tag hot --yes --case ./case
    """
    _tag_change(message_ids, tags, query, filters, context, expect, yes, case_dir, as_user, as_json, remove=True)


@tag_group.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--message", "message_ids", multiple=True, metavar="ID",
              help="Show the tags on this message instead (repeatable).")
@case_option()
@json_option()
def tag_list(message_ids: tuple[str, ...], case_dir: str, as_json: bool) -> None:
    """List the case's tags (colour, review key, how many messages carry each), or a message's tags.

    \b
    Example:
        discovery tag list --case ./case
        discovery tag list --message m044238d6be100d9bba1 --case ./case --json
    """
    with _case(case_dir) as case:
        if message_ids:
            applied = review.message_tags(case, message_ids)
            data: Any = {mid: [t.to_dict() for t in tags] for mid, tags in applied.items()}
        else:
            facet = review.tag_counts(case)
            counts = {t.name: t.count for t in facet.tags}
            data = {"tags": [{**t.to_dict(), "messages": counts.get(t.name, 0)} for t in review.list_tags(case)],
                    "tagged": facet.tagged, "untagged": facet.untagged}
    if as_json:
        emit_json(data)
    elif message_ids:
        for mid, tags in data.items():
            names = ", ".join(f"{t['name']} ({t['added_by']}, {t['added_at']})" for t in tags) or "(no tags)"
            click.echo(f"{mid}: {names}")
    else:
        for tag in data["tags"]:
            key = tag["shortcut"] or " "
            click.echo(f"[{key}] {tag['name']:<24} {tag['colour']}  {tag['messages']:>7} messages")
        click.echo(f"{data['tagged']} messages tagged, {data['untagged']} untagged")


@tag_group.command("define", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--colour", "--color", "colour", metavar="#RRGGBB", help="Its colour (default: the next of a palette).")
@click.option("--description", metavar="TEXT", help="What the tag means, for reviewers.")
@case_option()
@as_option()
@json_option()
def tag_define(name: str, colour: str | None, description: str | None, case_dir: str, as_user: str | None,
               as_json: bool) -> None:
    """Add a tag to the case's list (admins). The first nine tags are the review keys 1-9.

    \b
    Example:
        discovery tag define 'key document' --colour '#1565c0' --case ./case
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, ("admin",))
        tag = review.define_tag(case, name, colour, description=description, actor=actor.name,
                                address=actor.address)
    if as_json:
        emit_json(tag.to_dict())
    else:
        click.echo(f"defined {tag.name} ({tag.colour})" + (f", review key {tag.shortcut}" if tag.shortcut else ""))


@tag_group.command("edit", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--colour", "--color", "colour", metavar="#RRGGBB", help="A new colour.")
@click.option("--rename", "new_name", metavar="NAME", help="A new name (tagged messages keep the tag).")
@click.option("--description", metavar="TEXT", help="A new description.")
@case_option()
@as_option()
@json_option()
def tag_edit(name: str, colour: str | None, new_name: str | None, description: str | None, case_dir: str,
             as_user: str | None, as_json: bool) -> None:
    """Recolour, rename or redescribe a tag (admins).

    \b
    Example:
        discovery tag edit hot --colour '#ff0000' --case ./case
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, ("admin",))
        tag = review.update_tag(case, name, colour=colour, new_name=new_name, description=description,
                                actor=actor.name, address=actor.address)
    if as_json:
        emit_json(tag.to_dict())
    else:
        click.echo(f"{tag.name} ({tag.colour})")


@tag_group.command("history", context_settings=CONTEXT_SETTINGS)
@click.option("--message", "message_id", metavar="ID", help="Only this message.")
@click.option("--tag", "tag", metavar="TAG", help="Only this tag.")
@click.option("--limit", type=click.IntRange(1), metavar="N", help="Only the last N changes.")
@case_option()
@json_option()
def tag_history(message_id: str | None, tag: str | None, limit: int | None, case_dir: str, as_json: bool) -> None:
    """Every tag added and removed, who did it and when (oldest first).

    \b
    Example:
        discovery tag history --message m044238d6be100d9bba1 --case ./case
    """
    with _case(case_dir) as case:
        events = review.tag_history(case, message_id=message_id, tag=tag, limit=limit)
    if as_json:
        emit_json([e.to_dict() for e in events])
        return
    for e in events:
        click.echo(f"{e.at}  {e.actor:<20} {'+' if e.action == 'add' else '-'}{e.tag:<20} {e.message_id}")


# ---------------------------------------------------------------------------------------------- note


@click.group("note", context_settings=CONTEXT_SETTINGS)
def note_group() -> None:
    """Notes on messages: add, edit, delete (every revision is kept), list; search them with note:.

    \b
    Example:
        discovery note add m044238d6be100d9bba1 'Ask Wei who asked for this' --case ./case
        discovery search 'note:wei' --case ./case
    """


def _print_note(note: review.Note) -> None:
    state = " [deleted]" if note.deleted else ""
    click.echo(f"#{note.id} on {note.message_id} by {note.updated_by} at {note.updated_at} "
               f"(revision {note.revisions}){state}")
    if note.text:
        click.echo("  " + note.text.replace("\n", "\n  "))


@note_group.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("message_id")
@click.argument("text")
@case_option()
@as_option()
@json_option()
def note_add(message_id: str, text: str, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Add a note to a message (TEXT, or '-' to read it from standard input).

    \b
    Example:
        discovery note add m044238d6be100d9bba1 'Ask Wei who asked for this' --case ./case
        echo 'long note' | discovery note add m044238d6be100d9bba1 - --case ./case --json
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, WRITERS)
        note = review.add_note(case, message_id, _text(text), actor=actor.name, address=actor.address)
    _show(as_json, note, _print_note)


@note_group.command("edit", context_settings=CONTEXT_SETTINGS)
@click.argument("note_id", type=int)
@click.argument("text")
@case_option()
@as_option()
@json_option()
def note_edit(note_id: int, text: str, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Replace a note's text (a new revision; the earlier ones are kept). Its author or an admin only.

    \b
    Example:
        discovery note edit 3 'Wei confirmed: Marcus asked' --case ./case
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, WRITERS)
        note = review.edit_note(case, note_id, _text(text), actor=actor.name, address=actor.address,
                                admin=actor.admin)
    _show(as_json, note, _print_note)


@note_group.command("delete", context_settings=CONTEXT_SETTINGS)
@click.argument("note_id", type=int)
@case_option()
@as_option()
@json_option()
def note_delete(note_id: int, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Delete a note (a deleting revision: its history stays in the case). Its author or an admin only.

    \b
    Example:
        discovery note delete 3 --case ./case
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, WRITERS)
        note = review.delete_note(case, note_id, actor=actor.name, address=actor.address, admin=actor.admin)
    _show(as_json, note, _print_note)


@note_group.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--message", "message_id", metavar="ID", help="Only the notes on this message.")
@click.option("--deleted", is_flag=True, help="Include deleted notes.")
@case_option()
@json_option()
def note_list(message_id: str | None, deleted: bool, case_dir: str, as_json: bool) -> None:
    """List notes (all of the case's, or one message's), oldest first.

    \b
    Example:
        discovery note list --message m044238d6be100d9bba1 --case ./case --json
    """
    with _case(case_dir) as case:
        notes = review.list_notes(case, message_id, include_deleted=deleted)
    if as_json:
        emit_json([n.to_dict() for n in notes])
        return
    for note in notes:
        _print_note(note)


@note_group.command("history", context_settings=CONTEXT_SETTINGS)
@click.argument("note_id", type=int)
@case_option()
@json_option()
def note_history(note_id: int, case_dir: str, as_json: bool) -> None:
    """Every revision of a note: its text, who wrote it and when.

    \b
    Example:
        discovery note history 3 --case ./case
    """
    with _case(case_dir) as case:
        revisions = review.note_history(case, note_id)
    if as_json:
        emit_json([r.to_dict() for r in revisions])
        return
    for r in revisions:
        click.echo(f"revision {r.revision} by {r.actor} at {r.at}" + (" [deleted]" if r.deleted else ""))
        if r.text:
            click.echo("  " + r.text.replace("\n", "\n  "))


# ---------------------------------------------------------------------------------------------- saved


@click.group("saved", context_settings=CONTEXT_SETTINGS)
def saved_group() -> None:
    """Saved searches: name a query with its filters, rerun it, share it with the case.

    A rerun shows the hit count when the search was saved and now, so you see what new ingests
    (or new tags) added.

    \b
    Example:
        discovery saved add 'refund cover-up' 'whitewash OR 洗白' --filter 'date:2024' --case ./case
        discovery saved run 'refund cover-up' --case ./case
    """


def _print_saved(saved: review.SavedSearch) -> None:
    shared = "shared" if saved.shared else "private"
    filters = "".join(f" AND {f}" for f in saved.filters)
    last = f", {saved.last_run_hits} at {saved.last_run_at}" if saved.last_run_at else ""
    click.echo(f"{saved.id:>4}  {saved.name}  [{saved.owner}, {shared}]  {saved.query!r}{filters}  "
               f"({saved.hits_at_save} hits when saved{last})")


@saved_group.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("query")
@click.option("--filter", "filters", multiple=True, metavar="QUERY", help="A condition ANDed with QUERY (repeatable).")
@click.option("--context", default=3, show_default=True, type=click.IntRange(0, 50), help="Context to show on rerun.")
@click.option("--sort", type=click.Choice(["relevance", "time_asc", "time_desc"]), default="relevance",
              show_default=True)
@click.option("--shared", is_flag=True, help="Visible to every user of the case.")
@case_option()
@as_option()
@json_option()
def saved_add(name: str, query: str, filters: tuple[str, ...], context: int, sort: str, shared: bool, case_dir: str,
              as_user: str | None, as_json: bool) -> None:
    """Save QUERY (with its filters) under NAME; its hit count now is kept.

    \b
    Example:
        discovery saved add 'refund cover-up' 'whitewash OR 洗白' --filter 'date:2024' --shared --case ./case
    """
    with _case(case_dir, query) as case:
        actor = _actor(case, as_user, WRITERS)
        saved = review.save_search(case, name, query, filters=list(filters), context=context, sort=sort,
                                   shared=shared, actor=actor.name, address=actor.address)
    _show(as_json, saved, _print_saved)


@saved_group.command("list", context_settings=CONTEXT_SETTINGS)
@case_option()
@as_option()
@json_option()
def saved_list(case_dir: str, as_user: str | None, as_json: bool) -> None:
    """List saved searches (with --as: that user's own and the shared ones).

    \b
    Example:
        discovery saved list --case ./case --json
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user)
        rows = review.list_saved(case, user=actor.user)
    if as_json:
        emit_json([s.to_dict() for s in rows])
        return
    for saved in rows:
        _print_saved(saved)


@saved_group.command("run", context_settings=CONTEXT_SETTINGS)
@click.argument("ref", metavar="NAME_OR_NUMBER")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 1000),
              help="Hits to show (0: only the counts).")
@case_option()
@as_option()
@json_option()
def saved_run(ref: str, limit: int, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Rerun a saved search: its hit count then and now, and its first hits.

    \b
    Example:
        discovery saved run 'refund cover-up' --case ./case
        discovery saved run 3 --limit 0 --case ./case --json
    """
    from discovery.search import search

    with _case(case_dir) as case:
        actor = _actor(case, as_user)
        run = review.run_saved(case, ref, user=actor.user, actor=actor.name, address=actor.address)
        saved = run.saved
        result = None
        if limit:
            result = search(case, saved.query, context=saved.context, limit=limit, sort=saved.sort,
                            filters=saved.filter_nodes())
            audit.record(case, "search", {"query": saved.query, "filters": saved.filters, "saved": saved.id,
                                          "context": saved.context, "sort": saved.sort, "total": result.total},
                         actor=actor.name, address=actor.address)
    if as_json:
        emit_json({**run.to_dict(), "result": result.to_dict() if result else None})
        return
    click.echo(f"{saved.name}: {run.hits_now} hits now, {run.hits_then} when saved ({saved.created_at})"
               + (f", {run.hits_previous_run} at the previous run" if run.hits_previous_run is not None else ""))
    for number, hit in enumerate(result.hits if result else [], start=1):
        message = hit.message
        click.echo(f"{number:>4}. {message['id']}  {message['sent_at'][:19]}Z  {message['conversation_name']}  "
                   f"{message['sender_name'] or ''}: {_short(message['text'])}")


@saved_group.command("share", context_settings=CONTEXT_SETTINGS)
@click.argument("ref", metavar="NAME_OR_NUMBER")
@click.option("--off", is_flag=True, help="Stop sharing it.")
@case_option()
@as_option()
@json_option()
def saved_share(ref: str, off: bool, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Share a saved search with every user of the case (or stop, with --off). Owner or admin only.

    \b
    Example:
        discovery saved share 'refund cover-up' --case ./case
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, WRITERS)
        saved = review.share_saved(case, ref, not off, actor=actor.name, address=actor.address, admin=actor.admin)
    _show(as_json, saved, _print_saved)


@saved_group.command("delete", context_settings=CONTEXT_SETTINGS)
@click.argument("ref", metavar="NAME_OR_NUMBER")
@case_option()
@as_option()
@json_option()
def saved_delete(ref: str, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Delete a saved search (owner or admin; recorded, and kept in case.db as deleted).

    \b
    Example:
        discovery saved delete 3 --case ./case
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, WRITERS)
        saved = review.delete_saved(case, ref, actor=actor.name, address=actor.address, admin=actor.admin)
    if as_json:
        emit_json(saved.to_dict())
    else:
        click.echo(f"deleted saved search {saved.id} ({saved.name})")


# ---------------------------------------------------------------------------------------------- sets


@click.group("sets", context_settings=CONTEXT_SETTINGS)
def sets_group() -> None:
    """Review sets: freeze what a search finds (with context) as a numbered set, walk it, export it.

    Items are numbered in conversation and time order; mark each reviewed (optionally tagging it)
    and watch the progress. Later ingests never change a set.

    \b
    Example:
        discovery sets create 'whitewash, first pass' 'whitewash OR 洗白' --context 2 --case ./case
        discovery sets next 1 --case ./case
        discovery sets review 1 4 --tag hot --case ./case
        discovery sets export 1 --out set1.zip --case ./case
    """


def _print_set(review_set: review.ReviewSet) -> None:
    filters = "".join(f" AND {f}" for f in review_set.filters)
    click.echo(f"{review_set.id:>4}  {review_set.name}  {review_set.query!r}{filters}  "
               f"context {review_set.context}: {review_set.items} items ({review_set.hits} hits), "
               f"reviewed {review_set.reviewed} of {review_set.items}  [{review_set.created_by}, "
               f"{review_set.created_at}]")


def _item_lines(case: Case, items: list[review.ReviewItem]) -> list[dict[str, Any]]:
    ids = [item.message_id for item in items]
    records = case.messages_by_id(ids)
    tags = review.message_tags(case, ids)
    notes = review.notes_for(case, ids)
    out = []
    for item in items:
        message = records.get(item.message_id)
        out.append({**item.to_dict(), "message": message, "tags": [t.to_dict() for t in tags[item.message_id]],
                    "notes": [n.to_dict() for n in notes[item.message_id]]})
    return out


def _print_item(line: dict[str, Any]) -> None:
    message = line["message"] or {}
    mark = "x" if line["reviewed"] else " "
    kind = ">" if line["hit"] else " "
    tags = "".join(f" [{t['name']}]" for t in line["tags"])
    click.echo(f"[{mark}] {line['position']:>5} {kind} {line['message_id']}  {message.get('sent_at', '')[:19]}Z  "
               f"{message.get('sender_name') or ''}: {_short(message.get('text') or '')}{tags}")
    for note in line["notes"]:
        click.echo(f"          note #{note['id']} ({note['updated_by']}): {_short(note['text'])}")


@sets_group.command("create", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("query")
@click.option("--filter", "filters", multiple=True, metavar="QUERY", help="A condition ANDed with QUERY (repeatable).")
@click.option("--context", default=3, show_default=True, type=click.IntRange(0, 50),
              help="Messages frozen before and after each hit, in its conversation.")
@case_option()
@as_option()
@json_option()
def sets_create(name: str, query: str, filters: tuple[str, ...], context: int, case_dir: str, as_user: str | None,
                as_json: bool) -> None:
    """Freeze what QUERY finds now (hits and their context) as a new, numbered review set.

    \b
    Example:
        discovery sets create 'whitewash, first pass' 'whitewash OR 洗白' --context 2 --case ./case
    """
    with _case(case_dir, query) as case:
        actor = _actor(case, as_user, WRITERS)
        review_set = review.create_set(case, name, query, filters=list(filters), context=context,
                                       actor=actor.name, address=actor.address)
    _show(as_json, review_set, _print_set)


@sets_group.command("list", context_settings=CONTEXT_SETTINGS)
@case_option()
@json_option()
def sets_list(case_dir: str, as_json: bool) -> None:
    """List the review sets with their progress.

    \b
    Example:
        discovery sets list --case ./case --json
    """
    with _case(case_dir) as case:
        sets = review.list_sets(case)
    if as_json:
        emit_json([s.to_dict() for s in sets])
        return
    for review_set in sets:
        _print_set(review_set)


@sets_group.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("set_id", metavar="SET", type=int)
@click.option("--items", "show_items", is_flag=True, help="List the items too (with their messages, tags, notes).")
@click.option("--unreviewed", is_flag=True, help="With --items: only items not reviewed yet.")
@click.option("--offset", default=0, type=click.IntRange(0), help="With --items: skip this many.")
@click.option("--limit", type=click.IntRange(1), help="With --items: at most this many.")
@case_option()
@as_option()
@json_option()
def sets_show(set_id: int, show_items: bool, unreviewed: bool, offset: int, limit: int | None, case_dir: str,
              as_user: str | None, as_json: bool) -> None:
    """A review set: its search, progress (reviewed x of y) and, with --items, its items.

    \b
    Example:
        discovery sets show 1 --items --unreviewed --limit 20 --case ./case
    """
    with _case(case_dir) as case:
        review_set = review.get_set(case, set_id)
        progress = review.set_progress(case, set_id)
        lines = None
        if show_items:
            actor = _actor(case, as_user)
            items = review.set_items(case, set_id, offset=offset, limit=limit, reviewed=False if unreviewed else None)
            lines = _item_lines(case, items)
            audit.record(case, "set_view", {"set": set_id, "positions": [i.position for i in items]},
                         actor=actor.name, address=actor.address)
    if as_json:
        emit_json({"set": review_set.to_dict(), "progress": progress.to_dict(), "items": lines})
        return
    _print_set(review_set)
    click.echo(f"      {review_set.explained}")
    click.echo(f"      reviewed {progress.reviewed} of {progress.items} (hits: {progress.hits_reviewed} of "
               f"{progress.hits})" + "".join(f"; {who}: {n}" for who, n in progress.by_reviewer.items()))
    for line in lines or []:
        _print_item(line)


@sets_group.command("next", context_settings=CONTEXT_SETTINGS)
@click.argument("set_id", metavar="SET", type=int)
@click.option("--after", default=0, type=click.IntRange(0), help="Start after this item number.")
@click.option("--hits-only", is_flag=True, help="Skip context items.")
@case_option()
@as_option()
@json_option()
def sets_next(set_id: int, after: int, hits_only: bool, case_dir: str, as_user: str | None, as_json: bool) -> None:
    """The next item not reviewed yet (after --after), with its message, tags and notes.

    Exit status 1 when every item (after --after) is reviewed.

    \b
    Example:
        discovery sets next 1 --case ./case --json
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user)
        item = review.next_item(case, set_id, after, hits_only=hits_only)
        line = _item_lines(case, [item])[0] if item else None
        if item is not None:
            audit.record(case, "view_message", {"id": item.message_id, "set": set_id, "position": item.position},
                         actor=actor.name, address=actor.address)
    if as_json:
        emit_json(line)
    elif line:
        _print_item(line)
    else:
        click.echo("nothing left to review", err=True)
    if line is None:
        sys.exit(1)


@sets_group.command("review", context_settings=CONTEXT_SETTINGS)
@click.argument("set_id", metavar="SET", type=int)
@click.argument("positions", metavar="ITEM...", nargs=-1, required=True, type=click.IntRange(1))
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Also put this tag on the item (repeatable).")
@click.option("--untag", "untags", multiple=True, metavar="TAG", help="Also take this tag off (repeatable).")
@click.option("--undo", is_flag=True, help="Mark the items not reviewed instead.")
@case_option()
@as_option()
@json_option()
def sets_review(set_id: int, positions: tuple[int, ...], tags: tuple[str, ...], untags: tuple[str, ...], undo: bool,
                case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Mark items of a set reviewed (by their numbers), optionally tagging them.

    \b
    Example:
        discovery sets review 1 4 5 6 --tag responsive --case ./case
        discovery sets review 1 7 --tag hot --untag responsive --case ./case --json
        discovery sets review 1 7 --undo --case ./case
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user, WRITERS)
        for position in positions:
            review.set_item(case, set_id, position)  # every number checked before anything changes
        items = [review.review_item(case, set_id, position, reviewed=not undo, tags=tags, untags=untags,
                                    actor=actor.name, address=actor.address) for position in positions]
        progress = review.set_progress(case, set_id)
    if as_json:
        emit_json({"items": [i.to_dict() for i in items], "progress": progress.to_dict()})
        return
    click.echo(f"{'unmarked' if undo else 'reviewed'} {len(items)} items; reviewed {progress.reviewed} of "
               f"{progress.items}")


@sets_group.command("export", context_settings=CONTEXT_SETTINGS)
@click.argument("set_id", metavar="SET", type=int)
@click.option("--out", "out_path", required=True, metavar="BUNDLE.zip",
              type=click.Path(dir_okay=False, writable=True), help="Where to write the bundle (a zip).")
@click.option("--bates-prefix", default="DISC", show_default=True, metavar="P", help="Bates prefix.")
@click.option("--bates-start", default=1, show_default=True, type=click.IntRange(1), metavar="N",
              help="The first Bates number.")
@click.option("--slice", "slice_name", default="conversation", show_default=True,
              type=click.Choice(["24h", "12h", "8h", "conversation"]), help="How RSMF documents are cut.")
@click.option("--tz", default="UTC", show_default=True, metavar="ZONE", help="IANA time zone for slicing and display.")
@case_option()
@as_option()
@json_option()
def sets_export(set_id: int, out_path: str, bates_prefix: str, bates_start: int, slice_name: str, tz: str,
                case_dir: str, as_user: str | None, as_json: bool) -> None:
    """Export exactly the set's frozen messages as a verifiable evidence bundle (see `discovery export`).

    \b
    Example:
        discovery sets export 1 --out set1.zip --case ./case
        discovery verify set1.zip
    """
    with _case(case_dir) as case:
        actor = _actor(case, as_user)
        try:
            report = review.export_set(case, set_id, out_path, actor=actor.name, address=actor.address,
                                       bates_prefix=bates_prefix, bates_start=bates_start, slice=slice_name, tz=tz)
        except review.ReviewError:
            raise
        except ValueError as error:
            raise click.UsageError(str(error)) from error
    if as_json:
        emit_json(report.to_dict())
        return
    counts = report.counts
    click.echo(f"wrote {report.path}: {counts['messages']} messages of set {set_id} in {counts['conversations']} "
               f"conversations, {counts['documents']} RSMF documents")
    click.echo(f"fingerprint (SHA-256 of manifest.json): {report.manifest_sha256}")


COMMANDS = [tag_group, note_group, saved_group, sets_group]
