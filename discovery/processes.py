"""When discovery may fork worker processes (ingest parsing and sniffing, large exports).

Forked workers start at once and inherit what they need (no re-import of the calling script, as
"spawn" would do). Forking is only safe from a process's main thread: a process with other threads
running (a web server's request threads) may fork while one of them holds a lock the child then
waits on forever. So the CLI and the bench fork; anything on another thread does its work in-process.
"""

from __future__ import annotations

import multiprocessing
import threading


def may_fork() -> bool:
    """True where the platform can fork and we are on the main thread."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.current_thread() is threading.main_thread()
