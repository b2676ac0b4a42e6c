"""Forked workers leave a Ctrl-C to their parent: they ignore SIGINT, and end at once on SIGTERM
(not through a handler the parent had installed), so an interrupted run prints no worker tracebacks."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import discovery.processes  # noqa: F401 - installs the at-fork hook under test


def _dispositions() -> tuple[object, object]:
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def _report(send) -> None:
    send.send(_dispositions())


def test_a_forked_child_ignores_sigint_and_ends_on_sigterm():
    def parent_handler(number, frame):  # like the CLI's SIGTERM-as-KeyboardInterrupt during ingest
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, parent_handler)
    try:
        ctx = multiprocessing.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_report, args=(send,))
        child.start()
        assert receive.poll(20)
        assert receive.recv() == (signal.SIG_IGN, signal.SIG_DFL)
        child.join(20)
        assert signal.getsignal(signal.SIGTERM) is parent_handler  # the parent's own are untouched
    finally:
        signal.signal(signal.SIGTERM, previous)


def _slow_square(x: int) -> int:
    time.sleep(0.2)
    return x * x


def test_pool_workers_survive_a_ctrl_c_and_still_stop_with_their_pool():
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        assert list(pool.map(_slow_square, range(4))) == [0, 1, 4, 9]
        workers = list(pool._processes.values())
        assert pool.submit(_dispositions).result(20)[0] == signal.SIG_IGN
        for worker in workers:
            os.kill(worker.pid, signal.SIGINT)  # what a Ctrl-C sends the whole process group
        assert list(pool.map(_slow_square, range(4))) == [0, 1, 4, 9]
        assert all(worker.is_alive() for worker in workers)
    assert not any(worker.is_alive() for worker in workers)  # shut down by their parent
