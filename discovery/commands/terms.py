"""`discovery terms`: the search term report (STR) counsel negotiate search terms with."""

from __future__ import annotations

import io
import sys
from urllib.parse import urlencode

import click

from discovery import audit
from discovery.commands._common import CONTEXT_SETTINGS, case_option, emit_json, open_case, usage_error


def search_link(term: str, context: int) -> str:
    """The web search a report row stands for (relative to wherever `discovery serve` runs)."""
    return "/search?" + urlencode({"q": term, "context": context})


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("terms_file", type=click.Path(exists=True, dir_okay=False))
@case_option()
@click.option("--context", default=3, show_default=True, type=click.IntRange(0, 50),
              help="Context window counted into with_context, as in search.")
@click.option("--json", "as_json", is_flag=True, help="The JSON contract: {terms: [...], total: {...}}.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV for Excel (UTF-8 with BOM), with a link per row.")
def terms(terms_file: str, case_dir: str, context: int, as_json: bool, as_csv: bool) -> None:
    """Report, per search term, how many messages and conversations it hits, with and without context.

    TERMS_FILE holds one query per line (the full query syntax). Columns: messages hit,
    with_context (hits plus their context windows), conversations, unique (messages hit by this
    term and no other in the list), and a TOTAL over all terms.

    \b
    Example:
        printf 'whitewash*\\n洗白\\n"debug logs"\\n' > terms.txt
        discovery terms terms.txt --case ./case --context 3 --csv > str.csv
    """
    from discovery.export.csv_out import write_rows
    from discovery.terms import CSV_COLUMNS, TermError, csv_rows, read_terms, term_report

    case = open_case(case_dir)
    listed = read_terms(terms_file)
    try:
        report = term_report(case, listed, context=context)
    except TermError as error:
        audit.record(case, "search_term_report", {"terms": listed, "error": str(error)}, outcome="error")
        usage_error(str(error))
    audit.record(case, "search_term_report", {"terms": listed, "context": context,
                                              "total": report["total"]})
    case.close()
    if as_json:
        emit_json(report)
    elif as_csv:
        out = io.StringIO()
        links = [search_link(t, context) for t in listed] + [""]
        rows = [[*row, link] for row, link in zip(csv_rows(report), links, strict=True)]
        write_rows(out, [*CSV_COLUMNS, "search"], rows)
        sys.stdout.buffer.write(out.getvalue().encode("utf-8-sig"))
    else:
        width = max([len(t) for t in listed] + [5])
        click.echo(f"{'term':<{width}}  messages  with_context  conversations  unique")
        for row in report["terms"]:
            click.echo(f"{row['term']:<{width}}  {row['messages']:>8}  {row['with_context']:>12}  "
                       f"{row['conversations']:>13}  {row['unique']:>6}")
        total = report["total"]
        click.echo(f"{'TOTAL':<{width}}  {total['messages']:>8}  {total['with_context']:>12}  "
                   f"{total['conversations']:>13}")


COMMANDS = [terms]
