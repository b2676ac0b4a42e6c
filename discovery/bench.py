"""`discovery bench`: measure ingest and query cost over a generated Lark-shaped corpus.

Performance is measured here, never by timed unit tests. The corpus is deterministic (seeded), so
runs compare; the machines are shared and noisy, so we report medians and p95 over repeats.

``--engine whoosh,tantivy`` (:func:`run_engines`) runs the engines side by side over one generated
corpus: one case per engine, each engine in its own child process (so each peak RSS is its own),
the same query classes (plus proximity and wildcard), an export, and the floor (reading, hashing
and decoding the export, which no ingest can beat).

Both runs also time the search page (``search_page``: GET /search?q=TERM&context=N, the full HTML
page, against the real app served by waitress; :mod:`discovery.web.bench`) for the term queries, and
a search term report of the 50 terms in :data:`STR_TERMS` (``term_report_seconds``: the median of
up to 3 runs of :func:`discovery.terms.term_report`, with the same context). The plain run then
exports every message with context and verifies the bundle (``export_all``, in a fresh process:
issue 6's 200,000 messages in under 60 s with bounded memory); ``--no-export`` skips it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from discovery.case import Case
from discovery.memory import peak_rss_mb

PAGE = 50  # Lark's page size cap: one list response per 50 messages, as a real export has

_SYLLABLES = ["ka", "lo", "mi", "ne", "ra", "so", "tu", "vi", "da", "ge", "po", "qui", "ze", "ba", "fi", "ho"]
_COMMON = (
    "the", "report", "audit", "team", "please", "check", "logs", "before", "release", "deadline",
    "meeting", "numbers", "budget", "review", "draft", "client", "contract", "update", "evidence",
    "delete", "backup", "server", "invoice", "vendor", "quarter",
)
_CHINESE = ["上线前把日志清理掉", "证据已经删除了", "审计下周开始", "把报表洗白", "预算超支了", "明天开会讨论",
            "客户合同需要更新", "服务器备份完成", "请尽快处理", "这个问题很严重"]
QUERY_CLASSES = {
    "term": ["audit", "evidence", "whitewash", "invoice", "server"],
    "phrase": ['"delete evidence"', '"audit team"', '"check logs"', '"清理掉"', '"budget review"'],
    "prefix": ["whitewash*", "evid*", "invoi*", "backu*", "deadl*"],
    "date": ["audit date:2024-03-01..2024-03-31", "evidence date:2024-06", "server date:>=2024-11-01",
             "invoice date:2024-02-01..2024-02-15", "logs date:<2024-01-15"],
}
# The side-by-side run (--engine) adds these classes.
ENGINE_QUERY_CLASSES = {
    **QUERY_CLASSES,
    "proximity": ["audit w/5 team", "delete pre/3 evidence", '"check logs" w/10 release',
                  "(invoice OR vendor) w/4 contract", "evid* w/3 backup"],
    "wildcard": ["*wash", "ev?dence", "del*ed", "*voic*", "b?ck*"],
    # "not w/N" is where Tantivy checks candidates by hand (discovery.engine.tantivy_engine)
    "not_near": ["audit not w/3 team", "server not w/2 backup", "evidence not w/5 delete",
                 "invoice not w/1 vendor", "(backup OR server) not w/4 delete"],
}
EXPORT_QUERY = "whitewash"  # ~1% of the messages, exported with their context windows
PAGE_QUERIES = QUERY_CLASSES["term"]  # the search page is timed for these
# A 50-term search term report as counsel would send one: words of the bench vocabulary (common,
# rarer and generated ones, Chinese), phrases, proximity and wildcards.
STR_TERMS = [
    "audit", "evidence", "whitewash", "invoice", "server", "deadline", "budget", "contract", "vendor", "backup",
    "delete", "logs", "release", "quarter", "badakapo", "bazezemi", "fineka", "kakane",
    "洗白", "证据", "日志", "审计",
    '"delete evidence"', '"audit team"', '"check logs"', '"budget review"', '"client contract"', '"server backup"',
    '"清理掉"', '"invoice vendor"', '"before release"', '"update draft"',
    "audit w/5 team", "delete pre/3 evidence", '"check logs" w/10 release', "(invoice OR vendor) w/4 contract",
    "evid* w/3 backup", "whitewash w/10 (logs OR evidence)", "deadline w/5 budget", "server not w/2 backup",
    "whitewash*", "evid*", "invoi*", "*wash", "ev?dence", "del*ed", "b?ck*", "contr*", "audit*", "kaka*",
]


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def generate(folder: Path, messages: int, seed: int = 7) -> list[Path]:
    """Write MESSAGES Lark list-response pages (JSON) under FOLDER; returns the files."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    chats = [f"oc_bench{n:04d}" for n in range(max(1, messages // 1000))]
    users = [f"ou_user{n:04d}" for n in range(200)]
    start_ms = 1_704_067_200_000  # 2024-01-01T00:00:00Z
    span_ms = 365 * 86_400_000
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    names = {"code": 0, "msg": "success", "data": {"items": [
        {"member_id_type": "open_id", "member_id": uid, "name": f"User {n}"} for n, uid in enumerate(users)]}}
    (folder / "members.json").write_text(json.dumps(names))
    files.append(folder / "members.json")
    for page_start in range(0, messages, PAGE):
        items = []
        for n in range(page_start, min(messages, page_start + PAGE)):
            items.append(_message(rng, n, chats, users, vocab, weights, start_ms + (n * span_ms) // messages))
        path = folder / f"messages_{page_start // PAGE:06d}.json"
        path.write_text(json.dumps({"code": 0, "msg": "success",
                                    "data": {"has_more": True, "page_token": str(page_start), "items": items}},
                                   ensure_ascii=False))
        files.append(path)
    return files


def _message(rng: random.Random, n: int, chats: list[str], users: list[str], vocab: list[str],
             weights: list[float], at_ms: int) -> dict[str, Any]:
    words = rng.choices(vocab, weights, k=rng.randint(5, 40))
    for _ in range(rng.randint(1, 4)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(_COMMON))
    if rng.random() < 0.01:
        words.insert(rng.randrange(len(words) + 1), "whitewash")
    text = " ".join(words)
    if rng.random() < 0.15:
        text = rng.choice(_CHINESE) + " " + text
    if rng.random() < 0.05:
        text += f" https://docs.example.com/{rng.choice(vocab)}"
    return {
        "message_id": f"om_bench{n:09d}", "msg_type": "text", "create_time": str(at_ms),
        "update_time": str(at_ms), "deleted": False, "updated": False, "chat_id": rng.choice(chats),
        "sender": {"id": rng.choice(users), "id_type": "open_id", "sender_type": "user", "tenant_key": "tk"},
        "body": {"content": json.dumps({"text": text}, ensure_ascii=False)},
    }


def floor_msgs_per_s(files: list[Path]) -> float:
    """The bare cost of reading, hashing and decoding the export: no ingest can beat this."""
    started = time.perf_counter()
    count = 0
    for path in files:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        parsed = json.loads(data)
        for item in parsed.get("data", {}).get("items", []):
            if "body" in item:
                json.loads(item["body"]["content"])
                count += 1
    return count / (time.perf_counter() - started)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def time_queries(run: Callable[[str], Any], queries: list[str], repeats: int) -> dict[str, float]:
    run(queries[0])  # warm the searcher once; a server answers warm
    samples = []
    for _ in range(repeats):
        for query in queries:
            started = time.perf_counter()
            run(query)
            samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(percentile(samples, 95), 2)}




def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024**2


def run_bench(messages: int, workdir: str | None = None, repeats: int = 10, context: int = 3,
              log: Callable[[str], None] = print, export: bool = True) -> dict[str, Any]:
    """Generate, ingest, query; returns the figures (see the module docstring)."""
    import shutil

    from discovery.ingest import ingest
    from discovery.search import search

    base = Path(workdir or tempfile.mkdtemp(prefix="discovery-bench-"))
    files = _corpus(base / "corpus", messages, log)
    floor = floor_msgs_per_s(files)
    log(f"floor (read + sha256 + json): {floor:,.0f} msgs/s")
    shutil.rmtree(base / "case", ignore_errors=True)  # a fresh case: ingest is timed from empty
    case = Case(base / "case", create=True)
    started = time.perf_counter()
    report = ingest(case, [str(base / "corpus")], copy_originals=False)
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "messages": messages,
        "ingested": report.messages_added,
        "ingest_seconds": round(elapsed, 2),
        "ingest_msgs_per_s": round(report.messages_added / elapsed, 1),
        "floor_msgs_per_s": round(floor, 1),
        "index_mb": round(folder_mb(case.index_dir), 1),
        "case_db_mb": round((case.folder / "case.db").stat().st_size / 1024**2, 1),
        "peak_rss_mb_after_ingest": round(peak_rss_mb(), 1),
        "queries": {},
    }
    log(f"ingest: {result['ingest_msgs_per_s']:,.0f} msgs/s ({elapsed:.1f} s), index {result['index_mb']} MB")
    for name, queries in QUERY_CLASSES.items():
        timing = time_queries(lambda q: search(case, q, context=context, limit=20), queries, repeats)
        totals = [search(case, q, context=0, limit=1).total for q in queries]
        result["queries"][name] = {**timing, "hits": totals}
        log(f"{name:>8}: p50 {timing['p50_ms']} ms, p95 {timing['p95_ms']} ms (hits {totals})")
    page = time_page(case, repeats, context)
    result["queries"]["search_page"] = page
    log(f"search page: p50 {page['p50_ms']} ms, p95 {page['p95_ms']} ms server time "
        f"(CPU p95 {page['cpu_p95_ms']} ms, wall p95 {page['wall_p95_ms']} ms; {page['server']}, term queries)")
    result["term_report_seconds"] = time_term_report(case, context, runs=min(3, repeats))
    log(f"search term report, {len(STR_TERMS)} terms: {result['term_report_seconds']} s")
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    case.close()
    if export:
        result["export_all"] = time_export_all(base / "case", base)
        figures = result["export_all"]
        log(f"export of all {figures['messages']:,} messages (context {figures['context']}): "
            f"{figures['export_seconds']} s, {figures['export_msgs_per_s']:,.0f} msgs/s, "
            f"peak RSS {figures['peak_rss_mb_after']} MB; verify {figures['verify_seconds']} s")
    return result


