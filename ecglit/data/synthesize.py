"""Generate the synthetic data set (CODE-15% layout), or draw example figures.

    python -m ecglit.data.synthesize n=20000 seed=0 out=data/synthetic
    python -m ecglit.data.synthesize n=2000 out=data/pn generator.label_definitions=physionet workers=2
    python -m ecglit.data.synthesize figure=true out=docs/figures

Installed, the same program is ``ecglit-synthesize`` (ecglit/cli.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ecglit.constants import CLASSES
from ecglit.data.synthetic import SyntheticConfig, materialize
from ecglit.data.synthetic.config import register_schema
from ecglit.utils.cli import run_hydra_program
from ecglit.utils.io import refuse_existing

log = logging.getLogger(__name__)
COMBINED_FIGURE = "synthetic_examples.png"


def figure_files(out: Path) -> list[Path]:
    """The files :func:`write_figures` writes into ``out``."""
    return [out / f"synthetic_{cls}.png" for cls in ("normal", *CLASSES)] + [out / COMBINED_FIGURE]


def write_figures(out: Path, seed: int, config: SyntheticConfig, overwrite: bool = False) -> Path:
    """One 12-lead PNG per class (+ normal) and the combined README figure; returns the latter. Existing
    figures are refused unless ``overwrite``."""
    from ecglit.data.synthetic.examples import describe, showcase_exams
    from ecglit.plotting.ecg12 import plot_ecg12, plot_ecg12_grid  # matplotlib only when drawing

    refuse_existing(figure_files(out), overwrite)
    exams = showcase_exams(seed, config)
    for cls, exam in exams:
        plot_ecg12(exam.signal, title=describe(cls, exam), path=out / f"synthetic_{cls}.png", dpi=90)
    return plot_ecg12_grid([e.signal for _, e in exams], [describe(c, e) for c, e in exams],
                           out / COMBINED_FIGURE, ncols=2, dpi=72)


def run(cfg: DictConfig) -> Path:
    """The job of the program (conf/synthesize.yaml): shards, or the figures with ``figure=true``."""
    out = Path(hydra.utils.to_absolute_path(str(cfg.out)))
    generator = SyntheticConfig.from_dict(OmegaConf.to_container(cfg.generator, resolve=True))
    if cfg.figure:
        path = write_figures(out, int(cfg.figure_seed), generator, overwrite=bool(cfg.overwrite))
        log.info("figures written to %s", out)
        return path
    materialize(out, cfg.n, cfg.seed, generator, shard_size=cfg.shard_size, workers=cfg.workers,
                progress=bool(cfg.progress), first_exam_id=cfg.first_exam_id, overwrite=bool(cfg.overwrite))
    log.info("%d synthetic exams (seed %d) written to %s", cfg.n, cfg.seed, out)
    return out


if __name__ == "__main__":
    run_hydra_program("ecglit.data.synthesize", "synthesize", run, register=register_schema)
