"""Build the importers' options from a Hydra config and run a conversion (used by ecglit.data.convert)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ecglit.data.importers.convert import convert
from ecglit.data.importers.labels import LabelTables
from ecglit.data.importers.options import ImportOptions, as_mapping
from ecglit.data.importers.report import ConversionReport
from ecglit.errors import ConfigError

_OPTION_KEYS = ("gain_override", "fs", "lead_names", "array_gain", "cpsc_fs", "ptbxl_rate",
                "code_test_labels", "cpsc_reference", "ptbxl_database", "not_annotated")


def _plain(value: Any) -> Any:
    # only the importer keys are resolved: the rest (paths, hydra) needs a running Hydra app
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _paths(value: Any) -> list[Path]:
    if value is None:
        return []
    items = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    return [Path(str(v)) for v in items]


def options_from_config(cfg: DictConfig | dict) -> ImportOptions:
    """ImportOptions from the keys of conf/convert.yaml (also used by predict for record folders)."""
    c = {k: _plain(cfg.get(k)) for k in _OPTION_KEYS}
    tables = LabelTables.load(_paths(c.get("cpsc_reference")), _paths(c.get("ptbxl_database")),
                              as_mapping(c.get("not_annotated"), "not_annotated"))
    lead_names = c.get("lead_names")
    if lead_names is not None and (isinstance(lead_names, str) or not isinstance(lead_names, Sequence)):
        raise ConfigError(f"lead_names must be a list like [I,II,V1], got {lead_names!r}")
    return ImportOptions(
        gain_override=as_mapping(c.get("gain_override"), "gain_override"),
        fs=c.get("fs"), lead_names=lead_names, array_gain=c.get("array_gain"),
        cpsc_fs=500 if c.get("cpsc_fs") is None else c["cpsc_fs"],
        ptbxl_rate=500 if c.get("ptbxl_rate") is None else c["ptbxl_rate"],
        code_test_labels=c.get("code_test_labels"), tables=tables,
    )


def run_conversion(cfg: DictConfig) -> ConversionReport:
    return convert(
        cfg.input, cfg.output, options_from_config(cfg), long_records=cfg.long_records, strict=cfg.strict,
        shard_size=cfg.shard_size, sentinel=cfg.sentinel, overwrite=cfg.overwrite,
        first_exam_id=cfg.first_exam_id, progress=cfg.progress,
        merge_duplicates=bool(cfg.get("merge_duplicates", True)),
    )
