"""The search term report (STR) page: one query per line in, per-term reach out. Twins /terms.json, /terms.csv.

A GET form, so a report is a shareable URL and needs no CSRF token. ``/terms.json`` answers exactly
``discovery.terms.term_report``'s contract (with no terms: its empty report plus the form's ``hint``);
``/terms.csv`` is the spreadsheet ``discovery terms --csv`` writes (UTF-8 with a BOM, formula cells
neutralised, a ``search`` link per row). A term that does not parse is a 400 naming its line in the box
and the position in the term.

Every report (and every refused one) is written to the audit trail as ``search_term_report``.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, request

from discovery.commands.terms import search_link
from discovery.terms import CSV_COLUMNS, TermError, csv_rows, term_report
from discovery.web import get_case
from discovery.web.access import READERS
from discovery.web.auth import record_event
from discovery.web.errors import error_response
from discovery.web.params import MAX_CONTEXT, BadParam, integer
from discovery.web.render import respond

bp = Blueprint("terms", __name__)
ROLES = {"terms.report": READERS, "terms.download": READERS}

# What the empty form says (the page's help under the box), and the empty report's JSON with it.
HINT = ("Search terms, one query per line. Each line is a full query (word*, quoted phrases, AND, OR, NOT, "
        "fields). Blank lines are skipped.")
DEFAULT_CONTEXT = 3
MAX_TERMS = 500
MAX_TEXT = 100_000


def read_form() -> tuple[str, list[str], list[int], int]:
    """The box as typed, its terms (blank lines skipped), each term's line in the box, and the context."""
    text = request.args.get("terms", "")
    if len(text) > MAX_TEXT:
        raise BadParam("terms", f"the list is longer than {MAX_TEXT:,} characters")
    terms, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            terms.append(line.strip())
            lines.append(number)
    if len(terms) > MAX_TERMS:
        raise BadParam("terms", f"at most {MAX_TERMS} terms per report, not {len(terms)}")
    return text, terms, lines, integer(request.args, "context", DEFAULT_CONTEXT, 0, MAX_CONTEXT)


def search_url(term: str, context: int) -> str:
    """The search a row stands for: the CLI's link (``search_link``), under wherever the app is mounted."""
    return request.script_root + search_link(term, context)


def run(terms: list[str], lines: list[int], context: int, fmt: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(report, None-or-error data); audited either way."""
    try:
        report = term_report(get_case(), terms, context=context)
    except TermError as error:
        line = lines[error.line - 1]
        cause = error.__cause__
        reason = getattr(cause, "message", None) or str(cause or error)
        message = f"line {line} ({error.term!r}): {reason}"
        record_event("search_term_report", {"terms": terms, "context": context, "format": fmt, "error": message},
                     outcome="error")
        return None, {"error": message, "line": line, "term": error.term, "position": error.position}
    record_event("search_term_report", {"terms": terms, "context": context, "format": fmt, "total": report["total"]})
    return report, {}


@bp.get("/terms.json", defaults={"fmt": "json"})
@bp.get("/terms", defaults={"fmt": None})
def report(fmt: str | None) -> Any:
    text, terms, lines, context = read_form()
    page: dict[str, Any] = {"text": text, "context": context, "rows": [], "total": None, "term_error": None}
    if not terms:  # the empty form: nothing run, nothing audited; the twin is the empty report and the hint
        empty = {**term_report(get_case(), [], context=context), "hint": HINT}
        return respond("terms/index.html", empty, fmt=fmt, **page)
    result, error = run(terms, lines, context, "json" if fmt == "json" else "html")
    if result is None:
        return respond("terms/index.html", error, fmt=fmt, status=400, **{**page, "term_error": error})
    rows = [{**row, "search": search_url(row["term"], context)} for row in result["terms"]]
    return respond("terms/index.html", result, fmt=fmt, **{**page, "rows": rows, "total": result["total"]})


@bp.get("/terms.csv")
def download() -> Any:
    from discovery.export.csv_out import write_rows

    _, terms, lines, context = read_form()
    if not terms:
        raise BadParam("terms", "give at least one term, one query per line")
    result, error = run(terms, lines, context, "csv")
    if result is None:
        return error_response(400, "A term could not be read", error["error"], line=error["line"],
                              position=error["position"])
    links = [search_url(term, context) for term in terms] + [""]
    out = io.StringIO()
    write_rows(out, [*CSV_COLUMNS, "search"],
               [[*row, link] for row, link in zip(csv_rows(result), links, strict=True)])
    return Response(out.getvalue().encode("utf-8-sig"), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="search-term-report.csv"'})
