"""Summarise a Hydra multirun directory: one row per job, and a metric plotted against each swept parameter.

    python -m ecglit.sweeps.summarize outputs/ablate_kernel/multiruns/2026-05-01_12-00-00
    python -m ecglit.sweeps.summarize DIR --metric test/auroc_macro --out DIR/report
    ecglit-summarize DIR                       (the same, installed)

A job is a sub-directory holding ``.hydra/overrides.yaml``. Its row holds the job's overrides (one column
per override key), the test metrics of ``test_metrics.json`` (``test/<metric>_macro`` and
``test/<metric>/<class>``, the names train.py logs) and, when the job used the CSV logger, the last value
of every other logged metric (e.g. ``val/f1_macro``). Jobs that did not finish stay in the table with
``status`` "no test_metrics.json". Writes ``summary.csv`` (everything), ``summary.md`` (swept
parameters and macro test metrics) and ``summary.png`` (the metric against each swept parameter); summaries
already there are replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from ecglit.errors import ConfigError, DataError
from ecglit.utils.cli import OneLineArgumentParser, user_error_boundary
from ecglit.utils.io import atomic_path, ensure_dir, refuse_existing

DEFAULT_METRIC = "test/f1_macro"
SUMMARY_FILES = {"csv": "summary.csv", "markdown": "summary.md", "plot": "summary.png"}
STATUS_OK = "ok"
STATUS_MISSING = "no test_metrics.json"


def find_jobs(sweep_dir: str | Path) -> list[Path]:
    """Job directories under ``sweep_dir`` (any depth), in job-number order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(sweep_dir, "not a directory (expected a Hydra multirun directory)")
    jobs = [p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")]
    jobs = [j for j in jobs if j != sweep_dir]

    def order(path: Path) -> tuple:
        rel = path.relative_to(sweep_dir).parts
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in rel)

    return sorted(jobs, key=order)


def read_overrides(job_dir: Path) -> dict[str, object]:
    """``{key: value}`` of a job's ``.hydra/overrides.yaml`` (``+``/``++`` prefixes dropped)."""
    path = job_dir / ".hydra" / "overrides.yaml"
    try:
        lines = yaml.safe_load(path.read_text()) or []
        parsed = OverridesParser.create().parse_overrides([str(x) for x in lines])
    except Exception as err:  # yaml or Hydra grammar errors
        raise DataError(path, f"cannot read the job's overrides ({err})") from err
    out: dict[str, object] = {}
    for ov in parsed:
        if ov.is_delete():
            continue
        value = ov.value()
        out[ov.get_key_element()] = value if isinstance(value, int | float | str | bool) or value is None \
            else str(value)
    return out


def read_test_metrics(job_dir: Path) -> dict[str, float]:
    """Flat ``test/...`` metrics of ``test_metrics.json`` (null -> NaN); {} when the file is absent."""
    path = job_dir / "test_metrics.json"
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text())
        flat = {f"test/{m}_macro": v for m, v in report["macro"].items()}
        for cls, vals in report.get("per_class", {}).items():
            flat.update({f"test/{m}/{cls}": v for m, v in vals.items()})
        if report.get("n_exams") is not None:
            flat["test/n_exams"] = report["n_exams"]
    except (ValueError, KeyError, AttributeError) as err:
        raise DataError(path, f"not a test_metrics.json written by train.py ({err})") from err
    return {k: math.nan if v is None else float(v) for k, v in flat.items()}


def read_last_logged(job_dir: Path) -> dict[str, float]:
    """The last logged value of every metric in the job's CSVLogger files (``csv/version_*/metrics.csv``)."""
    out: dict[str, float] = {}
    for path in sorted(job_dir.glob("csv/version_*/metrics.csv")):
        frame = pd.read_csv(path)
        for column in frame.columns:
            if column in ("epoch", "step"):
                continue
            values = frame[column].dropna()
            if len(values):
                out[column] = float(values.iloc[-1])
    return out


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job: ``job``, ``status``, the job's overrides, then its metrics."""
    sweep_dir = Path(sweep_dir)
    jobs = find_jobs(sweep_dir)
    if not jobs:
        raise DataError(sweep_dir, "no job directories (.hydra/overrides.yaml) found: is this the multirun "
                                   "directory (hydra.sweep.dir) of `python train.py -m ...`?")
    rows, override_keys = [], {}
    for job in jobs:
        overrides = read_overrides(job)
        override_keys.update(dict.fromkeys(overrides))
        test = read_test_metrics(job)
        logged = {k: v for k, v in read_last_logged(job).items() if k not in test and k not in overrides}
        rows.append({"job": str(job.relative_to(sweep_dir)), "status": STATUS_OK if test else STATUS_MISSING,
                     **overrides, **test, **logged})
    frame = pd.DataFrame(rows)
    frame.attrs["overrides"] = list(override_keys)
    return frame


def override_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that hold the jobs' overrides (as recorded by :func:`collect`)."""
    return [c for c in frame.attrs.get("overrides", []) if c in frame.columns]


def metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("job", "status", *override_columns(frame))]


