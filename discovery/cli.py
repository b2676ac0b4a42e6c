"""The `discovery` command: a thin shell over the library (parse options, call, format output)."""

from __future__ import annotations

import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from discovery import __version__, audit
from discovery.commands import register_commands
from discovery.commands._common import (
    CONTEXT_SETTINGS,
    case_option,
    emit_json,
    open_case,
    storage_error,
    usage_error,
)
from discovery.engine import IndexUnusableError
from discovery.index_state import CaseBusyError


class _Cli(click.Group):
    """The command group; an index that cannot answer, a busy case, or a case that cannot be written
    (a full disk) ends any command with its message, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (IndexUnusableError, CaseBusyError) as error:
            usage_error(str(error))
        except (sqlite3.Error, OSError) as error:
            storage_error(error)


@click.group(cls=_Cli, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="discovery")
def cli() -> None:
    """Search exported chat logs as evidence: every hit in its context, traced to its source bytes.

    \b
    Example:
        discovery ingest fixtures/lark --case ./case --custodian "Li Wei"
        discovery search whitewash --case ./case --context 3
    """


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@case_option()
@click.option("--custodian", metavar="NAME", help="Whose data this is (recorded on every source and message).")
@click.option("--format", "fmt", default="auto", show_default=True, metavar="NAME",
              help="Force one adapter instead of detecting each file's format by content.")
@click.option("--no-copy", is_flag=True, help="Do not keep a read-only copy of each source under originals/.")
@click.option("--timezone", "tz", metavar="ZONE",
              help="IANA zone (e.g. Asia/Shanghai) for formats whose times have no offset; recorded on each message.")
@click.option("--map", "column_map", metavar="FIELD=COLUMN,...",
              help="Generic CSV/JSONL: which column holds which field, e.g. sender=From,sent_at=Date,text=Body.")
@click.option("--engine", type=click.Choice(["whoosh", "tantivy"]), default=None,
              help="Full-text engine of a NEW case (default whoosh; tantivy needs the optional extra). "
                   "A case keeps its engine: switch with `discovery reindex --engine`.")
@click.option("--json", "as_json", is_flag=True, help="Print the ingest report as JSON.")
def ingest(paths: tuple[str, ...], case_dir: str, custodian: str | None, fmt: str, no_copy: bool,
           tz: str | None, column_map: str | None, engine: str | None, as_json: bool) -> None:
    """Ingest chat exports (files, folders or zips) into a case.

    Exit status: 0 when everything went in, 3 when some records or files failed (each one is
    recorded; see `discovery exceptions`), 2 on usage errors. Ingesting the same export again
    adds nothing twice.

    \b
    Example:
        discovery ingest export.zip more/pages/ --case ./case --custodian "Wang Fang"
        discovery ingest big-export/ --case ./big-case --engine tantivy
    """
    from discovery.engines import EngineError, check_engine, use_engine
    from discovery.ingest import IngestInterrupted, IngestRefused, check_paths, ended_run, print_summary
    from discovery.ingest import ingest as run_ingest
    from discovery.sources import get_adapter
    from discovery.sources.base import ParseOptions

    if fmt != "auto":
        try:
            get_adapter(fmt)
        except KeyError as error:
            raise click.BadParameter(str(error.args[0]), param_hint="--format") from error
    options = ParseOptions(timezone=_checked_zone(tz), column_map=_parse_map(column_map))
    if options.column_map and fmt == "auto":
        fmt = "generic"  # a column map only means something to the generic CSV/JSONL reader
    if engine is not None:
        try:
            check_engine(engine)
        except EngineError as error:
            raise click.BadParameter(str(error), param_hint="--engine") from error
    try:
        check_paths(case_dir, paths)  # before the case folder is made
    except IngestRefused as error:
        usage_error(str(error))
    case = open_case(case_dir, create=True)
    if engine is not None:
        try:
            use_engine(case, engine)
        except EngineError as error:
            case.close()
            raise click.UsageError(str(error)) from error
    try:
        with _terminate_as_interrupt(), _progress_bar(paths) as advance:
            report = run_ingest(case, paths, custodian=custodian, format=fmt, copy_originals=not no_copy,
                                options=options, progress=advance, waiting=_say_waiting)
    # The run ended early and was recorded: interrupted, or a case or index that could not be written
    # (a full disk; an index writer that failed). Anything else is a bug: its traceback is wanted.
    except (IngestInterrupted, sqlite3.Error, OSError, RuntimeError) as error:
        ended = ended_run(error)
        if ended is None:
            raise
        if as_json:
            emit_json({**ended.report.to_dict(), "status": "interrupted", "reason": ended.reason})
        print_summary(ended.report)
        click.echo(ended.summary(), err=True)
        sys.exit(130 if ended.interrupted and ended.reason == CTRL_C else 1)
    case.close()
    if as_json:
        emit_json(report.to_dict())
    print_summary(report)
    sys.exit(report.exit_code)


CTRL_C = "Ctrl-C"


def _say_waiting(holder: str) -> None:
    who = f"process {holder}" if holder.isdigit() else holder
    click.echo(f"waiting for {who} (another ingest or reindex) to finish…", err=True)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise KeyboardInterrupt naming the signal while ingest runs, so a
    terminated run is recorded and kept like an interrupted one (see discovery.ingest)."""

    def interrupt(number: int, frame: object) -> None:
        raise KeyboardInterrupt(CTRL_C if number == signal.SIGINT else "SIGTERM")

    try:
        previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals stay as they are
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _checked_zone(zone: str | None) -> str | None:
    if zone is None:
        return None
    from dateutil import tz as dateutil_tz

    if dateutil_tz.gettz(zone) is None:
        raise click.BadParameter(f"unknown time zone {zone!r} (use an IANA name such as Europe/Berlin)",
                                 param_hint="--timezone")
    return zone


