"""README.txt: what the bundle holds, for whoever opens it, and how to check it without discovery."""

from __future__ import annotations

from typing import Any

FILES = (
    ("README.txt", "this file"),
    ("manifest.json", "bundle id, tool version, creation time (UTC), who made it, case, query, filters, "
                      "options, counts, Bates range, and the size and SHA-256 of every other file "
                      "(all but manifest.json and SHA256SUMS)"),
    ("SHA256SUMS", "the SHA-256 of every file but itself (manifest.json included), for sha256sum -c"),
    ("messages.jsonl", "every exported message, one JSON object a line: the message model with its raw "
                       "source record (raw) and provenance (source: file, SHA-256, locator), marked hit or "
                       "context, with its Bates number and the character ranges the query matched, and "
                       "its tags and notes (review decisions as of the export)"),
    ("messages.csv", "the same, flat, UTF-8 with BOM for Excel (cells that a spreadsheet would run as a "
                     "formula start with an apostrophe; messages.jsonl has the exact values); the last two "
                     "columns, tags and notes, hold the review decisions"),
    ("transcript.html", "a self-contained printable page: conversations in order, hits marked, context "
                        "shaded, times with their zone, provenance, tags and notes with each message; no "
                        "script, no external files"),
    ("rsmf/<BEGBATES>.rsmf", "RSMF 2.0 (Relativity Short Message Format): one per conversation per slice, "
                             "an e-mail with X-RSMF-* headers, a text body listing the events, and rsmf.zip "
                             "holding rsmf_manifest.json"),
    ("text/<BEGBATES>.txt", "the text body of each RSMF file (the load file's TEXT_LINK)"),
    ("loadfile.dat", "Concordance/Relativity DAT load file, one row per RSMF document: Bates range, "
                     "custodian, dates (UTC), conversation, participants, MD5/SHA-1/SHA-256, native and text "
                     "links, and TAGS and NOTES last; UTF-8 with BOM, delimiter 0x14, qualifier þ, "
                     "in-field newline ®, multi-value separator ;"),
    ("chain_of_custody.json", "every source file the exported messages came from (SHA-256, size, format, "
                              "custodian, ingest run and time, tool version) and this export event"),
)


def readme_text(info: dict[str, Any]) -> str:
    counts = info["counts"]
    files = list(FILES)
    if info["terms"] is not None:
        files.append(("search_term_report.csv", "the search term report: per term, messages hit, hits with "
                                                "their context windows, conversations with hits, and unique "
                                                "hits (hit by no other term); each term ANDed with the query"))
    width = max(len(name) for name, _ in files)
    bates = f"{info['bates_first']} - {info['bates_last']}" if info["bates_first"] else "none (nothing exported)"
    lines = [
        "Evidence bundle made by discovery (e-discovery search for exported chat)",
        "=" * 72,
        "",
        f"Query:          {info['query'] or '(none: every message)'}",
        *[f"Filter:         {item}" for item in info["filters"]],
        f"Read as:        {info['explained']}",
        f"Case:           {info['case']}",
        f"Context:        up to {info['context']} messages before and after each hit, within its conversation "
        "(or the forwarded bundle it was in)",
        f"Messages:       {counts['messages']} ({counts['hits']} hits, {counts['context']} context) in "
        f"{counts['conversations']} conversations",
        f"Documents:      {counts['documents']} RSMF files, sliced by {info['slice']} in {info['tz']}",
        f"Bates numbers:  {bates}",
        f"Source files:   {counts['sources']} (see chain_of_custody.json)",
        f"Attachments:    {counts['attachments']} listed by messages; chat exports hold no attachment bytes, so "
        "each is a placeholder inside its RSMF file",
        f"Review:         {_review_line(info['review'])}",
        f"Tool:           discovery {info['tool_version']}",
        "Created:        the creation time, creator and bundle id are in manifest.json",
    ]
    if info["terms"] is not None:
        lines.append(f"Search terms:   {len(info['terms'])} (search_term_report.csv)")
    lines += ["", "What is inside", "-" * 14]
    lines += [f"{name.ljust(width)}  {text}" for name, text in files]
    lines += [
        "",
        "Times are UTC (ISO 8601, ending in Z) in messages.jsonl, manifest.json and the RSMF manifests; "
        f"transcript.html, the RSMF text and messages.csv's sent_at_local show them in {info['tz']} with "
        "the UTC offset.",
        "",
        "Tags and notes",
        "-" * 14,
        "Reviewers' tags (who added each, when) and notes (author, when written and last edited) are a "
        "snapshot as of the export time: manifest.json's created_at. Tags or notes changed later are not in "
        "this bundle, and deleted notes are not exported (their history stays in the case). They are in "
        "messages.jsonl, messages.csv, transcript.html and loadfile.dat, but not in the RSMF files, which "
        "hold the source conversation only. In loadfile.dat a ';' inside a tag or note becomes ','.",
        "",
        "Bates numbers",
        "-" * 13,
        "Every exported message has its own number (PREFIX + 7 or more digits), assigned in export order "
        "(conversation id, then time, then message id) without gaps. A document is one RSMF file; its "
        "BEGBATES and ENDBATES are the numbers of its first and last message, so the documents' ranges "
        "follow each other without gaps. A slice larger than 10,000 messages is split into parts.",
        "",
        "How to verify this bundle",
        "-" * 25,
        "1. With discovery (checks every hash, the manifest, SHA256SUMS, Bates ranges and each RSMF file):",
        "     discovery verify BUNDLE.zip",
        "2. With common tools, after unpacking (unzip BUNDLE.zip -d bundle && cd bundle):",
        "     sha256sum -c SHA256SUMS                  (Linux)",
        "     shasum -a 256 -c SHA256SUMS              (macOS)",
        "     Get-FileHash -Algorithm SHA256 FILE      (Windows PowerShell; compare with SHA256SUMS)",
        "   Every line must end in OK. sha256sum does not notice ADDED files; to see that nothing was added",
        "   or removed, compare the listing with the files present:",
        "     find . -type f ! -name SHA256SUMS | sed 's|^\\./||' | LC_ALL=C sort > /tmp/present.txt",
        "     cut -c67- SHA256SUMS | LC_ALL=C sort | diff - /tmp/present.txt && echo same files",
        "3. The bundle's fingerprint is the SHA-256 of manifest.json: manifest.json holds the hash of every",
        "   other file, and SHA256SUMS holds manifest.json's. Record the fingerprint when the bundle is",
        "   handed over (discovery export and discovery verify print it); a bundle whose manifest.json",
        "   hashes differently is not the bundle that was handed over.",
        "",
        "Zip entries carry the fixed date 1980-01-01 so that the same export gives the same bytes; the real",
        "creation time is in manifest.json.",
    ]
    return "\n".join(lines) + "\n"


def _review_line(review: dict[str, Any]) -> str:
    """Counts of the review decisions the bundle carries, e.g. ``3 messages tagged (hot 2, privileged 1), 2 notes``."""
    tags = ", ".join(f"{name} {count}" for name, count in review["tags"].items())
    return (f"{review['tagged_messages']} messages tagged{f' ({tags})' if tags else ''}, {review['notes']} notes "
            f"on {review['messages_with_notes']} messages, as of the export time (see Tags and notes below)")
