"""`discovery audit ...`: verify and export the case's hash-chained audit trail."""

from __future__ import annotations

import csv
import json
import sys

import click

from discovery import audit
from discovery.commands._common import CONTEXT_SETTINGS, case_option, emit_json, open_case


@click.group("audit", context_settings=CONTEXT_SETTINGS)
def audit_group() -> None:
    """Read and check the audit trail: every login, search, view, export, ingest and user change.

    \b
    Example:
        discovery audit verify --case ./case
    """


@audit_group.command("verify", context_settings=CONTEXT_SETTINGS)
@case_option()
@click.option("--json", "as_json", is_flag=True)
def verify(case_dir: str, as_json: bool) -> None:
    """Check the hash chain; name any entry edited, deleted, inserted or reordered (exit 1 if so).

    \b
    Example:
        discovery audit verify --case ./case
    """
    case = open_case(case_dir)
    verdict = audit.verify(case)
    case.close()
    if as_json:
        emit_json(verdict.to_dict())
    else:
        if verdict.ok:
            click.echo(f"OK: {verdict.entries} entries, chain intact; last hash {verdict.last_hash}")
        else:
            click.echo(f"TAMPERED: {len(verdict.problems)} problem(s) in {verdict.entries} entries")
            for problem in verdict.problems:
                click.echo(f"  - {problem}")
    sys.exit(0 if verdict.ok else 1)


@audit_group.command("export", context_settings=CONTEXT_SETTINGS)
@case_option()
@click.option("--json", "as_json", is_flag=True, help="JSON (the default is CSV).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row (the default).")
@click.option("--user", "actor", help="Only this actor's entries.")
@click.option("--action", help="Only this action (login, search, export, ...).")
@click.option("--since", help="Only entries at or after this ISO time (UTC).")
@click.option("--until", help="Only entries at or before this ISO time (UTC).")
def export(case_dir: str, as_json: bool, as_csv: bool, actor: str | None, action: str | None,
           since: str | None, until: str | None) -> None:
    """Print the audit trail (with each entry's hash) as CSV or JSON.

    \b
    Example:
        discovery audit export --case ./case --json --action export
    """
    case = open_case(case_dir)
    rows = audit.entries(case, actor=actor, action=action, since=since, until=until)
    case.close()
    if as_json:
        emit_json(rows)
        return
    writer = csv.writer(sys.stdout)
    writer.writerow(["seq", "at", "actor", "address", "action", "outcome", "details", "prev_hash", "hash"])
    for row in rows:
        writer.writerow([row["seq"], row["at"], row["actor"], row["address"], row["action"], row["outcome"],
                         json.dumps(row["details"], ensure_ascii=False), row["prev_hash"], row["hash"]])


COMMANDS = [audit_group]