def swept_parameters(frame: pd.DataFrame) -> list[str]:
    """Override keys whose value differs between jobs."""
    return [c for c in override_columns(frame) if frame[c].astype(str).nunique(dropna=False) > 1]


def markdown_table(frame: pd.DataFrame, metric: str) -> str:
    swept = swept_parameters(frame)
    macro = [c for c in metric_columns(frame) if c.startswith("test/") and c.endswith("_macro")]
    shown = ["job", *swept, *dict.fromkeys([metric, *macro]), "status"]
    shown = [c for c in shown if c in frame.columns]
    common = {c: frame[c].iloc[0] for c in override_columns(frame) if c not in swept}
    lines = [f"# Sweep summary ({len(frame)} jobs)", ""]
    if common:
        lines += ["Common overrides: " + ", ".join(f"`{k}={v}`" for k, v in common.items()), ""]
    lines += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for _, row in frame[shown].iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) and not float(v).is_integer() else
                 ("n/a" if isinstance(v, float) and math.isnan(v) else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if metric in frame.columns and frame[metric].notna().any():
        best = frame.loc[frame[metric].idxmax()]
        lines += ["", f"Best {metric}: {best[metric]:.4g} (job {best['job']}: "
                  + ", ".join(f"{p}={best[p]}" for p in swept) + ")"]
    return "\n".join(lines) + "\n"


def optuna_result(sweep_dir: Path) -> str:
    """The Optuna sweeper's best trial (``optimization_results.yaml``), as markdown; "" if absent."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return ""
    result = yaml.safe_load(path.read_text()) or {}
    params = ", ".join(f"`{k}={v}`" for k, v in (result.get("best_params") or {}).items())
    return f"\nOptuna best value (optimized_metric): {result.get('best_value')} with {params}\n"


def plot_metric(frame: pd.DataFrame, metric: str, path: str | Path) -> Path:
    """``metric`` against each swept parameter: one panel per parameter, jobs as points, mean as line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = swept_parameters(frame) or ["job"]
    fig, axes = plt.subplots(1, len(params), figsize=(4.0 * len(params), 3.4), squeeze=False)
    for ax, param in zip(axes[0], params, strict=True):
        data = frame[[param, metric]].dropna(subset=[metric])
        values = pd.to_numeric(data[param], errors="coerce")
        if values.notna().all() and len(values):
            x = values
            ax.set_xticks(sorted(values.unique()))
            if values.min() > 0 and values.max() / values.min() >= 100:
                ax.set_xscale("log")
        else:  # categorical (config-group choices, names)
            levels = sorted(data[param].astype(str).unique())
            x = data[param].astype(str).map({v: i for i, v in enumerate(levels)})
            ax.set_xticks(range(len(levels)), levels, rotation=30, ha="right")
        ax.scatter(x, data[metric], alpha=0.7)
        means = data.assign(_x=x).groupby("_x")[metric].mean()
        ax.plot(means.index, means.values, marker="_", color="black")  # mean per value
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} over {len(frame)} jobs")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:  # summarize() refused existing files first
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path


def summarize(sweep_dir: str | Path, metric: str = DEFAULT_METRIC, out_dir: str | Path | None = None,
              plot: bool = True, overwrite: bool = False) -> dict[str, Path]:
    """Write summary.csv, summary.md and (``plot``) summary.png; returns their paths. Existing summaries
    are refused before anything is written, unless ``overwrite``."""
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir)
    paths = {kind: out / name for kind, name in SUMMARY_FILES.items() if plot or kind != "plot"}
    refuse_existing(paths.values(), overwrite, hint="--overwrite")
    frame = collect(sweep_dir)
    if metric not in frame.columns:
        raise ConfigError(f"--metric {metric!r} is not in the sweep's results; available: "
                          f"{', '.join(metric_columns(frame)) or '(none: no job finished)'}")
    ensure_dir(out)
    with atomic_path(paths["csv"], overwrite=True) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(paths["markdown"], overwrite=True) as tmp:
        tmp.write_text(markdown_table(frame, metric) + optuna_result(Path(sweep_dir)))
    if plot:
        plot_metric(frame, metric, paths["plot"])
    return paths


def build_parser(prog: str = "python -m ecglit.sweeps.summarize") -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="a multirun directory (hydra.sweep.dir), e.g. outputs/<task>/multiruns/<time>")
    parser.add_argument("--metric", default=DEFAULT_METRIC,
                        help=f"column to plot and rank by (default {DEFAULT_METRIC}; e.g. test/auroc_macro, "
                             "test/f1/AF, val/f1_macro with the CSV logger)")
    parser.add_argument("--out", default=None, help="output directory (default: the sweep directory)")
    parser.add_argument("--no-plot", action="store_true", help="write the tables only")
    parser.add_argument("--overwrite", action="store_true", help="replace summary.* files already there")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m ecglit.sweeps.summarize") -> int:
    """The program (``ecglit-summarize``): 0 on success; user errors end as one line and SystemExit."""
    args = build_parser(prog).parse_args(argv)
    with user_error_boundary(prog):
        paths = summarize(args.sweep_dir, args.metric, args.out, plot=not args.no_plot, overwrite=args.overwrite)
    print(paths["markdown"].read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
