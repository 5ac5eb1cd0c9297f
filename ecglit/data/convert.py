"""Convert real-world ECG records into ecglit shards.

    python -m ecglit.data.convert input=PATH output=DIR [strict=true] [long_records=windows]
        ['gain_override={HR*:1000}'] [fs=500 lead_names=[I,II,...]]   (see conf/convert.yaml)

Installed, the same program is ``ecglit-convert`` (ecglit/cli.py).
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m ecglit.data.convert`: overrides are checked before the heavy imports below
    from ecglit.utils.cli import run_hydra_program

    run_hydra_program("ecglit.data.convert", "convert", "ecglit.data.convert:run")
    raise SystemExit(0)

from omegaconf import DictConfig

from ecglit.data.importers.cli import run_conversion
from ecglit.data.importers.report import ConversionReport


def run(cfg: DictConfig) -> ConversionReport:
    """The job of the program: convert, then print the counts."""
    report = run_conversion(cfg)
    c = report.counts
    print(f"{c['converted'] + c['flagged']} record(s) converted into {report.n_exams} exam(s) in "
          f"{cfg.output} ({c['flagged']} flagged, {c['skipped']} skipped); see {cfg.output}/report.md")
    return report

