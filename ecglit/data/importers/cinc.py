"""PhysioNet/CinC Challenge 2020/2021 records: a WFDB-style ``.hea`` plus a MATLAB v4 ``.mat`` (``val``).

The headers are parsed here rather than by ``wfdb``: some CinC copies name the record with its
extension (``E00015.mat 12 500 5000 ...``), which wfdb's strict record-line grammar rejects. The samples
come from ``scipy.io.loadmat`` (``val``: int16, leads x samples); physical = (val - baseline) / gain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from ecglit.data.importers.header_fields import comment_fields, demographics, header_labels
from ecglit.data.importers.header_lines import HeaderLines, parse_header_lines, read_header_lines, usable_gains
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef
from ecglit.data.importers.wfdb_records import gain_text, unit_factor
from ecglit.errors import DataError


@dataclass
class CincHeader:
    record: str
    n_sig: int
    fs: float
    n_samples: int | None
    files: list[str]
    lines: HeaderLines
    baselines: list[int]
    units: list[str]
    names: list[str]
    comments: list[str]


def parse_header(text: str, path: Path, record: str | None = None) -> CincHeader:
    """Parse a CinC header (the rules of :mod:`~ecglit.data.importers.header_lines`)."""
    return cinc_header(parse_header_lines(text, path, record))


def cinc_header(lines: HeaderLines) -> CincHeader:
    """The CinC reading of checked header lines: tolerant of ``.mat`` in the record name and of
    ``gain(baseline)`` omitted (the baseline is then the ADC zero)."""
    sigs = lines.signals
    return CincHeader(re.sub(r"\.(mat|hea|dat)$", "", lines.record), lines.n_sig, lines.fs, lines.n_samples,
                      [s.file for s in sigs], lines,
                      [s.baseline if s.baseline is not None else (s.adc_zero or 0) for s in sigs],
                      [s.units or "mV" for s in sigs],
                      [s.description or f"signal{k}" for k, s in enumerate(sigs)], lines.comments)


def is_cinc_header(path: Path) -> bool:
    """A header whose signal lines point at ``.mat`` files."""
    try:
        lines = path.read_text(errors="replace").splitlines()
        body = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    except OSError:
        return False
    return len(body) > 1 and all(ln.split()[0].lower().endswith(".mat") for ln in body[1:] if ln.split())


def load_val(path: Path, record: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "signal file named in the header is missing", record=record)
    try:
        mat = scipy.io.loadmat(str(path), variable_names=["val"])
    except Exception as e:  # scipy raises ValueError/TypeError/MatReadError on damaged files
        raise DataError(path, f"cannot read MATLAB file ({type(e).__name__}: {e}); truncated or not a .mat?",
                        record=record) from None
    if "val" not in mat:
        raise DataError(path, "no 'val' variable (CinC records store the samples in 'val')", record=record)
    val = np.asarray(mat["val"])
    if val.dtype.kind not in "iuf":
        raise DataError(path, f"'val' holds {val.dtype} values, expected integer ADC samples", record=record)
    if val.ndim == 2 and val.shape[1] == 0:
        raise DataError(path, "'val' holds no samples", record=record)
    return val


def read_cinc(ref: RecordRef, options: ImportOptions) -> RawRecord:
    """Read a CinC record (``ref.path`` is its ``.hea``) into millivolts."""
    _, lines = read_header_lines(ref.path, ref.name)
    hdr = cinc_header(lines)
    if len(set(hdr.files)) != 1:
        raise DataError(ref.path, f"signals spread over several .mat files {sorted(set(hdr.files))}",
                        record=ref.name)
    val = load_val(ref.path.parent / hdr.files[0], ref.name)
    if val.ndim != 2 or val.shape[0] != hdr.n_sig:
        raise DataError(ref.path, f"'val' has shape {val.shape}; the header announces {hdr.n_sig} signals",
                        record=ref.name)
    if hdr.n_samples is not None and val.shape[1] != hdr.n_samples:
        raise DataError(ref.path, f"header says {hdr.n_samples} samples but {hdr.files[0]} holds "
                                  f"{val.shape[1]}", record=ref.name)
    at_limit = []
    if np.issubdtype(val.dtype, np.integer):  # samples on the int16 rails: the recorder saturated
        info = np.iinfo(val.dtype)
        at_limit = [hdr.names[k] for k in range(hdr.n_sig)
                    if val[k].max() >= info.max or val[k].min() <= info.min + 1]
    override = options.gain_for(ref)
    gains = usable_gains(hdr.lines, override, ref.path, ref.name)
    factors = [unit_factor(u) for u in hdr.units]
    to_mv = np.array([f or 1.0 for f in factors])
    signal = (val.T.astype(np.float64) - np.array(hdr.baselines)) / gains * to_mv
    fields = comment_fields(hdr.comments)
    labels, label_source, extra = header_labels(ref.name, fields, options, ref.path)
    notes = []
    if lines.record.lower().endswith(".mat"):
        notes.append("header names the record with its extension")
    meta = {"source_file": ref.relative_path, "gain_used": gain_text(gains), "label_source": label_source,
            "gain_overridden": override is not None, "header_gain": gain_text([g or 0.0 for g in lines.gains]),
            "notes": notes, "at_adc_limit": at_limit, **demographics(fields), **extra}
    return RawRecord(ref.name, signal, hdr.fs, hdr.names, labels, meta)
