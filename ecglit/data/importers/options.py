"""Options shared by the importers (what the convert/predict configs set), and gain-override lookup."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ecglit.data.importers.labels import LabelTables
from ecglit.data.importers.record import RecordRef
from ecglit.errors import ConfigError


@dataclass
class ImportOptions:
    """How to read records.

    Args:
        gain_override: glob -> ADC units per mV, replacing the header's gain (or the array gain). A glob
            matches the record name (``HR*``) or its path relative to the input folder
            (``sebgood_physionet2020/*/E*``); the first matching entry wins.
        fs: sampling rate of plain arrays (.npy/.csv), Hz.
        lead_names: lead order of plain arrays (default: the CSV header, or the 12 CODE leads).
        array_gain: units per mV of plain arrays (1 = values in mV, 1000 = microvolts); None: floating-point
            arrays are in mV and integer arrays are refused (ADC counts need their gain).
        cpsc_fs: sampling rate of raw CPSC 2018 .mat files (they carry none).
        ptbxl_rate: read PTB-XL's 500 Hz (``filename_hr``) or 100 Hz (``filename_lr``) records.
        code_test_labels: CSV with columns 1dAVb..ST row-aligned with a CODE-test HDF5.
        tables: label tables used when a header has no diagnosis (CPSC REFERENCE, PTB-XL database).
    """

    gain_override: dict[str, float] = field(default_factory=dict)
    fs: float | None = None
    lead_names: list[str] | None = None
    array_gain: float | None = None
    cpsc_fs: float = 500.0
    ptbxl_rate: int = 500
    code_test_labels: Path | None = None
    tables: LabelTables = field(default_factory=LabelTables)

    def __post_init__(self) -> None:
        self.gain_override = {str(k): _positive(f"gain_override[{k!r}]", v, "ADC units per mV")
                              for k, v in (self.gain_override or {}).items()}
        if self.ptbxl_rate not in (100, 500, "100", "500"):
            raise ConfigError(f"ptbxl_rate must be 100 or 500, got {self.ptbxl_rate!r}")
        self.ptbxl_rate = int(self.ptbxl_rate)
        self.fs = None if self.fs is None else _positive("fs", self.fs, "Hz")
        self.array_gain = None if self.array_gain is None else _positive("array_gain", self.array_gain,
                                                                         "units per mV")
        self.cpsc_fs = _positive("cpsc_fs", self.cpsc_fs, "Hz")
        if self.code_test_labels is not None:
            self.code_test_labels = Path(self.code_test_labels)

    def gain_for(self, ref: RecordRef) -> float | None:
        """The overriding gain for a record, or None to keep its own."""
        rel = ref.relative_path
        candidates = (ref.name, rel, rel.rsplit(".", 1)[0])
        for pattern, gain in self.gain_override.items():
            if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
                return gain
        return None


def _positive(name: str, value: object, unit: str) -> float:
    """``value`` as a positive finite float; a ConfigError naming the option otherwise."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{name} must be a positive number ({unit}), got {value!r}")
    return number


def as_mapping(value: Mapping | Sequence | None, what: str) -> dict:
    """A Hydra dict option (None -> {}), with a clear error for other shapes."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"{what} must be a mapping like {{HR*:1000}}, got {value!r}")
