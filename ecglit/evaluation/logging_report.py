"""Send an evaluation's tables, figures and headline numbers to the configured Lightning loggers.

Every logger gets the Table 2 values as scalars (`eval/<predictor>/<metric>/<class>`); a WandbLogger also
gets each table (wandb.Table) and each PNG (wandb.Image). Offline or disabled W&B never touches the network.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from typing import Any

from ecglit.evaluation.pipeline import ReportResult

log = logging.getLogger(__name__)
PREFIX = "eval"


def report_scalars(result: ReportResult) -> dict[str, float]:
    """Flat {key: value} of Table 2 (defined values only) plus the selected model's micro-AP."""
    table = result.table2
    scalars = {
        f"{PREFIX}/{predictor}/{metric}/{class_name}": float(value)
        for predictor, class_name, metric, value in zip(table["predictor"], table["class"], table["metric"],
                                                         table["value"], strict=True)
        if not math.isnan(value)
    }
    if result.selected in result.micro_ap:
        scalars[f"{PREFIX}/selected_micro_ap"] = float(result.micro_ap[result.selected])
    return scalars


def _is_wandb(logger: Any) -> bool:
    return type(logger).__name__ == "WandbLogger"


def wandb_payload(result: ReportResult) -> dict[str, Any]:
    """Tables (wandb.Table) and figures (wandb.Image) of `result`, keyed under `eval/`."""
    import wandb

    tables = {"table2": result.table2, "agreement": result.agreement, "confusion_matrices": result.confusion}
    if result.seeds is not None:
        tables["seeds"] = result.seeds
    payload: dict[str, Any] = {f"{PREFIX}/{name}": wandb.Table(dataframe=frame) for name, frame in tables.items()}
    for name, path in result.files.items():
        if path.suffix == ".png":
            payload[f"{PREFIX}/figures/{name}"] = wandb.Image(str(path), caption=name)
    return payload


def log_report(loggers: Sequence[Any], result: ReportResult, hparams: dict | None = None) -> None:
    """Log `result` to each logger (Lightning Logger instances).

    W&B gets scalars, tables and figures in one `experiment.log` call, i.e. one step of the run.
    """
    scalars = report_scalars(result)
    for logger in loggers:
        if hparams is not None:
            logger.log_hyperparams(hparams)
        if _is_wandb(logger):
            logger.experiment.log({**scalars, **wandb_payload(result)})
        else:
            logger.log_metrics(scalars)
        logger.save()
    if loggers:
        log.info("evaluation logged to %s", ", ".join(type(lg).__name__ for lg in loggers))


def finish_wandb(failed: bool) -> None:
    """Close the W&B run (one run per job, so Hydra multiruns do not share one)."""
    wandb = sys.modules.get("wandb")  # not imported: no run to close (and importing it costs seconds)
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)
