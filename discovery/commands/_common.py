"""Options and helpers shared by every command module."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from discovery.case import Case, CaseError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EXIT_PARTIAL = 3
EXIT_USAGE = 2


def case_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--case DIR, defaulting to $DISCOVERY_CASE; opens the case for the command."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        return click.option(
            "--case", "case_dir", envvar="DISCOVERY_CASE", required=True, metavar="DIR",
            type=click.Path(file_okay=False), help="The case folder (default: $DISCOVERY_CASE).",
        )(command)

    return decorate


def open_case(case_dir: str, create: bool = False) -> Case:
    try:
        return Case(case_dir, create=create)
    except CaseError as error:
        raise click.UsageError(str(error)) from error


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def usage_error(message: str, text: str | None = None, position: int | None = None) -> NoReturn:
    """Print MESSAGE (with a caret under POSITION in TEXT, for query errors) and exit 2."""
    lines = [f"Error: {message}"]
    if text is not None and position is not None:
        lines += [f"  {text}", "  " + " " * position + "^"]
    click.echo("\n".join(lines), err=True)
    sys.exit(EXIT_USAGE)
