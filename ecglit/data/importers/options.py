"""Options shared by the importers (what the convert/predict configs set), and gain-override lookup."""

from __future__ import annotations

import fnmatch
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
        array_gain: units per mV of plain arrays (1 = values in mV, 1000 = microvolts).
        cpsc_fs: sampling rate of raw CPSC 2018 .mat files (they carry none).
        ptbxl_rate: read PTB-XL's 500 Hz (``filename_hr``) or 100 Hz (``filename_lr``) records.
        code_test_labels: CSV with columns 1dAVb..ST row-aligned with a CODE-test HDF5.
        tables: label tables used when a header has no diagnosis (CPSC REFERENCE, PTB-XL database).
    """

    gain_override: dict[str, float] = field(default_factory=dict)
    fs: float | None = None
    lead_names: list[str] | None = None
    array_gain: float = 1.0
    cpsc_fs: float = 500.0
    ptbxl_rate: int = 500
    code_test_labels: Path | None = None
    tables: LabelTables = field(default_factory=LabelTables)

    def __post_init__(self) -> None:
        self.gain_override = {str(k): float(v) for k, v in (self.gain_override or {}).items()}
        bad = {k: v for k, v in self.gain_override.items() if not v > 0}
        if bad:
            raise ConfigError(f"gain_override values must be positive (ADC units per mV), got {bad}")
        if self.ptbxl_rate not in (100, 500):
            raise ConfigError(f"ptbxl_rate must be 100 or 500, got {self.ptbxl_rate}")
        if self.fs is not None and not self.fs > 0:
            raise ConfigError(f"fs must be positive, got {self.fs}")
        if not self.array_gain > 0:
            raise ConfigError(f"array_gain must be positive, got {self.array_gain}")
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


def as_mapping(value: Mapping | Sequence | None, what: str) -> dict:
    """A Hydra dict option (None -> {}), with a clear error for other shapes."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"{what} must be a mapping like {{HR*:1000}}, got {value!r}")
