"""`discovery users ...`: manage the accounts of a case."""

from __future__ import annotations

import sys

import click

from discovery import audit, users
from discovery.commands._common import CONTEXT_SETTINGS, case_option, emit_json, open_case


@click.group(context_settings=CONTEXT_SETTINGS)
def users_group() -> None:
    """Manage who may use a case: add, list, disable, change passwords, issue API tokens.

    Roles: admin (manage users, ingest), investigator (search, view, tag, export), auditor (search,
    view, export, verify, read the audit trail). Every change is written to the audit trail.

    \b
    Example:
        discovery users add alice --role investigator --case ./case
    """


def _password(password_stdin: bool, generate: bool) -> tuple[str, bool]:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if generate:
        return users.generate_password(), True
    return click.prompt("Password", hide_input=True, confirmation_prompt=True), False


def _fail(error: users.UserError) -> None:
    raise click.UsageError(str(error))


@users_group.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), required=True)
@case_option()
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
def add(name: str, role: str, case_dir: str, password_stdin: bool, generate: bool) -> None:
    """Add a user; the password is prompted for, read from stdin, or generated and printed once.

    \b
    Example:
        discovery users add alice --role investigator --case ./case
        echo 'a long passphrase' | discovery users add bot --role auditor --password-stdin --case ./case
    """
    case = open_case(case_dir, create=True)
    password, generated = _password(password_stdin, generate)
    try:
        users.add(case, name, role, password)
    except users.UserError as error:
        _fail(error)
    audit.record(case, "user_add", {"user": name, "role": role})
    case.close()
    click.echo(f"added {name} ({role})")
    if generated:
        click.echo(f"password (shown once): {password}")


@users_group.command("list", context_settings=CONTEXT_SETTINGS)
@case_option()
@click.option("--json", "as_json", is_flag=True)
def list_(case_dir: str, as_json: bool) -> None:
    """List the users of a case with their roles and status.

    \b
    Example:
        discovery users list --case ./case --json
    """
    case = open_case(case_dir)
    rows = [{"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at}
            for u in users.list_users(case)]
    case.close()
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<20} {row['role']:<13} {'disabled' if row['disabled'] else 'active'}")


@users_group.command("disable", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@case_option()
@click.option("--enable", is_flag=True, help="Re-enable the account instead.")
def disable(name: str, case_dir: str, enable: bool) -> None:
    """Disable (or re-enable) an account; a disabled user can neither log in nor use a token.

    \b
    Example:
        discovery users disable bob --case ./case
    """
    case = open_case(case_dir)
    try:
        users.set_disabled(case, name, not enable)
    except users.UserError as error:
        _fail(error)
    audit.record(case, "user_enable" if enable else "user_disable", {"user": name})
    case.close()
    click.echo(f"{name} {'enabled' if enable else 'disabled'}")


@users_group.command("passwd", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@case_option()
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
def passwd(name: str, case_dir: str, password_stdin: bool, generate: bool) -> None:
    """Change a user's password.

    \b
    Example:
        discovery users passwd alice --case ./case
    """
    case = open_case(case_dir)
    password, generated = _password(password_stdin, generate)
    try:
        users.set_password(case, name, password)
    except users.UserError as error:
        _fail(error)
    audit.record(case, "user_passwd", {"user": name})
    case.close()
    click.echo(f"password changed for {name}")
    if generated:
        click.echo(f"password (shown once): {password}")


@users_group.command("token", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@case_option()
def token(name: str, case_dir: str) -> None:
    """Issue a new API token for NAME (replacing the old one); send it as `Authorization: Bearer TOKEN`.

    \b
    Example:
        discovery users token alice --case ./case
    """
    case = open_case(case_dir)
    try:
        value = users.new_token(case, name)
    except users.UserError as error:
        _fail(error)
    audit.record(case, "user_token", {"user": name})
    case.close()
    click.echo(value)


users_group.name = "users"
COMMANDS = [users_group]
