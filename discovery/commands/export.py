"""`discovery export` and `discovery verify`: evidence bundles out, and checked with nothing but the bundle."""

from __future__ import annotations

import sys
from typing import Any

import click

from discovery import audit
from discovery.commands._common import CONTEXT_SETTINGS, case_option, emit_json, open_case, usage_error


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("query")
@case_option()
@click.option("--out", "out_path", required=True, metavar="BUNDLE.zip",
              type=click.Path(dir_okay=False, writable=True), help="Where to write the bundle (a zip).")
@click.option("--context", default=3, show_default=True, type=click.IntRange(0, 50),
              help="Messages kept before and after each hit, in its conversation.")
@click.option("--terms", "terms_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="Search terms, one query per line: adds search_term_report.csv (each term ANDed with QUERY).")
@click.option("--bates-prefix", default="DISC", show_default=True, metavar="P",
              help="Bates prefix: letters, digits, '-' or '_'.")
@click.option("--bates-start", default=1, show_default=True, type=click.IntRange(1), metavar="N",
              help="The first Bates number.")
@click.option("--slice", "slice_name", default="conversation", show_default=True,
              type=click.Choice(["24h", "12h", "8h", "conversation"]),
              help="One RSMF document per conversation per day, half or third of a day (in --tz), or per "
                   "whole conversation.")
@click.option("--tz", default="UTC", show_default=True, metavar="ZONE",
              help="IANA time zone for slicing and for the times people read (data files stay UTC).")
@click.option("--created-by", metavar="NAME", help="Who made the bundle (default: the login name).")
@click.option("--json", "as_json", is_flag=True, help="Print the export report as JSON.")
def export(query: str, case_dir: str, out_path: str, context: int, terms_file: str | None, bates_prefix: str,
           bates_start: int, slice_name: str, tz: str, created_by: str | None, as_json: bool) -> None:
    """Export what QUERY finds, with its context, as a verifiable evidence bundle (a zip).

    The bundle holds README.txt, manifest.json, SHA256SUMS, messages.jsonl, messages.csv,
    transcript.html, RSMF 2.0 files (rsmf/), their text (text/), a Concordance DAT load file
    with Bates numbers, chain_of_custody.json, and search_term_report.csv with --terms. Each
    message carries its review tags and notes as of the export (everywhere but the RSMF files,
    which hold the source conversation only). Use '' as QUERY for every message. The printed
    fingerprint (SHA-256 of manifest.json) identifies the bundle; record it when you hand the
    bundle over.

    \b
    Example:
        discovery export 'whitewash OR 洗白' --case ./case --out bundle.zip --context 5
        discovery export 'audit date:2024-03' --case ./case --out march.zip --terms terms.txt \\
            --bates-prefix ACME --bates-start 1001 --slice 24h --tz Asia/Shanghai
        discovery verify bundle.zip
    """
    from discovery.export import export_bundle
    from discovery.query import QueryError
    from discovery.terms import TermError, read_terms

    terms = read_terms(terms_file) if terms_file else None
    case = open_case(case_dir)
    asked = {"query": query, "out": out_path, "context": context, "terms": terms, "slice": slice_name, "tz": tz,
             "bates_prefix": bates_prefix, "bates_start": bates_start}
    started: list[dict[str, Any]] = []

    def audit_hook(event: dict[str, Any]) -> list[dict[str, Any]]:
        """The export's own audit entry, written before the bundle closes so chain_of_custody.json holds it."""
        entry = audit.record(case, "export", {**asked, "counts": event.get("counts")}, outcome="started")
        started.append(entry)
        return [entry]

    try:
        report = export_bundle(case, query, out_path, context=context, terms=terms, bates_prefix=bates_prefix,
                               bates_start=bates_start, slice=slice_name, tz=tz, created_by=created_by,
                               audit_hook=audit_hook)
    except (QueryError, TermError, ValueError) as error:
        audit.record(case, "export", {**asked, "error": str(error)}, outcome="error")
        case.close()
        if isinstance(error, QueryError):
            usage_error(str(error), query, error.position)
        if isinstance(error, TermError):
            usage_error(f"{terms_file}: {error}", error.term, error.position)
        raise click.UsageError(str(error)) from error
    audit.record(case, "export", {**asked, "bundle_id": report.bundle_id, "fingerprint": report.manifest_sha256,
                                  "zip_sha256": report.bundle_sha256, "counts": report.counts,
                                  "started_seq": started[0]["seq"] if started else None})
    case.close()
    if as_json:
        emit_json(report.to_dict())
        return
    counts = report.counts
    bates = f", Bates {report.bates_first} - {report.bates_last}" if report.bates_first else ""
    click.echo(f"wrote {report.path}: {counts['messages']} messages ({counts['hits']} hits, {counts['context']} "
               f"context) in {counts['conversations']} conversations, {counts['documents']} RSMF documents{bates}")
    click.echo(f"review decisions as of now: {counts['tagged_messages']} tagged messages, {counts['notes']} notes")
    click.echo(f"fingerprint (SHA-256 of manifest.json): {report.manifest_sha256}")
    click.echo(f"zip SHA-256: {report.bundle_sha256} ({report.bytes} bytes, {report.seconds} s)")


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option("--fingerprint", metavar="SHA256",
              help="The SHA-256 of manifest.json recorded when the bundle was handed over; fail if it differs.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def verify(bundle: str, fingerprint: str | None, as_json: bool) -> None:
    """Check an evidence bundle: every file present, listed and unaltered, and consistent inside.

    Recomputes every SHA-256 and checks it against manifest.json and SHA256SUMS, looks for files
    missing or added, and checks the load file's Bates ranges and every RSMF file's structure,
    references and headers. Needs nothing but the bundle. Exit status 0 when it verifies, 1 when
    it does not (every file missing, added or altered is named).

    \b
    Example:
        discovery verify bundle.zip
        discovery verify bundle.zip --fingerprint 3b4c...e9 --json
    """
    from discovery.export.verify import verify_bundle

    result = verify_bundle(bundle, expect_fingerprint=fingerprint)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.text())
    sys.exit(0 if result.ok else 1)


COMMANDS = [export, verify]
