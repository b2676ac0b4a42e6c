"""The export button: POST the search (query, filters, context) and get the evidence bundle as a download.

The bundle is made by :func:`discovery.export.export_bundle`, the same code as ``discovery export``,
into a private temporary folder (``EXPORT_TMP_DIR`` if set, else the system's), streamed back as
``application/zip`` and deleted once sent. Two audit entries are written:

* ``export`` / ``started`` -- who asked for what (query, filters, options, counts), recorded by the
  export's audit hook just before chain_of_custody.json is written, and put into that file's
  ``audit`` list verbatim (with its seq, prev_hash and hash, so the bundle can be tied to the
  case's chain);
* ``export`` / ``ok`` -- the same request with the bundle id, the fingerprint (SHA-256 of
  manifest.json) and the zip's SHA-256 (also sent as X-Bundle-SHA256 / X-Bundle-Fingerprint headers),
  and the seq of the ``started`` entry. A failed export is recorded with outcome ``error``.

A query or filters are required: a whole-case export is a command-line job (``discovery export ''``).
The display time zone is used for the date filters, for slicing and for the times people read.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request

from discovery.query import QueryError
from discovery.web import get_case, zones
from discovery.web.access import READERS
from discovery.web.auth import record_event
from discovery.web.params import BadParam, SearchParams, integer
from discovery.web.render import display_zone_name

bp = Blueprint("exports", __name__)
ROLES = {"exports.create": READERS}


@bp.post("/export")
def create() -> Any:
    from discovery.export import SLICES, export_bundle

    form = request.form
    params = SearchParams.from_args(form)
    if params.is_empty:
        raise BadParam("q", "give a query or a filter to export; a whole-case export is made with "
                            "`discovery export '' --case DIR --out FILE.zip`")
    slice_name = form.get("slice", "").strip() or "conversation"
    if slice_name not in SLICES:
        raise BadParam("slice", f"must be one of {', '.join(SLICES)}, not {slice_name!r}")
    prefix = form.get("bates_prefix", "").strip() or "DISC"
    start = integer(form, "bates_start", 1, 1, 10**12)
    zone_name = display_zone_name()
    where = zones.zone(zone_name) or zones.UTC
    filters = params.filter_nodes(where)
    asked = {"query": params.q, "filters": {k: v for k, v in params.to_dict().items()
                                            if k not in ("q", "context", "page", "per_page", "sort", "interval")
                                            and v is not None},
             "context": params.context, "slice": slice_name, "tz": zone_name, "bates_prefix": prefix,
             "bates_start": start}
    case = get_case()
    started: list[dict[str, Any]] = []

    def audit_hook(event: dict[str, Any]) -> list[dict[str, Any]]:
        entry = record_event("export", {**asked, "counts": event.get("counts"), "explained": event.get("explained")},
                             outcome="started")
        started.append(entry)
        return [entry]

    folder = Path(tempfile.mkdtemp(prefix="discovery-web-export-", dir=current_app.config.get("EXPORT_TMP_DIR")))
    try:
        out = folder / "bundle.zip"
        try:
            report = export_bundle(case, params.q, out, context=params.context, bates_prefix=prefix,
                                   bates_start=start, slice=slice_name, tz=zone_name, filters=filters,
                                   created_by=_who(), audit_hook=audit_hook)
        except (QueryError, ValueError) as error:
            record_event("export", {**asked, "error": str(error)}, outcome="error")
            if isinstance(error, QueryError):
                raise
            raise BadParam("bates_prefix" if "Bates prefix" in str(error) else "q", str(error)) from None
        record_event("export", {**asked, "bundle_id": report.bundle_id, "fingerprint": report.manifest_sha256,
                                "zip_sha256": report.bundle_sha256, "counts": report.counts,
                                "started_seq": started[0]["seq"] if started else None})
        name = f"{_slug(case.folder.resolve().name)}-export-{report.created_at[:10]}-{report.bundle_id[:8]}.zip"
        download = Download(out, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Response(download, mimetype="application/zip", headers={
        "Content-Length": str(report.bytes), "Content-Disposition": f'attachment; filename="{name}"',
        "X-Bundle-SHA256": report.bundle_sha256, "X-Bundle-Fingerprint": report.manifest_sha256,
    })


class Download:
    """The bundle's bytes for the WSGI server, read in chunks; closing it (sent, or the client went away)
    removes the staging folder. (send_file's file wrapper would bypass Response.call_on_close.)"""

    CHUNK = 1 << 20

    def __init__(self, path: Path, folder: Path):
        self.file = open(path, "rb")  # noqa: SIM115 - closed in close(), which the server always calls
        self.folder = folder

    def __iter__(self) -> Download:
        return self

    def __next__(self) -> bytes:
        chunk = self.file.read(self.CHUNK)
        if not chunk:
            raise StopIteration
        return chunk

    def close(self) -> None:
        self.file.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _who() -> str:
    from flask_login import current_user

    return f"{current_user.name} (web, {current_user.role})"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "case"