def time_export_all(case_dir: Path, workdir: Path, context: int = 3) -> dict[str, Any]:
    """Export every message of the case (the empty query) and verify the bundle, in a fresh process so
    its peak RSS is the export's own: issue 6's property (200,000 messages in under 60 s, bounded memory)."""
    out = workdir / "figures-export-all.json"
    out.unlink(missing_ok=True)
    child = multiprocessing.get_context("spawn").Process(target=_export_all_child, name="bench-export",
                                                         args=(str(case_dir), str(workdir), context, str(out)))
    child.start()
    child.join()
    if child.exitcode != 0 or not out.exists():
        raise RuntimeError(f"the export run failed (exit status {child.exitcode}); see the messages above")
    return json.loads(out.read_text())


def _export_all_child(case_dir: str, workdir: str, context: int, out: str) -> None:
    from discovery.export import bench_export

    case = Case(case_dir)
    try:
        figures = bench_export(case, "", context=context, workdir=workdir, verify=True)
    finally:
        case.close()
    Path(out).write_text(json.dumps(figures))


def time_page(case: Case, repeats: int, context: int) -> dict[str, Any]:
    """The search page for PAGE_QUERIES, served by the real app (see :mod:`discovery.web.bench`)."""
    from discovery.web.bench import time_search_page

    case.engine().commit()  # nothing pending: the app's own searchers see the whole index
    return time_search_page(case.folder, PAGE_QUERIES, repeats=repeats, context=context)


def time_term_report(case: Case, context: int, terms: list[str] | None = None, runs: int = 1) -> float:
    """Seconds for a search term report of TERMS (default STR_TERMS) with CONTEXT: the median of RUNS."""
    from discovery.terms import term_report

    seconds = []
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        term_report(case, terms or STR_TERMS, context=context)
        seconds.append(time.perf_counter() - started)
    return round(statistics.median(seconds), 2)


# ---------------------------------------------------------------------------- engines side by side


def run_engines(messages: int, engines: list[str], workdir: str | None = None, repeats: int = 10,
                context: int = 3, export: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate one corpus, then ingest, query and export it once per engine (see the docstring).

    Returns ``{"engines": {NAME: {"ingest_msgs_per_s", "index_mb", "peak_rss_mb", "p95_ms":
    {CLASS: ms}, ...}}, "floor_msgs_per_s", ...}``.
    """
    from discovery.engines import check_engine

    for name in engines:
        check_engine(name)
    base = Path(workdir or tempfile.mkdtemp(prefix="discovery-bench-"))
    corpus = base / "corpus"
    files = _corpus(corpus, messages, log)
    floor = floor_msgs_per_s(files)
    log(f"floor (read + sha256 + json): {floor:,.0f} msgs/s")
    result: dict[str, Any] = {"messages": messages, "floor_msgs_per_s": round(floor, 1), "context": context,
                              "repeats": repeats, "queries": ENGINE_QUERY_CLASSES, "engines": {}}
    # A fresh interpreter per engine: its own peak RSS. Not a Pool: its workers are daemonic and
    # may not start processes of their own (an engine may index with worker processes).
    spawn = multiprocessing.get_context("spawn")
    for name in engines:
        log(f"--- {name}")
        out = base / f"figures-{name}.json"
        out.unlink(missing_ok=True)
        child = spawn.Process(target=_engine_child, name=f"bench-{name}",
                              args=(name, str(corpus), str(base / f"case-{name}"), repeats, context, export, str(out)))
        child.start()
        child.join()
        if child.exitcode != 0 or not out.exists():
            raise RuntimeError(f"the {name} run failed (exit status {child.exitcode}); see the messages above")
        result["engines"][name] = json.loads(out.read_text())
        _log_engine(name, result["engines"][name], log)
    result["agree"] = _agreement(result["engines"])
    result["cpus"] = os.cpu_count()
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]  # a shared machine: read times with it
    log("")
    for line in table(result):
        log(line)
    return result


def _corpus(folder: Path, messages: int, log: Callable[[str], None]) -> list[Path]:
    """The generated corpus in FOLDER: reused when a previous run left the same one there."""
    marker = folder.parent / f"{folder.name}.json"  # beside the corpus: ingest must not see it
    wanted = {"messages": messages, "seed": 7, "page": PAGE}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        log(f"reusing the {messages} generated messages under {folder}")
        return [folder / "members.json", *sorted(folder.glob("messages_*.json"))]
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    log(f"generating {messages} messages under {folder} ...")
    files = generate(folder, messages)
    marker.write_text(json.dumps(wanted))
    return files


def _engine_child(name: str, corpus: str, case_dir: str, repeats: int, context: int, export: bool,
                  out: str) -> None:
    figures = _engine_run(name, corpus, case_dir, repeats, context, export)
    Path(out).write_text(json.dumps(figures))


def _engine_run(name: str, corpus: str, case_dir: str, repeats: int, context: int, export: bool) -> dict[str, Any]:
    """One engine's part, in a child process: ingest, size, queries, export."""
    import shutil

    from discovery.engines import use_engine
    from discovery.ingest import ingest
    from discovery.search import search

    shutil.rmtree(case_dir, ignore_errors=True)
    case = Case(Path(case_dir), create=True)
    use_engine(case, name)
    clock = _time_engine(case.engine())
    started = time.perf_counter()
    report = ingest(case, [corpus], copy_originals=False)
    elapsed = time.perf_counter() - started
    out: dict[str, Any] = {
        "ingested": report.messages_added,
        "ingest_seconds": round(elapsed, 2),
        "ingest_msgs_per_s": round(report.messages_added / elapsed, 1),
        # the engine's own share of the ingest: indexing and committing (reading case.db excluded)
        "engine_seconds": round(clock["engine"], 2),
        "engine_msgs_per_s": round(report.messages_added / clock["engine"], 1) if clock["engine"] else None,
        "index_mb": round(folder_mb(case.index_dir), 1),
        "case_db_mb": round((case.folder / "case.db").stat().st_size / 1024**2, 1),
        "peak_rss_mb_after_ingest": round(peak_rss_mb(), 1),
        "queries": {},
        "p95_ms": {},
    }
    for cls, queries in ENGINE_QUERY_CLASSES.items():
        timing = _time_queries(lambda q: search(case, q, context=context, limit=20), queries, repeats)
        totals = [search(case, q, context=0, limit=1).total for q in queries]
        out["queries"][cls] = {**timing, "hits": totals}
        out["p95_ms"][cls] = timing["p95_ms"]
    page = time_page(case, repeats, context)
    out["queries"]["search_page"] = page
    out["p95_ms"]["search_page"] = page["p95_ms"]
    out["term_report_seconds"] = time_term_report(case, context, runs=min(3, repeats))
    if export:
        from discovery.export import bench_export

        figures = bench_export(case, EXPORT_QUERY, context=context, workdir=str(Path(case_dir).parent), verify=False)
        out["export"] = figures
        out["export_msgs_per_s"] = figures.get("export_msgs_per_s")
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    case.close()
    return out


def _time_queries(run: Callable[[str], Any], queries: list[str], repeats: int) -> dict[str, float]:
    """Like time_queries, plus the CPU time of the process (less noisy on a shared machine)."""
    run(queries[0])
    wall, cpu = [], []
    for _ in range(repeats):
        for query in queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            run(query)
            cpu.append((time.process_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(wall), 2), "p95_ms": round(percentile(wall, 95), 2),
            "cpu_p50_ms": round(statistics.median(cpu), 2), "cpu_p95_ms": round(percentile(cpu, 95), 2)}


def _time_engine(engine: Any) -> dict[str, float]:
    """Wrap ENGINE's writing methods (on the instance) to add up the time spent inside them."""
    clock = {"engine": 0.0}

    def timed(method: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            if args:  # a batch: read it from case.db first, so only the engine's work is timed
                args = (list(args[0]), *args[1:])
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                clock["engine"] += time.perf_counter() - started

        return run

    for name in ("add", "add_new", "commit"):
        if hasattr(engine, name):
            setattr(engine, name, timed(getattr(engine, name)))
    return clock


def _log_engine(name: str, figures: dict[str, Any], log: Callable[[str], None]) -> None:
    log(f"{name} ingest: {figures['ingest_msgs_per_s']:,.0f} msgs/s ({figures['ingest_seconds']} s, of which "
        f"{figures['engine_seconds']} s in the engine), index {figures['index_mb']} MB, "
        f"peak RSS {figures['peak_rss_mb']} MB")
    for cls, timing in figures["queries"].items():
        if cls == "search_page":
            log(f"{name} search page: p50 {timing['p50_ms']} ms, p95 {timing['p95_ms']} ms server time "
                f"(CPU p95 {timing['cpu_p95_ms']} ms, wall p95 {timing['wall_p95_ms']} ms; {timing['server']}, "
                "term queries)")
            continue
        log(f"{name} {cls:>9}: p50 {timing['p50_ms']} ms, p95 {timing['p95_ms']} ms (hits {timing['hits']})")
    if "term_report_seconds" in figures:
        log(f"{name} search term report, {len(STR_TERMS)} terms: {figures['term_report_seconds']} s")


def _agreement(engines: dict[str, Any]) -> dict[str, Any]:
    """Do the engines report the same hit count for every query? (They must: same semantics.)"""
    names = list(engines)
    differences = []
    for cls, queries in ENGINE_QUERY_CLASSES.items():
        for i, query in enumerate(queries):
            counts = {n: engines[n]["queries"][cls]["hits"][i] for n in names}
            if len(set(counts.values())) > 1:
                differences.append({"query": query, "hits": counts})
    return {"same_hits": not differences, "differences": differences}


def table(result: dict[str, Any]) -> list[str]:
    """The side-by-side table (Markdown), one column per engine."""
    engines = result["engines"]
    names = list(engines)

    def row(label: str, values: list[str]) -> str:
        return "| " + " | ".join([label, *values]) + " |"

    def num(value: Any, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = [row(f"{result['messages']:,} messages", names), "|" + "---|" * (len(names) + 1)]
    lines.append(row("ingest msgs/s (end to end)", [num(engines[n]["ingest_msgs_per_s"]) for n in names]))
    lines.append(row("ingest seconds", [num(engines[n]["ingest_seconds"], 1) for n in names]))
    lines.append(row("engine msgs/s (its share of ingest)", [num(engines[n].get("engine_msgs_per_s")) for n in names]))
    lines.append(row("index MB", [num(engines[n]["index_mb"], 1) for n in names]))
    lines.append(row("case.db MB", [num(engines[n]["case_db_mb"], 1) for n in names]))
    lines.append(row("peak RSS MB", [num(engines[n]["peak_rss_mb"], 1) for n in names]))
    for cls in ENGINE_QUERY_CLASSES:
        lines.append(row(f"{cls} p50 / p95 ms (CPU p95)", [
            f"{engines[n]['queries'][cls]['p50_ms']} / {engines[n]['queries'][cls]['p95_ms']} "
            f"({engines[n]['queries'][cls].get('cpu_p95_ms', '-')})" for n in names]))
    if all("search_page" in engines[n]["queries"] for n in names):
        pages = [engines[n]["queries"]["search_page"] for n in names]
        lines.append(row(f"search page p50 / p95 ms (CPU p95) (server time; {pages[0]['server']}, term queries)",
                         [f"{page['p50_ms']} / {page['p95_ms']} ({page['cpu_p95_ms']})" for page in pages]))
    if all("term_report_seconds" in engines[n] for n in names):
        lines.append(row(f"search term report, {len(STR_TERMS)} terms, s",
                         [num(engines[n]["term_report_seconds"], 2) for n in names]))
    if all("export_msgs_per_s" in engines[n] for n in names):
        lines.append(row(f"export msgs/s ({EXPORT_QUERY!r} + context)",
                         [num(engines[n]["export_msgs_per_s"]) for n in names]))
    lines.append(row("floor msgs/s (read + sha256 + json)", [num(result["floor_msgs_per_s"])] * len(names)))
    if "load_average" in result:
        lines.append(f"(load average during the run: {result['load_average']}; {result.get('cpus')} CPUs)")
    return lines
