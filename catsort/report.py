"""The per-file report (``--report x.json|x.csv``) and the summary object (``--json``)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from catsort.apply import Record
from catsort.sort import Summary

REPORT_SUFFIXES = (".json", ".csv")
FIELDS = [f.name for f in dataclasses.fields(Record)]


def write_report(records: list[Record], path: Path) -> None:
    rows = [dataclasses.asdict(r) for r in records]
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def summary_object(summary: Summary, model_name: str) -> dict:
    return {
        "folder": str(summary.folder),
        "dry_run": summary.dry_run,
        "model": model_name,
        "threshold": summary.threshold,
        "files": len(summary.records),
        "moved": summary.count("move"),
        "copied": summary.count("copy"),
        "kept": summary.count("stay"),
        "failed": len(summary.failed),
        "failures": [{"path": r.path, "error": r.error} for r in summary.failed],
        "settled_interrupted_runs": summary.settled_runs,
        "ignored_journals": summary.warnings,
        "journal": str(summary.journal) if summary.journal else None,
    }
