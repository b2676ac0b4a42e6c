"""Accounts and roles, kept in the case itself (a case folder carries its own access list).

Passwords are hashed with werkzeug's scrypt-based hashing (Flask's own, well-kept); API tokens are
random, shown once, and only their SHA-256 is stored. No default password exists anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from discovery.case import Case, now_utc

ROLES = ("admin", "investigator", "auditor")
MIN_PASSWORD = 10


class UserError(Exception):
    """A user-management request that cannot be done (unknown user, bad role, weak password)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    disabled: bool
    created_at: str


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords must be at least {MIN_PASSWORD} characters long")


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def add(case: Case, name: str, role: str, password: str) -> User:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not name or not name.strip() or name != name.strip():
        raise UserError("a user name must be non-empty and have no surrounding spaces")
    _check_password(password)
    if get(case, name) is not None:
        raise UserError(f"user {name!r} already exists")
    now = now_utc()
    with case.transaction() as db:
        db.execute(
            "INSERT INTO users(name, role, password_hash, created_at, password_changed_at) VALUES (?,?,?,?,?)",
            (name, role, generate_password_hash(password), now, now),
        )
    return User(name, role, False, now)


def get(case: Case, name: str) -> User | None:
    row = case.db.execute("SELECT name, role, disabled, created_at FROM users WHERE name = ?", (name,)).fetchone()
    return User(row[0], row[1], bool(row[2]), row[3]) if row else None


def list_users(case: Case) -> list[User]:
    rows = case.db.execute("SELECT name, role, disabled, created_at FROM users ORDER BY name")
    return [User(r[0], r[1], bool(r[2]), r[3]) for r in rows]


def _require(case: Case, name: str) -> User:
    user = get(case, name)
    if user is None:
        raise UserError(f"no user named {name!r}")
    return user


def set_disabled(case: Case, name: str, disabled: bool = True) -> User:
    _require(case, name)
    with case.transaction() as db:
        db.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
    return _require(case, name)


def set_password(case: Case, name: str, password: str) -> None:
    _require(case, name)
    _check_password(password)
    with case.transaction() as db:
        db.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                   (generate_password_hash(password), now_utc(), name))


def new_token(case: Case, name: str) -> str:
    """A fresh API token for NAME (replacing any earlier one); only its hash is kept."""
    _require(case, name)
    token = secrets.token_urlsafe(32)
    with case.transaction() as db:
        db.execute("UPDATE users SET token_hash = ? WHERE name = ?", (_token_hash(token), name))
    return token


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(case: Case, name: str, password: str) -> User | None:
    """The user if NAME/PASSWORD are right and the account is enabled, else None."""
    row = case.db.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
    if row is None:
        check_password_hash(_dummy_hash(), password)  # same work as a real check: names don't leak by timing
        return None
    if not check_password_hash(row[0], password):
        return None
    user = get(case, name)
    return user if user and not user.disabled else None


def user_for_token(case: Case, token: str) -> User | None:
    if not token:
        return None
    wanted = _token_hash(token)
    for row in case.db.execute("SELECT name, token_hash FROM users WHERE token_hash IS NOT NULL"):
        if hmac.compare_digest(row[1], wanted):
            user = get(case, row[0])
            return user if user and not user.disabled else None
    return None
