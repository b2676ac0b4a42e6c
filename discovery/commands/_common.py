"""Options and helpers shared by every command module."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from discovery.case import Case, CaseError
from discovery.storage import is_disk_full, is_inside, printable

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EXIT_PARTIAL = 3
EXIT_USAGE = 2
EXIT_FAILED = 1

# The case folder the running command opened last (named by storage_error's message).
opened_case: str | None = None


def case_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--case DIR, defaulting to $DISCOVERY_CASE; opens the case for the command."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        return click.option(
            "--case", "case_dir", envvar="DISCOVERY_CASE", required=True, metavar="DIR",
            type=click.Path(file_okay=False), help="The case folder (default: $DISCOVERY_CASE).",
        )(command)

    return decorate


def open_case(case_dir: str, create: bool = False) -> Case:
    global opened_case  # noqa: PLW0603 - one command per process; read by storage_error
    opened_case = case_dir
    try:
        return Case(case_dir, create=create)
    except CaseError as error:
        raise click.UsageError(str(error)) from error


def storage_error(error: sqlite3.Error | OSError) -> NoReturn:
    """Print what a case.db or file-system error means (no traceback) and exit 1.

    An error naming no file, or one in the case folder, is about the case; any other names its file."""
    if isinstance(error, BrokenPipeError):  # the reader of our output went away (`| head`): nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit flush does not fail again
        sys.exit(EXIT_FAILED)
    case = opened_case
    reason = str(error) or type(error).__name__
    disk_full = is_disk_full(error)
    hint = " (is the disk full?)" if disk_full else ""
    filename = getattr(error, "filename", None)
    in_case = case is not None and (filename is None or is_inside(os.fsdecode(filename), case))
    if isinstance(error, sqlite3.Error) or disk_full or in_case:
        where = printable(case) if case else "this case"
        verb = "write to" if disk_full or isinstance(error, sqlite3.OperationalError) else "use"
        message = f"cannot {verb} the case at {where}: {reason}{hint}"
    else:
        message = f"{type(error).__name__}: {reason}"
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_FAILED)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def usage_error(message: str, text: str | None = None, position: int | None = None) -> NoReturn:
    """Print MESSAGE (with a caret under POSITION in TEXT, for query errors) and exit 2."""
    lines = [f"Error: {message}"]
    if text is not None and position is not None:
        lines += [f"  {text}", "  " + " " * position + "^"]
    click.echo("\n".join(lines), err=True)
    sys.exit(EXIT_USAGE)
