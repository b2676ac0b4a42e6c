"""Evidence bundles: what a search found, with its context, as one verifiable zip.

:func:`export_bundle` is the one entry point (the CLI's ``discovery export`` and the web export
button both call it); :func:`discovery.export.verify.verify_bundle` checks a bundle with nothing
but the bundle. Layout, coverage and the Bates scheme are described in README.txt of every
bundle (discovery.export.readme), in discovery.export.manifest and discovery.export.slices.

The export streams: the selection (hits and their context) lives in SQLite temp tables, messages
are read in chunks in export order, each output is written to a staging folder beside the bundle
one message or one document at a time, and the zip is then packed entry by entry (deflated ahead in
threads, discovery.export.bundle). A large export writes messages.jsonl, transcript.html and rsmf/ in
a worker process (discovery.export.pipeline); either way at most a few documents (each at most 10,000
messages) are held in memory at once.

Determinism: the same case, query and options give byte-identical files, except manifest.json,
which alone carries the creation time and the bundle id.

Review decisions travel with the messages: the tags and notes on each exported message as of the
export (read in the selection's snapshot, discovery.export.review_snapshot) are in messages.jsonl,
messages.csv, transcript.html and loadfile.dat, and counted in manifest.json (``review``) and
README.txt; they are not put into the RSMF files, which hold the source conversation only.
"""

from __future__ import annotations

import getpass
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from discovery import __version__
from discovery.case import Case, now_utc
from discovery.export import custody as custody_mod
from discovery.export import manifest as manifest_mod
from discovery.export.bundle import write_bundle
from discovery.export.csv_out import CsvWriter, write_rows
from discovery.export.dat import DatWriter
from discovery.export.pipeline import Documents
from discovery.export.readme import readme_text
from discovery.export.select import Selection
from discovery.export.slices import SLICES, Bates, documents, zone
from discovery.memory import peak_rss_mb
from discovery.query import QueryError, parse_filters
from discovery.query import ast as q
from discovery.query.explain import explain
from discovery.search import MAX_CONTEXT, highlight, parse_query

# An audit hook gets the export event (a dict: tool, who, query, filters, options, counts, files)
# before chain_of_custody.json is written and returns entries (JSON-able dicts) to add to its
# "audit" list, or None. The finished bundle's fingerprints are on the ExportReport.
AuditHook = Callable[[dict[str, Any]], Iterable[dict[str, Any]] | None]
Progress = Callable[[str, int], None]

__all__ = ["ExportReport", "QueryError", "export_bundle", "bench_export", "SLICES"]


