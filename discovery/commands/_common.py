"""Options and helpers shared by every command module."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

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
