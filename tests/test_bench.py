"""`discovery bench` at a tiny size: the search page (served by the real app, logged in with a Bearer
token) and the 50-term search term report are timed and reported, in the table and in --json.
Behaviour only: no timings are checked here (performance is measured by the bench itself)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from discovery import users
from discovery.bench import PAGE_QUERIES, STR_TERMS
from discovery.case import Case
from discovery.cli import cli
from discovery.web.bench import BENCH_USER


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def test_str_terms_are_fifty_and_parse():
    assert len(STR_TERMS) == 50 == len(set(STR_TERMS))
    assert any(" w/" in term or " pre/" in term for term in STR_TERMS)
    assert any("*" in term or "?" in term for term in STR_TERMS)
    assert any(term.startswith('"') for term in STR_TERMS)


def test_plain_bench_times_the_search_page_and_the_term_report(tmp_path):
    data = _json(CliRunner().invoke(cli, ["bench", "--messages", "300", "--repeats", "1", "--workdir",
                                          str(tmp_path), "--json"]))
    page = data["queries"]["search_page"]
    assert page["server"].startswith("waitress")
    assert page["p95_ms"] >= page["p50_ms"] > 0 and page["wall_p95_ms"] > 0
    assert data["term_report_seconds"] >= 0
    export = data["export_all"]  # every message, verified: issue 6's 200k property at this tiny size
    assert export["messages"] == data["ingested"] == 300 and export["verified"] is True
    assert export["export_seconds"] > 0 and export["verify_seconds"] > 0
    case = Case(tmp_path / "case")
    try:  # the bench's account is an investigator whose token the bench replaced
        assert users.get(case, BENCH_USER).role == "investigator"
    finally:
        case.close()


def test_engine_bench_reports_the_search_page_as_a_class(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["bench", "--engine", "whoosh", "--messages", "300", "--repeats", "1",
                                 "--workdir", str(tmp_path), "--no-export", "--json"])
    data = _json(result)
    assert "| search page p50 / p95 ms (CPU p95) (server time; waitress" in result.stderr
    assert "| search term report, 50 terms, s |" in result.stderr
    assert set(data) >= {"engines", "floor_msgs_per_s"}
    figures = data["engines"]["whoosh"]
    assert set(figures) >= {"ingest_msgs_per_s", "index_mb", "peak_rss_mb", "p95_ms", "term_report_seconds"}
    assert set(figures["p95_ms"]) == {"term", "phrase", "prefix", "date", "proximity", "wildcard", "not_near",
                                      "search_page"}
    assert figures["p95_ms"]["search_page"] == figures["queries"]["search_page"]["p95_ms"]
    assert len(PAGE_QUERIES) == 5
    # the same workdir again: the corpus is reused, the case made anew (and the bench account with it)
    again = _json(runner.invoke(cli, ["bench", "--engine", "whoosh", "--messages", "300", "--repeats", "1",
                                      "--workdir", str(tmp_path), "--no-export", "--json"]))
    assert again["engines"]["whoosh"]["ingested"] == 300


def _report_peak(out) -> None:
    from discovery.memory import peak_rss_mb

    out.put(peak_rss_mb())


def test_a_spawned_child_reports_its_own_peak_memory_not_its_parents():
    """ru_maxrss survives exec: a bench child would have reported the parent's peak as its own."""
    import multiprocessing

    from discovery.memory import peak_rss_mb

    ballast = bytearray(300 * 1024 * 1024)  # the parent's peak: at least 300 MB
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page so it is resident
    assert peak_rss_mb() >= 300
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_report_peak, args=(out,))
    child.start()
    child_peak = out.get(timeout=60)
    child.join()
    del ballast
    assert 0 < child_peak < 200