@dataclass
class ExportReport:
    path: str
    bundle_id: str
    created_at: str
    manifest_sha256: str  # the bundle's fingerprint: manifest.json pins every other file's hash
    bundle_sha256: str  # of the zip file itself
    bytes: int
    files: int  # entries in the zip
    counts: dict[str, int] = field(default_factory=dict)
    bates_first: str | None = None
    bates_last: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_bundle(
    case: Case,
    query: str,
    out_path: str | Path,
    *,
    context: int = 3,
    terms: Sequence[str] | None = None,
    bates_prefix: str = "DISC",
    bates_start: int = 1,
    slice: str = "conversation",  # noqa: A002 - the option's name in the CLI and the issue
    tz: str = "UTC",
    created_by: str | None = None,
    filters: Sequence[Any] | None = None,
    audit_hook: AuditHook | None = None,
    progress: Progress | None = None,
    items: Iterable[tuple[str, bool]] | None = None,
) -> ExportReport:
    """Export every message QUERY hits in CASE, with CONTEXT messages around each, to the zip OUT_PATH.

    FILTERS are extra conditions ANDed with the query: parsed nodes (discovery.query.ast) or query
    strings. TERMS (queries) add search_term_report.csv, each term ANDed with the query and filters.
    SLICE cuts RSMF documents per conversation per 24h/12h/8h of the TZ calendar, or per whole
    conversation. PROGRESS, if given, is called with (stage, count). ITEMS, (message id, is a hit)
    pairs, export exactly those messages instead of running the query again (a frozen review set).

    Raises QueryError (with a position) for a malformed query, discovery.terms.TermError for a bad
    term, ValueError for a bad option. OUT_PATH appears only when the bundle is complete.
    """
    started = time.perf_counter()
    out = Path(out_path)
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: no such folder to write the bundle into")
    _check_options(context, slice, bates_prefix, bates_start)
    zone_info = zone(tz)
    filter_nodes, filter_texts = parse_filters(filters)
    node = parse_query(case, query, filter_nodes)
    step = progress or (lambda stage, count: None)
    step("search", 0)
    # Every message: read the ids from case.db (the index is derived from it) instead of the engine.
    if items is not None:  # an exact selection (a frozen review set): the query is not run again
        hit_ids = None
        chosen = Selection.exact(case, items)
    else:
        hit_ids = None if isinstance(node, q.MatchAll) else case.engine().all_ids(node)
        chosen = Selection.create(case, hit_ids, context)
    with chosen as selection, tempfile.TemporaryDirectory(
        dir=out.parent, prefix=".discovery-export-"
    ) as staging_name:
        del hit_ids
        staging = Path(staging_name)
        review = selection.review.counts()
        counts = {**selection.counts(), "tagged_messages": review["tagged_messages"], "notes": review["notes"]}
        conversations = selection.conversations()
        bates = Bates(bates_prefix, bates_start, counts["messages"])
        about = {
            "query": query, "filters": filter_texts, "explained": explain(node), "case": case.folder.name,
            "context": context, "counts": counts, "review": review, "tz": zone_info.key, "tool_version": __version__,
            "bates_range": (f"{bates(bates_start)} - {bates(bates_start + counts['messages'] - 1)}"
                            if counts["messages"] else "none"),
        }
        written = _write_messages(selection, staging, node, about, conversations, slice, zone_info, bates, step)
        counts = {**counts, **written}
        sources = custody_mod.sources(selection)
        counts["sources"] = len(sources["sources"])
        if terms is not None:
            _write_terms(case, staging, terms, context, node)
        options = {"context": context, "slice": slice, "tz": zone_info.key, "bates_prefix": bates_prefix,
                   "bates_start": bates_start, "terms": list(terms) if terms is not None else None}
        first = bates(bates_start) if counts["messages"] else None
        last = bates(bates_start + counts["messages"] - 1) if counts["messages"] else None
        who = created_by or _user()
        event = {
            "event": "export", "tool": "discovery", "tool_version": __version__, "created_by": who,
            "case": case.folder.name, "query": query, "filters": filter_texts, "explained": explain(node),
            "options": options, "counts": counts, "bates": {"first": first, "last": last},
            "time_and_bundle_id": "recorded in manifest.json (created_at, bundle_id)",
        }
        audit = [dict(entry) for entry in (audit_hook(event) or [])] if audit_hook else []
        (staging / "chain_of_custody.json").write_text(
            manifest_mod.dumps(custody_mod.custody(sources, event, audit)), encoding="utf-8")
        info = {**about, "counts": counts, "slice": slice, "bates_first": first, "bates_last": last,
                "terms": options["terms"]}
        (staging / "README.txt").write_text(readme_text(info), encoding="utf-8", newline="\n")
        step("zip", 0)
        bundle_id = str(uuid.uuid4())
        created_at = now_utc()
        manifest = {
            "format": manifest_mod.FORMAT, "format_version": manifest_mod.FORMAT_VERSION,
            "bundle_id": bundle_id, "created_at": created_at, "created_by": who,
            "tool": {"name": "discovery", "version": __version__},
            "case": _case_info(case),
            "query": {"text": query, "filters": filter_texts, "explained": explain(node)},
            "options": options, "counts": counts, "bates": {"prefix": bates_prefix, "first": first, "last": last,
                                                            "width": bates.width},
            "review": review,
            "coverage": manifest_mod.COVERAGE,
        }
        entries, bundle_sha256 = write_bundle(staging, manifest, out)
    fingerprint = next(e["sha256"] for e in entries if e["path"] == manifest_mod.MANIFEST)
    return ExportReport(
        path=str(out), bundle_id=bundle_id, created_at=created_at, manifest_sha256=fingerprint,
        bundle_sha256=bundle_sha256, bytes=out.stat().st_size, files=len(entries), counts=counts,
        bates_first=first, bates_last=last, seconds=round(time.perf_counter() - started, 3),
    )


