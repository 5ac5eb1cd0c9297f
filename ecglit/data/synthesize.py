"""Generate the synthetic data set (CODE-15% layout), or draw example figures.

    python -m ecglit.data.synthesize n=20000 seed=0 out=data/synthetic
    python -m ecglit.data.synthesize n=2000 out=data/pn generator.label_definitions=physionet workers=2
    python -m ecglit.data.synthesize figure=true out=docs/figures
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ecglit.data.synthetic import SyntheticConfig, materialize
from ecglit.utils.cli import exit_on_user_error

log = logging.getLogger(__name__)
COMBINED_FIGURE = "synthetic_examples.png"


def write_figures(out: Path, seed: int, config: SyntheticConfig) -> Path:
    """One 12-lead PNG per class (+ normal) and the combined README figure; returns the latter."""
    from ecglit.data.synthetic.examples import describe, showcase_exams
    from ecglit.plotting.ecg12 import plot_ecg12, plot_ecg12_grid  # matplotlib only when drawing

    exams = showcase_exams(seed, config)
    for cls, exam in exams:
        plot_ecg12(exam.signal, title=describe(cls, exam), path=out / f"synthetic_{cls}.png", dpi=90)
    return plot_ecg12_grid([e.signal for _, e in exams], [describe(c, e) for c, e in exams],
                           out / COMBINED_FIGURE, ncols=2, dpi=72)


def run(cfg: DictConfig) -> Path:
    out = Path(hydra.utils.to_absolute_path(str(cfg.out)))
    generator = SyntheticConfig.from_dict(OmegaConf.to_container(cfg.generator, resolve=True))
    if cfg.figure:
        path = write_figures(out, int(cfg.figure_seed), generator)
        log.info("figures written to %s", out)
        return path
    materialize(out, int(cfg.n), int(cfg.seed), generator, shard_size=int(cfg.shard_size),
                workers=None if cfg.workers is None else int(cfg.workers), progress=bool(cfg.progress),
                first_exam_id=int(cfg.first_exam_id), overwrite=bool(cfg.overwrite))
    log.info("%d synthetic exams (seed %d) written to %s", cfg.n, cfg.seed, out)
    return out


@hydra.main(version_base="1.3", config_path="../../conf", config_name="synthesize")
@exit_on_user_error("ecglit.data.synthesize")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
