"""The per-file report (``--report x.json|x.csv``) and the summary object (``--json``)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from catsort.apply import Record
from catsort.errors import CatsortError

if TYPE_CHECKING:
    from catsort.sort import Summary

REPORT_SUFFIXES = (".json", ".csv")
FIELDS = [f.name for f in dataclasses.fields(Record)]


def write_report(records: list[Record], path: Path) -> None:
    """One row per file. A name that is not valid UTF-8 keeps its bytes: the CSV holds them as the disk
    does (surrogateescape); the JSON, which must stay valid UTF-8 to be read at all, holds ``\\udcXX``
    escapes, which Python reads back into the same name (``os.fsencode``)."""
    rows = [dataclasses.asdict(r) for r in records]
    csv_file = path.suffix.lower() == ".csv"
    try:
        with path.open("w", newline="", encoding="utf-8", errors="surrogateescape" if csv_file else "backslashreplace") as f:
            if csv_file:
                writer = csv.DictWriter(f, fieldnames=FIELDS)
                writer.writeheader()
                writer.writerows(rows)
            else:
                f.write(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise CatsortError(f"{path}: cannot write the report: {exc.strerror or exc}") from None


def summary_object(summary: Summary, model_name: str) -> dict:
    return {
        "folder": str(summary.folder),
        "dry_run": summary.dry_run,
        "model": model_name,
        "threshold": summary.threshold,
        "files": len(summary.records),
        # A dry run moves nothing: what it would do is counted apart, so "moved" is always what happened.
        "moved": 0 if summary.dry_run else summary.count("move"),
        "copied": 0 if summary.dry_run else summary.count("copy"),
        "would_move": summary.count("move") if summary.dry_run else 0,
        "would_copy": summary.count("copy") if summary.dry_run else 0,
        "kept": summary.count("stay"),
        "copied_before": summary.copied_before,  # of "kept": an earlier copy run's copy is there (the report names it)
        "failed": len(summary.failed),
        "failures": [{"path": r.path, "error": r.error} for r in summary.failed],
        "settled_interrupted_runs": summary.settled_runs,
        "ignored_journals": summary.warnings,
        "would_refuse": summary.would_refuse,  # a dry run of a folder a real run cannot change (read-only), else null
        "journal": str(summary.journal) if summary.journal and summary.journal.exists() else None,  # removed when nothing moved
        # Stopped part way (Ctrl-C, a full or read-only disk): the counts above are of the files handled
        # before it, "unhandled" were found but not reached, and "stop_reason" is the line printed to stderr.
        "stopped": summary.stopped is not None,
        "stop_reason": summary.stopped,
        "interrupted": summary.interrupted,
        "unhandled": max(0, summary.total - len(summary.records)),
    }
