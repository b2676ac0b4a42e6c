"""The `search_page` query class of `discovery bench`: the search page timed against the running app.

The real app (``create_app``) is served by waitress on 127.0.0.1 (a free port) in a thread; each
query is a GET of the HTML search page (``/search?q=...&context=N``), as a browser asks for it,
authenticated as the case's ``bench`` investigator with a Bearer token (the account is created on
first use, its token replaced on each run). Server time comes from the app's Server-Timing header
(authentication, parse, search, context windows, facets and timeline over the whole result,
rendering, the audit record); the wall time of the loopback round trip is reported beside it.
"""

from __future__ import annotations

import re
import statistics
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

_TIMING = re.compile(r"app;dur=([0-9.]+)")
BENCH_USER = "bench"
SERVER = "waitress"  # what serves the app while it is timed (reported with the figures)


def bench_token(case_folder: str | Path) -> str:
    """A Bearer token for the case's ``bench`` investigator (created if missing; any older token revoked)."""
    from discovery import users
    from discovery.case import Case

    case = Case(Path(case_folder))
    try:
        if users.get(case, BENCH_USER) is None:
            users.add(case, BENCH_USER, "investigator", users.generate_password())
        return users.new_token(case, BENCH_USER)
    finally:
        case.close()


class ServerThread:
    """A waitress server for APP on 127.0.0.1 (port 0: a free one), run in a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 4):
        from waitress import create_server

        self.server = create_server(app, host=host, port=port, threads=threads, ident="discovery")
        self.url = f"http://{host}:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="waitress", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Finish the requests in flight, then close every connection from the server's own loop."""
        self.server.task_dispatcher.shutdown(cancel_pending=False, timeout=timeout)

        def close_all() -> None:
            for channel in list(self.server._map.values()):
                channel.close()

        self.server.trigger.pull_trigger(close_all)
        self.thread.join(timeout)


@contextmanager
def running_app(case_folder: str | Path, threads: int = 4) -> Iterator[str]:
    """Serve the case's web app with waitress on a free loopback port; yields the base URL."""
    import logging

    from discovery.web import create_app

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is 1": not news here
    app = create_app(case=case_folder)
    server = ServerThread(app, threads=threads)
    try:
        yield server.url
    finally:
        server.stop()
        app.extensions["discovery_cases"].close()


def page_timer(base_url: str, context: int = 3,
               token: str | None = None) -> Callable[[str], tuple[float, float, float]]:
    """A function QUERY -> (server ms, wall ms, CPU ms) for one GET of the search page (HTML, fully
    rendered). CPU is this process's CPU time over the request: the server's work when the server
    runs in this process (:func:`running_app`), plus the small share of the loopback client."""
    headers = {"Accept": "text/html"} | ({"Authorization": f"Bearer {token}"} if token else {})

    def run(query: str) -> tuple[float, float, float]:
        url = f"{base_url}/search?" + urllib.parse.urlencode({"q": query, "context": context})
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback only
        started, started_cpu = perf_counter(), process_time()
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback only
            body = response.read()
            timing = response.headers.get("Server-Timing", "")
            status = response.status
        wall = (perf_counter() - started) * 1000
        cpu = (process_time() - started_cpu) * 1000
        if status != 200 or b'id="results-title"' not in body:  # not the results page (a login page ...)
            raise RuntimeError(f"{url}: HTTP {status}, not the results page")
        found = _TIMING.search(timing)
        return (float(found.group(1)) if found else wall), wall, cpu

    return run


def time_search_page(case_folder: str | Path, queries: list[str], repeats: int = 10,
                     context: int = 3, threads: int = 1) -> dict[str, Any]:
    """p50/p95 server time (and wall time) of the search page for QUERIES, each run REPEATS times.

    One server thread by default: the requests come one at a time anyway, and each server thread
    opens the case (and its searcher) on its first request, so with one thread the warm-up round
    warms the thread every timed request runs on.
    """
    from discovery.bench import percentile

    token = bench_token(case_folder)
    with running_app(case_folder, threads=threads) as base_url:
        run = page_timer(base_url, context, token)
        for query in queries:  # warm: templates compiled, searchers open, a server answers warm
            run(query)
        server: list[float] = []
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(repeats):
            for query in queries:
                server_ms, wall_ms, cpu_ms = run(query)
                server.append(server_ms)
                wall.append(wall_ms)
                cpu.append(cpu_ms)
    return {
        "p50_ms": round(statistics.median(server), 2), "p95_ms": round(percentile(server, 95), 2),
        "wall_p50_ms": round(statistics.median(wall), 2), "wall_p95_ms": round(percentile(wall, 95), 2),
        "cpu_p50_ms": round(statistics.median(cpu), 2), "cpu_p95_ms": round(percentile(cpu, 95), 2),
        "server": f"{SERVER}, {threads} thread{'s' if threads > 1 else ''}",
    }
