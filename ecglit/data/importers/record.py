"""The record type every importer returns, and the reference that names one record inside an input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecglit.constants import CLASSES

# Per class: 1 present, 0 absent, None not annotated by the source (an empty cell in exams.csv).
Labels = dict[str, int | None]


def unannotated() -> Labels:
    return {c: None for c in CLASSES}


@dataclass(frozen=True)
class RecordRef:
    """Where one record lives.

    Args:
        path: the file holding the record's signal (``.hea`` for WFDB/CinC, ``.mat``, ``.hdf5``, ...).
        format: the importer that reads it (a key of ``ecglit.data.importers.formats.READERS``).
        name: the record's name (file stem, PTB-XL ``ecg_id`` file name, ``<file>_<row>`` in an HDF5).
        index: row of a multi-record container (an HDF5 file, a PTB-XL database), else None.
        root: the folder the search started from (relative paths and per-folder gain overrides use it).
        table: the table the record was listed in (PTB-XL's ptbxl_database.csv), if any.
        error: why the file could not even be identified as a record (reported when it is loaded).
    """

    path: Path
    format: str
    name: str
    index: int | None = None
    root: Path | None = None
    table: Path | None = None
    error: str | None = None

    @property
    def relative_path(self) -> str:
        """The signal file relative to the search root (posix), or its plain path without a root."""
        if self.root is not None:
            try:
                return self.path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return self.path.as_posix()


@dataclass
class RawRecord:
    """One recording as read from its source, before any resampling or lead mapping.

    Args:
        name: record name.
        signal: (n_samples, n_leads) float64 in millivolts.
        fs: sampling rate in Hz.
        lead_names: the source's lead names, in column order (any case or alias).
        labels: the six classes -> 1 / 0 / None (not annotated).
        meta: provenance and demographics: ``source_file``, ``gain_used``, ``label_source``, optional
            ``age``, ``is_male``, ``patient_key`` (records with the same key share a patient_id).
    """

    name: str
    signal: np.ndarray
    fs: float
    lead_names: list[str]
    labels: Labels = field(default_factory=unannotated)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / float(self.fs)
