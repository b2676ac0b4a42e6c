"""chain_of_custody.json: where every exported message came from, and the export itself.

``sources``: each source file the exported messages were read from (path as given at ingest,
member inside a zip, size, SHA-256 of exactly those bytes, the zip's SHA-256, format, custodian,
ingested at, ingest run id, tool version, how many exported messages it holds); ``ingest_runs``:
each run named there (start and end, tool version, arguments, status); ``format_limits``: what
each export format can and cannot contain. ``export``: the export event (tool and version, who, query,
filters, options, counts, what it produced). Its time and the bundle id are in manifest.json only,
which keeps every other file identical when the same export is made again. ``audit``: entries an
audit hook adds (the audit-trail feature); empty otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from discovery.export.select import Selection


def sources(selection: Selection) -> dict[str, Any]:
    """The sources, the ingest runs that read them, and what each format can hold (said once each)."""
    out: list[dict[str, Any]] = []
    runs: dict[int, dict[str, Any]] = {}
    limits: dict[str, str] = {}
    for row in selection.sources():
        out.append({
            "source_id": row["id"], "path": row["path"], "member": row["member"], "size": row["size"],
            "sha256": row["sha256"], "container_sha256": row["container_sha256"], "format": row["format"],
            "custodian": row["custodian"], "kept_copy": row["original"], "ingested_at": row["ingested_at"],
            "ingest_run": row["run_id"], "tool_version": row["run_tool_version"],
            "exported_messages": row["exported_messages"],
        })
        runs.setdefault(row["run_id"], {
            "id": row["run_id"], "started_at": row["run_started_at"], "finished_at": row["run_finished_at"],
            "tool_version": row["run_tool_version"], "arguments": _json(row["run_arguments"]),
            "status": row["run_status"],
        })
        if row["format"] and row["limits"]:
            limits.setdefault(row["format"], row["limits"])
    return {"sources": out, "ingest_runs": [runs[key] for key in sorted(runs)], "format_limits": limits}


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def custody(found: dict[str, Any], export_event: dict[str, Any], audit: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "about": "Every source file the exported messages came from (SHA-256 of the exact bytes ingested), the "
                 "ingest run that read it, what each export format can and cannot contain, and this export. "
                 "The export's own files are hashed in manifest.json and SHA256SUMS; its time and bundle id "
                 "are in manifest.json.",
        **found,
        "export": export_event,
        "audit": audit,
    }
