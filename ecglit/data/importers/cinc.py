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
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef
from ecglit.data.importers.wfdb_records import gain_text, unit_factor
from ecglit.errors import DataError

# gain[(baseline)][/units], e.g. 1000.0(0)/mV, 4880/mV, 200
_GAIN = re.compile(r"^(?P<gain>[-+]?[\d.]+(?:[eE][-+]?\d+)?)(?:\((?P<baseline>-?\d+)\))?"
                   r"(?:/(?P<units>\S+))?$")


@dataclass
class CincHeader:
    record: str
    n_sig: int
    fs: float
    n_samples: int
    files: list[str]
    gains: list[float]
    baselines: list[int]
    units: list[str]
    names: list[str]
    comments: list[str]


def parse_header(text: str, path: Path) -> CincHeader:
    """Parse a CinC header; tolerant of ``.mat`` in the record name and of ``gain(baseline)`` omitted."""
    lines = [ln.strip() for ln in text.splitlines()]
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if not body:
        raise DataError(path, "empty header")
    head = body[0].split()
    try:
        record = re.sub(r"\.(mat|hea|dat)$", "", head[0])
        n_sig, fs, n_samples = int(head[1]), float(head[2].split("/")[0]), int(head[3])
    except (IndexError, ValueError):
        raise DataError(path, f"bad record line {body[0]!r} (expected 'name n_signals fs n_samples')"
                        ) from None
    if len(body) - 1 < n_sig:
        raise DataError(path, f"record line announces {n_sig} signals but {len(body) - 1} signal lines "
                              "follow")
    files, gains, baselines, units, names = [], [], [], [], []
    for k, line in enumerate(body[1:1 + n_sig]):
        tok = line.split()
        m = _GAIN.match(tok[2]) if len(tok) > 2 else None
        if m is None:
            raise DataError(path, f"signal line {k + 1} has no readable gain: {line!r}")
        adc_zero = int(tok[4]) if len(tok) > 4 and re.fullmatch(r"-?\d+", tok[4]) else 0
        files.append(tok[0])
        gains.append(float(m.group("gain")))
        baselines.append(int(m.group("baseline")) if m.group("baseline") is not None else adc_zero)
        units.append(m.group("units") or "mV")
        names.append(" ".join(tok[8:]) if len(tok) > 8 else f"signal{k}")
    return CincHeader(record, n_sig, fs, n_samples, files, gains, baselines, units, names, comments)


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
    return np.asarray(mat["val"])


def read_cinc(ref: RecordRef, options: ImportOptions) -> RawRecord:
    """Read a CinC record (``ref.path`` is its ``.hea``) into millivolts."""
    try:
        text = ref.path.read_text(errors="replace")
    except OSError as e:
        raise DataError(ref.path, f"cannot read header ({e})", record=ref.name) from None
    hdr = parse_header(text, ref.path)
    if len(set(hdr.files)) != 1:
        raise DataError(ref.path, f"signals spread over several .mat files {sorted(set(hdr.files))}",
                        record=ref.name)
    val = load_val(ref.path.parent / hdr.files[0], ref.name)
    if val.ndim != 2 or val.shape[0] != hdr.n_sig:
        raise DataError(ref.path, f"'val' has shape {val.shape}; the header announces {hdr.n_sig} signals",
                        record=ref.name)
    if val.shape[1] != hdr.n_samples:
        raise DataError(ref.path, f"header says {hdr.n_samples} samples but {hdr.files[0]} holds "
                                  f"{val.shape[1]}", record=ref.name)
    at_limit = []
    if np.issubdtype(val.dtype, np.integer):  # samples on the int16 rails: the recorder saturated
        info = np.iinfo(val.dtype)
        at_limit = [hdr.names[k] for k in range(hdr.n_sig)
                    if val[k].max() >= info.max or val[k].min() <= info.min + 1]
    override = options.gain_for(ref)
    gains = np.array([override or g for g in hdr.gains], dtype=np.float64)
    if np.any(gains == 0):
        raise DataError(ref.path, "header gain is 0 (uncalibrated); set gain_override", record=ref.name)
    factors = [unit_factor(u) for u in hdr.units]
    to_mv = np.array([f or 1.0 for f in factors])
    signal = (val.T.astype(np.float64) - np.array(hdr.baselines)) / gains * to_mv
    fields = comment_fields(hdr.comments)
    labels, label_source, extra = header_labels(ref.name, fields, options, ref.path)
    notes = []
    if text.split()[0].lower().endswith(".mat"):
        notes.append("header names the record with its extension")
    meta = {"source_file": ref.relative_path, "gain_used": gain_text(gains), "label_source": label_source,
            "gain_overridden": override is not None, "header_gain": gain_text(hdr.gains), "notes": notes,
            "at_adc_limit": at_limit,
            **demographics(fields), **extra}
    return RawRecord(ref.name, signal, hdr.fs, hdr.names, labels, meta)
