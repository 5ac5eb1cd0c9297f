"""The conversion report: report.csv (one row per input record) and report.md (summary for people)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecglit.data.shards import write_csv
from ecglit.utils.io import write_text

REPORT_COLUMNS = (
    "record", "source_file", "format", "status", "reason", "flags", "notes", "n_exams", "exam_ids",
    "original_fs", "duration_s", "n_leads_original", "gain_used", "header_gain", "amplitude_mv",
    "label_source",
)
STATUSES = ("converted", "flagged", "skipped")
REPORT_FILES = ("report.csv", "report.md")


@dataclass
class ConversionReport:
    """Rows of report.csv plus the run's settings; ``counts`` per status."""

    input: str
    output: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    n_exams: int = 0

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r["status"] for r in self.rows)
        return {s: c.get(s, 0) for s in STATUSES}

    def by_status(self, status: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == status]

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write (or rewrite) REPORT_FILES into ``out_dir``: the conversion owns them (ShardWriter refused
        a folder that held them before)."""
        out_dir = Path(out_dir)
        csv_path, md_path = (out_dir / name for name in REPORT_FILES)
        write_csv(csv_path, REPORT_COLUMNS, self.rows)
        write_text(md_path, self.markdown(), overwrite=True)
        return csv_path, md_path

    def markdown(self) -> str:
        counts = self.counts
        lines = [
            "# Conversion report", "",
            f"- input: `{self.input}`",
            f"- output: `{self.output}`",
            f"- records found: {len(self.rows)}; converted: {counts['converted']}, flagged (converted, "
            f"check them): {counts['flagged']}, skipped: {counts['skipped']}",
            f"- exams written: {self.n_exams}",
        ]
        lines += [f"- {k}: `{v}`" for k, v in self.settings.items()]
        for status, title in (("skipped", "Skipped records"), ("flagged", "Flagged records")):
            rows = self.by_status(status)
            if not rows:
                continue
            lines += ["", f"## {title} ({len(rows)})", "", "| record | file | reason |", "|---|---|---|"]
            lines += [f"| {r['record']} | {r['source_file']} | {_cell(r['reason'])} |" for r in rows]
        if self.ignored:
            lines += ["", f"## Files not recognised as records ({len(self.ignored)})", ""]
            lines += [f"- {p}" for p in self.ignored]
        return "\n".join(lines) + "\n"


def _cell(text: object) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")
