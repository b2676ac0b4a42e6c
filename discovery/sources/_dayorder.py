"""Deciding, once per file, whether numeric dates are day-first or month-first (formats.md §6.4).

WhatsApp headers and many CSV exports write dates like 05/10/24 with nothing saying which field
is the day. Deciding per line would let one file mix both readings, so the whole file's dates
are read first: a field > 12 settles it; else dates must run forward; else the field that
changes more often is the day; else a stated default. The reason is returned so the adapter
can record it on every message.
"""

from __future__ import annotations

import re


def decide_order(dates: list[tuple[str, int, bool]]) -> tuple[str, str]:
    """("DD/MM" | "MM/DD" | "YYYY/MM/DD", why), decided once for a whole file (formats.md §6.4).

    DATES are (date text, line number, has AM/PM) for every header, in file order.
    """
    if not dates:
        return "DD/MM", "no dates in the file"
    rows = [([int(p) for p in re.split(r"[./-]", text)], line) for text, line, _ in dates]
    for (first, _second, _third), line in rows:
        if first > 31:
            return "YYYY/MM/DD", f"the year comes first (line {line})"
    first_big = [line for (a, _b, _c), line in rows if a > 12]
    second_big = [line for (_a, b, _c), line in rows if b > 12]
    if first_big and not second_big:
        return "DD/MM", f"a day field > 12 on line {first_big[0]}"
    if second_big and not first_big:
        return "MM/DD", f"a day field > 12 on line {second_big[0]}"
    if first_big and second_big:
        order = "DD/MM" if len(first_big) >= len(second_big) else "MM/DD"
        return order, (f"conflicting dates: first field > 12 on {len(first_big)} line(s) (first: line "
                       f"{first_big[0]}), second field > 12 on {len(second_big)} (first: line {second_big[0]}); "
                       "took the majority")
    back_dm = _backwards(rows, day_first=True)
    back_md = _backwards(rows, day_first=False)
    if len(back_dm) != len(back_md):
        order, other, back = ("DD/MM", "MM/DD", back_md) if len(back_dm) < len(back_md) else \
            ("MM/DD", "DD/MM", back_dm)
        return order, f"dates run forward read as {order}; read as {other} they go backwards at line {back[0]}"
    changes_first = sum(1 for (x, y) in zip(rows, rows[1:], strict=False) if x[0][0] != y[0][0])
    changes_second = sum(1 for (x, y) in zip(rows, rows[1:], strict=False) if x[0][1] != y[0][1])
    if changes_first != changes_second:
        order = "DD/MM" if changes_first > changes_second else "MM/DD"
        return order, (f"the {'first' if order == 'DD/MM' else 'second'} field changes more often "
                       f"({max(changes_first, changes_second)} vs {min(changes_first, changes_second)} times), "
                       "so it is the day")
    if "/" in dates[0][0] and any(ampm for _, _, ampm in dates):
        return "MM/DD", "assumed: no date decides it; slashes with a 12-hour clock suggest en-US"
    return "DD/MM", "assumed: no date decides it (every field <= 12 and none changes more often)"


def _backwards(rows: list[tuple[list[int], int]], day_first: bool) -> list[int]:
    keys = [((c, b, a) if day_first else (c, a, b), line) for (a, b, c), line in rows]
    return [line for (prev, _), (cur, line) in zip(keys, keys[1:], strict=False) if cur < prev]
