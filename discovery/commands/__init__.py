"""Command modules: each defines COMMANDS, a list of click commands added to `discovery`.

The core commands (ingest, search, show, stats, ...) live in discovery.cli; each further area
(serve, export, users, audit, ...) keeps its commands in its own module here, found automatically.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register_commands(group: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in module.COMMANDS:
            group.add_command(command)
