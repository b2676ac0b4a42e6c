"""The audit trail: an append-only, hash-chained log of everything done to a case.

Each entry carries the SHA-256 of the entry before it, so editing, deleting, inserting or
reordering any entry breaks the chain at a place `verify` names. SQLite triggers refuse UPDATE and
DELETE on the table, so the application itself cannot rewrite history; and the chain's head (count
and last hash) is also written to `audit.head` beside case.db, so cutting entries off the end is
caught too. Someone with write access to both files can still forge a consistent history: anchor the
head hash elsewhere (print it into a report, e-mail it) when that matters.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from discovery.case import Case, now_utc

GENESIS = "0" * 64


FIELDS = ("seq", "at", "actor", "address", "action", "details", "outcome", "prev_hash")


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash of one entry: every field but the hash itself, in a fixed canonical form."""
    canonical = json.dumps([entry[name] for name in FIELDS], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}"


def record(case: Case, action: str, details: dict[str, Any] | None = None, *, actor: str | None = None,
           address: str | None = None, outcome: str = "ok") -> dict[str, Any]:
    """Append one entry to the chain and return it (with its hash)."""
    db = case.db
    if db.in_transaction:
        db.commit()
    db.execute("BEGIN IMMEDIATE")  # the write lock: no other writer can take the same seq
    try:
        last = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        entry = {
            "seq": (last[0] + 1) if last else 1,
            "at": now_utc(),
            "actor": actor or cli_actor(),
            "address": address or socket.gethostname(),
            "action": action,
            "details": json.dumps(details or {}, ensure_ascii=False, sort_keys=True),
            "outcome": outcome,
            "prev_hash": last[1] if last else GENESIS,
        }
        entry["hash"] = entry_hash(entry)
        db.execute(
            "INSERT INTO audit_log(seq, at, actor, address, action, details, outcome, prev_hash, hash) "
            "VALUES (:seq, :at, :actor, :address, :action, :details, :outcome, :prev_hash, :hash)",
            entry,
        )
        _write_head(case, entry["seq"], entry["hash"])  # still under the write lock, so heads never regress
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return entry


def _write_head(case: Case, count: int, last_hash: str) -> None:
    path = case.folder / "audit.head"
    partial = case.folder / "audit.head.part"
    partial.write_text(json.dumps({"entries": count, "last_hash": last_hash}) + "\n")
    os.replace(partial, path)


@dataclass
class Verdict:
    ok: bool
    entries: int
    problems: list[str] = field(default_factory=list)
    last_hash: str = GENESIS

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "last_hash": self.last_hash, "problems": self.problems}


def verify(case: Case) -> Verdict:
    """Walk the chain from the start; name every entry that was edited, removed, inserted or moved."""
    rows = case.db.execute(f"SELECT {', '.join(FIELDS)}, hash FROM audit_log ORDER BY seq").fetchall()
    problems: list[str] = []
    previous_hash = GENESIS
    expected_seq = 1
    for row in rows:
        entry = dict(row)
        if entry["seq"] != expected_seq:
            if entry["seq"] > expected_seq:
                problems.append(f"entries {expected_seq}..{entry['seq'] - 1} are missing (deleted)")
            else:
                problems.append(f"entry {entry['seq']} is out of order")
        if entry_hash(entry) != entry["hash"]:
            problems.append(f"entry {entry['seq']} ({entry['action']} by {entry['actor']}) was altered: "
                            "its content no longer matches its hash")
        elif entry["prev_hash"] != previous_hash:
            problems.append(f"entry {entry['seq']} ({entry['action']}) does not follow the entry before it: "
                            "an entry was inserted, removed or reordered just before it")
        previous_hash = entry["hash"]
        expected_seq = entry["seq"] + 1
    head = _read_head(case)
    if head is not None and rows and (head["entries"] != rows[-1]["seq"] or head["last_hash"] != previous_hash):
        problems.append(f"the chain ends at entry {rows[-1]['seq']} but audit.head records {head['entries']} "
                        "entries: entries were cut from the end or the head was changed")
    elif head is not None and not rows and head["entries"]:
        problems.append(f"audit.head records {head['entries']} entries but the log is empty")
    return Verdict(ok=not problems, entries=len(rows), problems=problems, last_hash=previous_hash)


def _read_head(case: Case) -> dict[str, Any] | None:
    path = case.folder / "audit.head"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {"entries": -1, "last_hash": "unreadable"}


def entries(case: Case, *, actor: str | None = None, action: str | None = None, since: str | None = None,
            until: str | None = None) -> list[dict[str, Any]]:
    """Audit entries, oldest first, optionally filtered (since/until compare ISO UTC strings)."""
    clauses, params = [], []
    for column, op, value in (("actor", "=", actor), ("action", "=", action), ("at", ">=", since),
                              ("at", "<=", until)):
        if value:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = case.db.execute(f"SELECT *, hash FROM audit_log {where} ORDER BY seq", params).fetchall()
    out = []
    for row in rows:
        entry = dict(row)
        entry["details"] = json.loads(entry["details"])
        out.append(entry)
    return out
