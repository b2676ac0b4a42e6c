"""The `web` query class of `discovery bench`: the search page timed against the running app.

The real app is served by waitress on 127.0.0.1 (a free port) in a thread; each query is a GET of
the HTML search page, as a browser asks for it. Server time comes from the app's Server-Timing
header (parse, search, context windows, facets and timeline over the whole result, rendering);
the wall time of the loopback round trip is reported beside it.
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
from time import perf_counter
from typing import Any

_TIMING = re.compile(r"app;dur=([0-9.]+)")


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
    from discovery.web import create_app

    app = create_app(case=case_folder)
    server = ServerThread(app, threads=threads)
    try:
        yield server.url
    finally:
        server.stop()
        app.extensions["discovery_cases"].close()


def page_timer(base_url: str, context: int = 3) -> Callable[[str], tuple[float, float]]:
    """A function QUERY -> (server ms, wall ms) for one GET of the search page."""

    def run(query: str) -> tuple[float, float]:
        url = f"{base_url}/search?" + urllib.parse.urlencode({"q": query, "context": context})
        started = perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - loopback only
            response.read()
            timing = response.headers.get("Server-Timing", "")
            status = response.status
        wall = (perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"{url}: HTTP {status}")
        found = _TIMING.search(timing)
        return (float(found.group(1)) if found else wall), wall

    return run


def time_search_page(case_folder: str | Path, queries: list[str], repeats: int = 10,
                     context: int = 3) -> dict[str, Any]:
    """p50/p95 server time (and wall time) of the search page for QUERIES, each run REPEATS times."""
    from discovery.bench import percentile

    with running_app(case_folder) as base_url:
        run = page_timer(base_url, context)
        for query in queries:  # warm: templates compiled, searchers open, a server answers warm
            run(query)
        server: list[float] = []
        wall: list[float] = []
        for _ in range(repeats):
            for query in queries:
                server_ms, wall_ms = run(query)
                server.append(server_ms)
                wall.append(wall_ms)
    return {
        "p50_ms": round(statistics.median(server), 2), "p95_ms": round(percentile(server, 95), 2),
        "wall_p50_ms": round(statistics.median(wall), 2), "wall_p95_ms": round(percentile(wall, 95), 2),
    }
