"""The markdown report (report.md): the tables of an evaluation, readable without opening the CSVs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecglit.evaluation.binary_stats import METRICS
from ecglit.evaluation.figures import METRIC_LABELS
from ecglit.utils.io import write_text

UNDEFINED = "n/a*"


def fmt(value: float, digits: int = 3) -> str:
    """A number to `digits` decimals; undefined values (NaN) as UNDEFINED."""
    return UNDEFINED if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _with_interval(row: pd.Series) -> str:
    if not np.isfinite(row["value"]):
        return UNDEFINED
    if np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]):
        return f"{row['value']:.3f} ({row['ci_low']:.3f}-{row['ci_high']:.3f})"
    return fmt(row["value"])


def table2_sections(table2: pd.DataFrame, classes: Sequence[str], level: float) -> list[str]:
    """Per-predictor tables of all metrics, and the paper-style F1 comparison across predictors."""
    sections = []
    ci = f"{level * 100:g}% bootstrap interval"
    for name, group in table2.groupby("predictor", sort=False):
        cells = group.set_index(["class", "metric"])
        rows = [[c, *[_with_interval(cells.loc[(c, m)]) for m in METRICS]] for c in [*classes, "macro"]]
        header = ["class", *[METRIC_LABELS[m] for m in METRICS]]
        sections.append(f"### {name}: value ({ci})\n\n" + markdown_table(header, rows))
    f1 = table2[table2["metric"] == "f1"].pivot(index="class", columns="predictor", values="value")
    names = list(dict.fromkeys(table2["predictor"]))
    rows = [[c, *[fmt(f1.loc[c, n]) for n in names]] for c in [*classes, "macro"]]
    sections.append("### F1 score of every predictor\n\n" + markdown_table(["class", *names], rows))
    return sections


def agreement_sections(agreement: pd.DataFrame, classes: Sequence[str]) -> list[str]:
    if agreement.empty:
        return []
    agreement = agreement.assign(pair=agreement["predictor_a"] + " vs " + agreement["predictor_b"])
    pairs = list(dict.fromkeys(agreement["pair"]))
    sections = []
    for column, title in (("kappa", "Cohen's kappa between predictors"),
                          ("mcnemar_p", ("McNemar's test p-value (chi-square, 1 dof, no continuity "
                                         "correction, on the wrong answers)"))):
        wide = agreement.pivot(index="pair", columns="class", values=column)
        rows = [[p, *[fmt(wide.loc[p, c]) for c in classes]] for p in pairs]
        sections.append(f"### {title}\n\n" + markdown_table(["pair", *classes], rows))
    if agreement["mcnemar_p"].isna().any():
        sections.append(f"McNemar {UNDEFINED}: the two predictors make exactly the same mistakes "
                        "(no discordant exams).")
    return sections


def confusion_section(confusion: pd.DataFrame) -> str:
    rows = confusion[["predictor", "class", "tn", "fp", "fn", "tp"]].itertuples(index=False)
    return "### Confusion matrices (reference x predicted)\n\n" + markdown_table(
        ["predictor", "class", "TN", "FP", "FN", "TP"], list(rows))


def seeds_section(seeds: pd.DataFrame, selected: str) -> str:
    wide = seeds[seeds["class"].isin(["micro", "macro"])]
    wide = wide.assign(key=wide["class"] + " " + wide["metric"])
    table = wide.pivot(index="model", columns="key", values="value")
    ranks = seeds.groupby("model", sort=False)["rank_micro_ap"].first()
    keys = ["micro ap", "macro ap", "macro auroc", "macro f1"]
    rows = []
    for model in dict.fromkeys(seeds["model"]):
        rank = ranks[model]
        mark = " (selected)" if model == selected else ""
        rows.append([f"{model}{mark}", "-" if not np.isfinite(rank) else int(rank),
                     *[fmt(table.loc[model, k]) for k in keys]])
    header = ["model", "rank (ascending micro-AP)", "micro AP", "macro AP", "macro AUROC", "macro F1"]
    return "### Seeds\n\n" + markdown_table(header, rows)


def write_markdown(
    path: str | Path,
    title: str,
    summary: Sequence[str],
    table2: pd.DataFrame,
    agreement: pd.DataFrame,
    confusion: pd.DataFrame,
    seeds: pd.DataFrame | None,
    selected: str | None,
    figures: Sequence[Path],
    classes: Sequence[str],
    level: float,
) -> Path:
    """Write report.md with every table, the figure links and a legend for undefined values."""
    parts = [f"# {title}", "\n".join(f"- {line}" for line in summary)]
    parts.append("## Scores (Table 2)")
    parts += table2_sections(table2, classes, level)
    notes = table2[table2["note"].str.startswith("undefined")]
    if not notes.empty:
        items = [f"- {r.predictor} / {r['class']} / {r.metric}: {r.note}" for _, r in notes.iterrows()]
        parts.append("Undefined values:\n\n" + "\n".join(items))
    parts.append("## Agreement")
    parts += agreement_sections(agreement, classes)
    parts.append(confusion_section(confusion))
    if seeds is not None:
        parts.append(seeds_section(seeds, selected or ""))
    if figures:
        parts.append("## Figures\n\n" + "\n".join(f"![{f.stem}]({f.name})" for f in figures))
    parts.append(f"{UNDEFINED} = undefined (a zero denominator, e.g. a class without positives); "
                 "CSV files leave such cells empty.")
    return write_text(path, "\n\n".join(parts) + "\n", overwrite=True)  # run_report refused existing files
