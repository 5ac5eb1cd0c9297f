"""Plain arrays: ``.npy`` (2-D) or ``.csv`` (numbers, optionally a header row of lead names).

They carry no rate or units, so the config states them: ``fs`` (Hz), ``lead_names`` (default: the CSV
header, else the 12 CODE leads in order) and ``array_gain`` (units per mV; unset = millivolts). Integer
arrays hold ADC counts or microvolts, never millivolts: they need ``array_gain`` (or a ``gain_override``).
Either orientation is accepted: (samples, leads) or (leads, samples), told apart by the number of leads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecglit.constants import LEADS
from ecglit.data.importers.leads import canonical_lead
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef
from ecglit.errors import DataError


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def csv_header(path: Path) -> list[str] | None:
    """The header tokens of a CSV, [] when the first row is numeric, None when unreadable."""
    try:
        with open(path, errors="replace") as f:
            first = f.readline()
    except OSError:
        return None
    tokens = [t.strip().strip('"') for t in first.replace(";", ",").split(",")]
    return [] if all(_is_number(t) for t in tokens if t) else tokens


def csv_is_signal(path: Path) -> bool:
    """A CSV that looks like a signal: numeric first row, or a header made only of lead names."""
    header = csv_header(path)
    return header is not None and (header == [] or all(canonical_lead(t) or t.lower() in ("vx", "vy", "vz")
                                                       for t in header))


def read_array(ref: RecordRef, options: ImportOptions) -> RawRecord:
    path = ref.path
    header: list[str] = []
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            header = csv_header(path) or []
            df = pd.read_csv(path, header=0 if header else None, sep=None, engine="python")
            data = df.to_numpy()
    except Exception as e:
        raise DataError(path, f"cannot read array ({type(e).__name__}: {e})", record=ref.name) from None
    if data.ndim != 2:
        raise DataError(path, f"array has shape {data.shape}; expected 2-D (samples, leads)", record=ref.name)
    if data.dtype.kind == "O":  # a CSV column pandas could not read as numbers
        try:
            data = data.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(path, "array holds non-numeric values", record=ref.name) from None
    if data.dtype.kind not in "iuf":
        raise DataError(path, f"array holds {data.dtype} values, expected real numbers", record=ref.name)
    if options.fs is None:
        raise DataError(path, "plain arrays carry no sampling rate: set fs=<Hz> (and lead_names, array_gain)",
                        record=ref.name)
    names = list(options.lead_names or header or (LEADS if len(LEADS) in data.shape else []))
    if not names:
        raise DataError(path, f"array has shape {data.shape}; set lead_names to name its leads",
                        record=ref.name)
    if data.shape[1] != len(names):
        if data.shape[0] != len(names):
            raise DataError(path, f"array has shape {data.shape} but {len(names)} lead names are given",
                            record=ref.name)
        data = data.T
    override = options.gain_for(ref)
    gain = override or options.array_gain
    if gain is None:
        if data.dtype.kind in "iu":
            raise DataError(path, f"array holds integers ({data.dtype}: ADC counts or microvolts?), not "
                                  "millivolts; set array_gain (units per mV, e.g. 1000 for microvolts)",
                            record=ref.name)
        gain = 1.0
    meta = {"source_file": ref.relative_path, "gain_used": gain, "label_source": "none",
            "gain_overridden": override is not None, "header_gain": options.array_gain, "notes": []}
    return RawRecord(ref.name, data.astype(np.float64) / gain, float(options.fs), names, meta=meta)
