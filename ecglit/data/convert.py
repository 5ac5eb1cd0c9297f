"""Convert real-world ECG records into ecglit shards.

    python -m ecglit.data.convert input=PATH output=DIR [strict=true] [long_records=windows]
        ['gain_override={HR*:1000}'] [fs=500 lead_names=[I,II,...]]   (see conf/convert.yaml)
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ecglit.data.importers.cli import run_conversion
from ecglit.utils.cli import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../../conf", config_name="convert")
@exit_on_user_error("ecglit.data.convert")
def main(cfg: DictConfig) -> None:
    report = run_conversion(cfg)
    c = report.counts
    print(f"{c['converted'] + c['flagged']} record(s) converted into {report.n_exams} exam(s) in "
          f"{cfg.output} ({c['flagged']} flagged, {c['skipped']} skipped); see {cfg.output}/report.md")


if __name__ == "__main__":
    main()
