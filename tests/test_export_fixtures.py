"""A small real case for the evidence-bundle tests: Lark-shaped JSONL ingested into a case on disk.

The other export tests import ``build_case``/``export``/``unpack`` from here. The records carry
what a bundle must survive: Chinese text and names, an edit, a recall, a reply, a reaction, an
attachment, hostile HTML, spreadsheet formulas, and load-file delimiters in a conversation name.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from discovery.case import Case
from discovery.export import ExportReport, export_bundle
from discovery.ingest import ingest
from discovery.search import parse_query

T0 = 1_725_940_800_000  # 2024-09-10T04:00:00Z, i.e. 12:00 in Asia/Shanghai
MINUTE = 60_000
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> whitewash the numbers"
FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+1 agreed", "-2+3", "@SUM(A1:A9)"]
NAMES = {"ou_li": "李伟", "ou_mark": "Mark Ellison", "ou_sofia": "Sofia Marín", "ou_eve": "<b>Eve</b>"}


def message(n: int, chat: str, sender: str, text: str, at_ms: int, **extra: Any) -> dict[str, Any]:
    record = {
        "message_id": f"om_{n:04d}", "msg_type": "text", "create_time": str(at_ms), "update_time": str(at_ms),
        "deleted": False, "updated": False, "chat_id": chat,
        "sender": {"id": sender, "id_type": "open_id", "sender_type": "user", "tenant_key": "tk"},
        "body": {"content": json.dumps({"text": text}, ensure_ascii=False)},
    }
    record.update(extra)
    return record


def records() -> list[dict[str, Any]]:
    alpha, dm = "oc_alpha", "oc_dm"
    rows = [
        message(1, alpha, "ou_mark", "Kickoff: the audit starts Monday", T0),
        message(2, alpha, "ou_li", "我们需要洗白这笔账", T0 + 1 * MINUTE),
        message(3, alpha, "ou_sofia", FORMULAS[0], T0 + 2 * MINUTE),
        message(4, alpha, "ou_mark", HOSTILE, T0 + 3 * MINUTE),
        message(5, alpha, "ou_li", FORMULAS[1], T0 + 4 * MINUTE, parent_id="om_0004", root_id="om_0004"),
        message(6, alpha, "ou_mark", FORMULAS[2], T0 + 5 * MINUTE, updated=True,
                update_time=str(T0 + 9 * MINUTE)),
        message(7, alpha, "ou_li", "This message was recalled", T0 + 6 * MINUTE, deleted=True),
        {**message(8, alpha, "ou_sofia", "", T0 + 7 * MINUTE), "msg_type": "file",
         "body": {"content": json.dumps({"file_key": "file_v2_ledger", "file_name": "ledger.xlsx"})}},
        message(9, alpha, "ou_eve", FORMULAS[3], T0 + 8 * MINUTE),
    ]
    rows += [message(10 + i, alpha, "ou_mark", f"filler {i} nothing to see", T0 + (20 + i) * MINUTE)
             for i in range(8)]
    # next day in Shanghai (and in UTC): a second 24h slice of the same conversation
    rows.append(message(30, alpha, "ou_sofia", "whitewash again, Sofia here", T0 + 24 * 60 * MINUTE))
    rows.append(message(31, alpha, "ou_li", "好的", T0 + 24 * 60 * MINUTE + MINUTE))
    rows += [
        message(40, dm, "ou_li", "hi Mark", T0 + 2 * 60 * MINUTE),
        message(41, dm, "ou_mark", "did you whitewash it?", T0 + 2 * 60 * MINUTE + MINUTE),
        message(42, dm, "ou_li", "还没有", T0 + 2 * 60 * MINUTE + 2 * MINUTE),
    ]
    return rows


def directory() -> list[dict[str, Any]]:
    return [
        {"code": 0, "msg": "success", "data": {"has_more": False, "items": [
            {"chat_id": "oc_alpha", "name": "Alpha 项目组 þ\x14 <i>room</i>"}]}},
        {"chat_id": "oc_dm", "code": 0, "msg": "success", "data": {"chat_mode": "p2p", "name": "李伟 ↔ Mark"}},
        {"code": 0, "msg": "success", "data": {"has_more": False, "items": [
            {"member_id_type": "open_id", "member_id": pid, "name": name} for pid, name in NAMES.items()]}},
        {"message_id": "om_0004", "code": 0, "msg": "success", "data": {"has_more": False, "items": [
            {"reaction_id": "r1", "operator": {"operator_id": "ou_li", "operator_type": "user"},
             "action_time": str(T0 + 10 * MINUTE), "reaction_type": {"emoji_type": "THUMBSUP"}}]}},
    ]


def build_case(folder: Path) -> Case:
    """Write the export files under FOLDER/export and ingest them into FOLDER/case."""
    export_dir = folder / "export"
    export_dir.mkdir(parents=True)
    with open(export_dir / "messages.jsonl", "w", encoding="utf-8") as file:
        for record in records():
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    for number, item in enumerate(directory()):
        (export_dir / f"directory_{number}.json").write_text(json.dumps(item, ensure_ascii=False), encoding="utf-8")
    case = Case(folder / "case", create=True)
    report = ingest(case, [str(export_dir)], custodian="Li Wei")
    assert report.exceptions == 0, report.errors
    return case


def export(case: Case, out: Path, query: str = "whitewash OR 洗白", **options: Any) -> ExportReport:
    options.setdefault("created_by", "tester")
    return export_bundle(case, query, out, **options)


def unpack(bundle: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    return folder


def jsonl(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "messages.jsonl").read_text(encoding="utf-8").splitlines()]


def test_fixture_case_ingests_every_record(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    try:
        assert case.stats()["messages"] == len(records())
        assert len(case.engine().all_ids(parse_query(case, "whitewash"))) == 3
    finally:
        case.close()
