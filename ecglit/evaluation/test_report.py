"""The end-of-run report: a per-class table on the console and test_metrics.json in the run dir."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ecglit.metrics.classification import METRICS
from ecglit.utils.io import write_text


SHORT_NAMES = {"precision": "prec", "recall": "rec", "specificity": "spec", "f1": "F1", "auroc": "AUROC",
               "ap": "AP"}


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def metrics_table(report: dict, title: str = "Test metrics") -> Table:
    table = Table(title=title)
    table.add_column("class")
    for m in METRICS:
        table.add_column(SHORT_NAMES[m], justify="right")
    table.add_column("thr", justify="right")
    table.add_column("n+", justify="right")
    thresholds = report.get("thresholds", {})
    for cls, vals in report["per_class"].items():
        support = report.get("support", {}).get(cls, {})
        table.add_row(cls, *[_fmt(vals[m]) for m in METRICS], _fmt(thresholds.get(cls)),
                      str(support.get("positives", "")))
    table.add_row("macro", *[_fmt(report["macro"][m]) for m in METRICS], "", "", style="bold")
    return table


def print_report(report: dict, checkpoint: str | None, console: Console | None = None) -> None:
    console = console or Console()
    console.print(metrics_table(report, title=f"Test metrics ({report.get('n_exams', '?')} exams)"))
    console.print(f"best checkpoint: {checkpoint or '(none: final weights)'}")


def _json_safe(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    return obj


def write_test_metrics(report: dict, checkpoint: str | None, path: str | Path) -> Path:
    """test_metrics.json: {"macro", "per_class", "thresholds", "checkpoint", "support", "n_exams"}.

    Undefined values (e.g. recall of a class without positives) are written as null.
    """
    path = Path(path)
    payload = {
        "macro": report["macro"],
        "per_class": report["per_class"],
        "thresholds": report.get("thresholds", {}),
        "checkpoint": checkpoint,
        "support": report.get("support", {}),
        "n_exams": report.get("n_exams"),
    }
    return write_text(path, json.dumps(_json_safe(payload), indent=2), overwrite=True)  # the run's own file
