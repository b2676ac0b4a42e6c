"""Peak memory of this process, for the bench figures.

``getrusage``'s ``ru_maxrss`` survives ``exec``: a child started by multiprocessing's "spawn" (fork,
then exec) reports its parent's high-water mark at the fork if that was higher, so a bench child
that ingests or exports would seem to need what the parent held. Linux's ``VmHWM`` in
/proc/self/status is the high-water mark of this process's own memory since its exec; elsewhere we
fall back to ``ru_maxrss``.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (its own, since it started)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1024**2 if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, kB elsewhere
