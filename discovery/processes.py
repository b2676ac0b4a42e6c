"""When discovery may fork worker processes (ingest parsing and sniffing, large exports), and how
those workers end when the process that forked them does.

Forked workers start at once and inherit what they need (no re-import of the calling script, as
"spawn" would do). Forking is only safe from a process's main thread: a process with other threads
running (a web server's request threads) may fork while one of them holds a lock the child then
waits on forever. So the CLI and the bench fork; anything on another thread does its work in-process.

A worker must not outlive its parent: killed (by a signal, out of memory), the parent never tells
its workers to stop, and they waited forever on queues whose other ends they hold themselves,
keeping the case's write lock and the index's lock (they inherited them). Every child forked by
this process therefore dies with it (Linux: PR_SET_PDEATHSIG; elsewhere a thread watching the
parent's pid).

A Ctrl-C is the parent's to handle: the terminal sends SIGINT to the whole process group, and a
worker that raised KeyboardInterrupt too printed its traceback around the parent's "Aborted!" (and a
whoosh sub-writer that died so left the parent's writer waiting on it). So a forked child ignores
SIGINT; its parent stops it (executors shut down, ``Process.terminate``, or dies and takes it along).
It takes SIGTERM as the default does (ends at once): a handler the parent had installed, such as
the CLI's SIGTERM-as-KeyboardInterrupt during ingest, is not for its workers. (Only forks that run
Python's at-fork hooks do this: multiprocessing's and os.fork; subprocess runs them only with a
``preexec_fn``, and would pass the ignored SIGINT on to the program it starts; discovery uses none.)
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_WATCH_SECONDS = 0.5


def may_fork() -> bool:
    """True where the platform can fork and we are on the main thread."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.current_thread() is threading.main_thread()


def _in_child(parent: int) -> None:
    """Run in every child this process forks, right after the fork."""
    with contextlib.suppress(ValueError, OSError):  # (signals can only be set on a main thread)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """In a just-forked child: end when PARENT ends (see the module docstring)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before the request was made
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch, args=(parent,), name="die-with-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)


if hasattr(os, "register_at_fork"):
    _forking = os.getpid()  # the process forking now (set just before each fork)

    def _remember_parent() -> None:
        global _forking  # noqa: PLW0603 - read by the child, right after the fork
        _forking = os.getpid()

    os.register_at_fork(before=_remember_parent, after_in_child=lambda: _in_child(_forking))
