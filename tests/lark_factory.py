"""Build small Lark-shaped records for tests that need exact, hand-checked content."""

from __future__ import annotations

import json
from pathlib import Path

BASE_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z


def message(n: int, text: str, *, chat: str = "oc_test", sender: str = "ou_alice", minutes: int | None = None,
            **extra: object) -> dict[str, object]:
    """One im/v1 message object, N-th in its chat, one minute apart unless MINUTES says otherwise."""
    at = BASE_MS + 60_000 * (n if minutes is None else minutes)
    record: dict[str, object] = {
        "message_id": f"om_{chat}_{n:04d}", "msg_type": "text", "create_time": str(at), "update_time": str(at),
        "deleted": False, "updated": False, "chat_id": chat,
        "sender": {"id": sender, "id_type": "open_id", "sender_type": "user", "tenant_key": "tk"},
        "body": {"content": json.dumps({"text": text}, ensure_ascii=False)},
    }
    record.update(extra)
    return record


def write_jsonl(path: Path, records: list[object]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_directory(path: Path, chats: dict[str, str], members: dict[str, str]) -> None:
    """A chat list response and a member list response, as a real Lark export carries them."""
    (path / "chats.json").write_text(json.dumps({
        "code": 0, "msg": "success",
        "data": {"has_more": False, "items": [{"chat_id": cid, "name": name} for cid, name in chats.items()]},
    }, ensure_ascii=False), encoding="utf-8")
    (path / "members.json").write_text(json.dumps({
        "code": 0, "msg": "success",
        "data": {"has_more": False, "member_total": len(members), "items": [
            {"member_id_type": "open_id", "member_id": uid, "name": name, "tenant_key": "tk"}
            for uid, name in members.items()]},
    }, ensure_ascii=False), encoding="utf-8")