def _parse_map(text: str | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in filter(None, (text or "").split(",")):
        field_name, sep, column = pair.partition("=")
        if not sep or not field_name.strip() or not column.strip():
            raise click.BadParameter(f"{pair!r} is not FIELD=COLUMN", param_hint="--map")
        mapping[field_name.strip()] = column.strip()
    return mapping


class _progress_bar:
    """A byte-count progress bar on a terminal, silence elsewhere."""

    def __init__(self, paths: tuple[str, ...]):
        self.paths = paths
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        from discovery.sources.files import expand

        total = sum(f.size for path in self.paths for f in expand(path) if not isinstance(f, Exception))
        self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="ingest", file=sys.stderr)
        return self.bar.update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("query")
@case_option()
@click.option("--context", "context", default=3, show_default=True, type=click.IntRange(0, 50),
              help="Messages shown before and after each hit, in its conversation.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="Hits per page.")
@click.option("--offset", default=0, type=click.IntRange(0), help="Skip this many hits (paging).")
@click.option("--sort", type=click.Choice(["relevance", "time_asc", "time_desc"]), default="relevance",
              show_default=True)
@click.option("--explain", is_flag=True, help="Print the parsed query in plain words first.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (a stable contract).")
def search(query: str, case_dir: str, context: int, limit: int, offset: int, sort: str, explain: bool,
           as_json: bool) -> None:
    """Search a case; each hit is shown in its conversation with CONTEXT messages around it.

    Words match whole words (whitewash does not match whitewashing; whitewash* does); quote
    phrases; AND, OR, NOT and parentheses combine them.

    \b
    Example:
        discovery search 'whitewash OR 洗白' --case ./case --context 2
        discovery search '"debug logs"' --case ./case --json
    """
    from discovery.query import QueryError
    from discovery.query.explain import explain as explain_query
    from discovery.search import INCOMPLETE_INDEX
    from discovery.search import search as run_search

    case = open_case(case_dir)
    try:
        result = run_search(case, query, context=context, limit=limit, offset=offset, sort=sort)
    except QueryError as error:
        audit.record(case, "search", {"query": query, "error": str(error)}, outcome="error")
        usage_error(str(error), query, error.position)
    audit.record(case, "search", {"query": query, "context": context, "sort": sort, "offset": offset,
                                  "total": result.total, **result.audit_extras()})
    if not result.index_complete:
        click.echo(f"warning: {INCOMPLETE_INDEX}", err=True)
    if explain and not as_json:
        click.echo(f"query: {explain_query(result.parsed)}\n")
    if as_json:
        data = result.to_dict()
        if explain:
            data["explain"] = explain_query(result.parsed)
        emit_json(data)
    else:
        _print_hits(result)
    case.close()


def _print_hits(result: Any) -> None:
    shown = len(result.hits)
    click.echo(f"{result.total} hits for {result.query!r}" + (
        f" (showing {result.offset + 1}-{result.offset + shown})" if shown else ""))
    for number, hit in enumerate(result.hits, start=result.offset + 1):
        message = hit.message
        click.echo("")
        click.echo(click.style(
            f"── hit {number} · {message['conversation_name']} ({message['conversation_type'] or '?'}) · "
            f"{message['id']}", bold=True))
        for neighbour in hit.context:
            click.echo(_line(neighbour))


def _line(message: dict[str, Any]) -> str:
    marker = ">" if message.get("hit") else " "
    flags = "".join(
        f" [{flag}]" for flag, on in (("edited", message["edited"]), ("recalled", message["deleted"])) if on
    )
    text = _marked(message["text"], message.get("highlights", [])) if message.get("hit") else message["text"]
    if not text and message["attachments"]:
        text = ", ".join(a.get("name") or a.get("type") or "attachment" for a in message["attachments"])
    when = message["sent_at"].replace("T", " ")[:19] + "Z"
    text = text.replace("\n", " ⏎ ")
    sender = message["sender_name"] or ("(system)" if message["sender_kind"] == "system" else "(unknown sender)")
    return f"{marker} {when}  {sender}{flags}: {text}"


def _marked(text: str, spans: list[list[int]]) -> str:
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], click.style(text[start:end], bold=True, underline=True)]
        last = end
    out.append(text[last:])
    return "".join(out)


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("message_id")
@case_option()
@click.option("--context", default=3, show_default=True, type=click.IntRange(0, 50))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON, with the raw source record.")
def show(message_id: str, case_dir: str, context: int, as_json: bool) -> None:
    """Show one message with its context and its provenance (source file, SHA-256, locator).

    \b
    Example:
        discovery show m3f1c2a9b8d7e6f5a4b3 --case ./case --context 5
    """
    from discovery.search import show as run_show

    case = open_case(case_dir)
    found = run_show(case, message_id, context)
    audit.record(case, "view_message", {"id": message_id}, outcome="ok" if found else "not_found")
    case.close()
    if found is None:
        raise click.UsageError(f"no message with id {message_id!r} in this case")
    if as_json:
        emit_json(found)
        return
    message = found["message"]
    for neighbour in found["context"]:
        click.echo(_line(neighbour))
    source = message["source"]
    click.echo("")
    for label, value in (
        ("id", message["id"]), ("native id", message["native_id"]), ("format", message["source_format"]),
        ("conversation", f"{message['conversation_name']} ({message['conversation_id']})"),
        ("sent at", f"{message['sent_at']} (raw: {message['sent_at_raw']}; {message['tz_assumption']})"),
        ("source file", source["path"] + (f" ! {source['member']}" if source["member"] else "")),
        ("sha256", source["sha256"]), ("locator", source["locator"]),
    ):
        click.echo(f"{label:>13}: {value}")
    click.echo(f"{'raw record':>13}: {message['raw']}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@case_option()
@click.option("--json", "as_json", is_flag=True)
def stats(case_dir: str, as_json: bool) -> None:
    """Count what a case holds: messages, conversations, participants, sources, exceptions.

    \b
    Example:
        discovery stats --case ./case --json
    """
    case = open_case(case_dir)
    counts = case.stats()
    counts["engine"] = case.get_meta("engine")
    counts["index_state"] = case.get_meta("index_state")
    case.close()
    if as_json:
        emit_json(counts)
    else:
        for key, value in counts.items():
            click.echo(f"{key:>13}: {value}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@case_option()
@click.option("--json", "as_json", is_flag=True)
def exceptions(case_dir: str, as_json: bool) -> None:
    """List every record or file that could not be ingested, naming the file and where in it.

    \b
    Example:
        discovery exceptions --case ./case --json
    """
    case = open_case(case_dir)
    rows = case.exceptions()
    case.close()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no exceptions")
    for row in rows:
        where = row["path"] + (f"!{row['member']}" if row["member"] else "")
        locator = f" at {row['locator']}" if row["locator"] else ""
        click.echo(f"#{row['id']} run {row['run_id']}: {where}{locator}: {row['error']}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@case_option()
@click.option("--engine", type=click.Choice(["whoosh", "tantivy"]), default=None,
              help="Rebuild with this engine and make it the case's engine (default: the current one).")
def reindex(case_dir: str, engine: str | None) -> None:
    """Rebuild the full-text index from case.db (the index is derived data).

    \b
    Example:
        discovery reindex --case ./case
        discovery reindex --case ./case --engine tantivy
    """
    from discovery.engines import EngineError, check_engine
    from discovery.engines import reindex as run_reindex

    if engine is not None:
        try:
            check_engine(engine)
        except EngineError as error:
            raise click.BadParameter(str(error), param_hint="--engine") from error
    case = open_case(case_dir)
    count = run_reindex(case, engine)
    used = case.get_meta("engine")
    case.close()
    click.echo(f"reindexed {count} messages with {used}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True)
def formats(as_json: bool) -> None:
    """List the supported export formats and what each can and cannot contain.

    \b
    Example:
        discovery formats
    """
    from discovery.sources import adapters

    rows = [{"name": a.name, "source_format": a.source_format, "description": a.description,
             "limits": a.limits} for a in adapters()]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']} ({row['source_format']}): {row['description']}\n    limits: {row['limits']}")


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--messages", default=200_000, show_default=True, type=click.IntRange(100),
              help="How many messages to generate.")
@click.option("--workdir", type=click.Path(file_okay=False),
              help="Keep the corpus and case here (default: a temp dir).")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1), help="Runs of each query set.")
@click.option("--engine", "engines", metavar="NAME[,NAME]",
              help="Compare engines side by side in one run (whoosh, tantivy), each on its own case.")
@click.option("--no-export", is_flag=True, help="Skip the export measurement (all messages; with --engine, a query's).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON at the end.")
def bench(messages: int, workdir: str | None, repeats: int, engines: str | None, no_export: bool,
          as_json: bool) -> None:
    """Measure ingest speed, index size, peak memory and query latency on a generated corpus.

    The corpus is Lark-shaped (list-response pages of 50), seeded, so runs compare. Query classes:
    term, phrase, prefix and date-filtered, each with context windows of 3; p50/p95 in ms. Also the
    search page (GET /search?q=TERM&context=3, the full HTML page, against the real app served by
    waitress, logged in with a Bearer token of the case's "bench" investigator; server time from
    Server-Timing, with the CPU time beside it) and a 50-term search term report (seconds).
    --workdir keeps the generated corpus (reused when the same size is asked again) and the case
    (made anew on each run).

    With --engine, every listed engine ingests the same corpus into its own case (in a child
    process, so peak RSS is its own) and is timed on the same queries, plus proximity and wildcard
    classes and an export; a side-by-side table follows, with the floor (reading and hashing the
    export). --json then prints {"engines": {NAME: {"ingest_msgs_per_s", "index_mb", "peak_rss_mb",
    "p95_ms": {CLASS: ms}, "term_report_seconds", ...}}, "floor_msgs_per_s", ...}, the search page
    being the class "search_page".

    \b
    Example:
        discovery bench --messages 200000
        discovery bench --engine whoosh,tantivy --messages 200000 --json
    """
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    if engines is not None:
        from discovery.bench import run_engines
        from discovery.engines import EngineError, check_engine

        names = [name.strip() for name in engines.split(",") if name.strip()]
        if not names or len(set(names)) != len(names):
            raise click.BadParameter("give engine names once each, e.g. whoosh,tantivy", param_hint="--engine")
        try:
            for name in names:
                check_engine(name)
        except EngineError as error:
            raise click.BadParameter(str(error), param_hint="--engine") from error
        result = run_engines(messages, names, workdir=workdir, repeats=repeats, export=not no_export, log=log)
    else:
        from discovery.bench import run_bench

        result = run_bench(messages, workdir=workdir, repeats=repeats, log=log, export=not no_export)
    if as_json:
        emit_json(result)


register_commands(cli)


def main() -> None:  # pragma: no cover - console entry point
    cli()