def _write_messages(selection: Selection, staging: Path, node: Any, about: dict[str, Any],
                    conversations: list[Any], slice_name: str, zone_info: Any, bates: Bates,
                    step: Progress) -> dict[str, int]:
    """The one pass over the exported messages: each document's messages go to every per-message
    file, then the document itself becomes an RSMF file and a load-file row."""
    written = 0
    messages = _highlighted(selection.messages(), node)
    csv_out, dat = CsvWriter(staging), DatWriter(staging)
    try:
        # messages.jsonl, transcript.html and rsmf/ are written by Documents (in a worker process, if large)
        with Documents(staging, selection, about, conversations, zone_info) as docs:
            for doc in documents(messages, slice_name=slice_name, tz=zone_info, bates=bates):
                for message in doc.messages:
                    csv_out.add(message)
                for done, native in docs.add(doc):  # documents come back in order
                    dat.add(done, native)
                written += len(doc.messages)
                step("messages", written)
            for done, native in docs.finish():
                dat.add(done, native)
    finally:
        csv_out.close()
        dat.close()
    return {"documents": docs.files, "attachments": docs.attachments}


def _check_options(context: int, slice_name: str, prefix: str, start: int) -> None:
    if not 0 <= context <= MAX_CONTEXT:
        raise ValueError(f"context must be between 0 and {MAX_CONTEXT}, not {context}")
    if slice_name not in SLICES:
        raise ValueError(f"slice must be one of {', '.join(SLICES)}, not {slice_name!r}")
    Bates(prefix, start, 1)  # validates both


def _highlighted(messages: Iterator[dict[str, Any]], node: Any) -> Iterator[dict[str, Any]]:
    marks = q.has_text(node)  # a query of filters only (or none) matches no characters
    for message in messages:
        if message["hit"] and marks:
            highlight(node, message)
        else:
            message["highlights"] = []
        yield message


def _write_terms(case: Case, staging: Path, terms: Sequence[str], context: int, node: Any) -> None:
    from discovery.terms import CSV_COLUMNS, csv_rows, term_report

    scope = None if isinstance(node, q.MatchAll) else node
    report = term_report(case, terms, context=context, scope=scope)
    with open(staging / "search_term_report.csv", "w", encoding="utf-8-sig", newline="") as file:
        write_rows(file, CSV_COLUMNS, csv_rows(report))


def _case_info(case: Case) -> dict[str, Any]:
    return {
        "name": case.folder.name, "folder": str(case.folder.resolve()), "created_at": case.get_meta("created_at"),
        "schema_version": case.get_meta("schema_version"), "messages": case.stats()["messages"],
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def bench_export(case: Case, query: str = "", *, context: int = 3, workdir: str | Path | None = None,
                 verify: bool = True) -> dict[str, Any]:
    """Time one export of QUERY (and, with VERIFY, its verification); for ``discovery bench``.

    Peak RSS is the process's high-water mark (discovery.memory) before and after, so a rise shows what the
    export itself needed beyond what the process already held; ``worker_peak_rss_mb`` is the largest
    child process's (the export's worker, if it had one: discovery.export.pipeline). CPU seconds are
    this process's and its finished children's (the worker's), as wall time on a shared machine is noisy.
    """
    from discovery.export.verify import verify_bundle

    rss_before = _peak_rss_mb()
    cpu_before = _cpu_seconds()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="discovery-bench-export-") as folder:
        out = Path(folder) / "bundle.zip"
        report = export_bundle(case, query, out, context=context)
        cpu = [round(after - before, 2) for after, before in zip(_cpu_seconds(), cpu_before, strict=True)]
        result: dict[str, Any] = {
            "query": query, "context": context, "messages": report.counts["messages"],
            "hits": report.counts["hits"], "documents": report.counts["documents"],
            "export_seconds": report.seconds,
            "export_msgs_per_s": round(report.counts["messages"] / report.seconds, 1) if report.seconds else None,
            "export_cpu_seconds": cpu[0], "export_worker_cpu_seconds": cpu[1],
            "bundle_mb": round(report.bytes / 1024**2, 1),
            "peak_rss_mb_before": rss_before, "peak_rss_mb_after": _peak_rss_mb(),
            "worker_peak_rss_mb": _peak_rss_mb(resource.RUSAGE_CHILDREN),
        }
        if verify:
            started, started_cpu = time.perf_counter(), time.process_time()
            verdict = verify_bundle(out)
            result["verify_seconds"] = round(time.perf_counter() - started, 3)
            result["verify_cpu_seconds"] = round(time.process_time() - started_cpu, 3)
            result["verified"] = verdict.ok
    return result


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    if who == resource.RUSAGE_SELF:
        return peak_rss_mb()  # this process's own (ru_maxrss survives a spawn's exec)
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime
