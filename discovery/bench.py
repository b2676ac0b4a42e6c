"""`discovery bench`: measure ingest and query cost over a generated Lark-shaped corpus.

Performance is measured here, never by timed unit tests. The corpus is deterministic (seeded), so
runs compare; the machines are shared and noisy, so we report medians and p95 over repeats.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from discovery.case import Case

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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024**2


def run_bench(messages: int, workdir: str | None = None, repeats: int = 10, context: int = 3,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate, ingest, query; returns the figures (see the module docstring)."""
    from discovery.ingest import ingest
    from discovery.search import search

    base = Path(workdir or tempfile.mkdtemp(prefix="discovery-bench-"))
    corpus = base / "corpus"
    log(f"generating {messages} messages under {corpus} ...")
    files = generate(corpus, messages)
    floor = floor_msgs_per_s(files)
    log(f"floor (read + sha256 + json): {floor:,.0f} msgs/s")
    case = Case(base / "case", create=True)
    started = time.perf_counter()
    report = ingest(case, [str(corpus)], copy_originals=False)
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
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    case.close()
    return result
