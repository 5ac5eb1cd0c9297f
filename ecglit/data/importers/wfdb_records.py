"""WFDB records (``.hea`` + ``.dat`` and every other signal format the ``wfdb`` package reads).

``wfdb`` reads the digital samples; this module checks the signal files' sizes against the header
first (wfdb answers a truncated file or a wrong sample count with a bare reshape error), then applies
baseline and gain itself so that a per-record gain override can replace the header's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import wfdb
from wfdb.io import _signal

from ecglit.data.importers.header_fields import comment_fields, demographics, header_labels
from ecglit.data.importers.header_lines import read_header_lines, usable_gains
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef
from ecglit.errors import DataError

# Physical units -> factor to millivolts.
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}


def unit_factor(unit: str | None) -> float | None:
    """Millivolts per physical unit, or None when the unit is unknown (treated as mV, with a note)."""
    return UNIT_TO_MV.get((unit or "").strip().lower())


def check_signal_files(header: wfdb.Record, base: Path, record: str) -> None:
    """Raise when a signal file is shorter or longer than the header's sample count says."""
    per_file: dict[str, list[int]] = {}
    for k, fname in enumerate(header.file_name or []):
        per_file.setdefault(fname, []).append(k)
    for fname, sigs in per_file.items():
        path = base.parent / fname
        if not path.is_file():
            raise DataError(path, "signal file named in the header is missing", record=record)
        fmt = header.fmt[sigs[0]]
        bytes_per = _signal.BYTES_PER_SAMPLE.get(fmt, 0)
        if not bytes_per or header.sig_len is None:
            continue  # compressed (FLAC) formats: wfdb checks these itself
        frame = sum(bytes_per * (header.samps_per_frame[k] or 1) for k in sigs)
        offset = (header.byte_offset[sigs[0]] or 0) if header.byte_offset else 0
        expected = offset + header.sig_len * frame
        size = path.stat().st_size
        if size < math.floor(expected) or size > math.ceil(expected) + 1:
            held = (size - offset) / frame if frame else 0
            raise DataError(path, f"header says {header.sig_len} samples x {len(sigs)} signal(s) in format "
                                  f"{fmt} ({int(expected)} bytes) but the file has {size} bytes (~{held:.0f} "
                                  "samples): truncated file or wrong sample count in the header",
                            record=record)


def read_wfdb(ref: RecordRef, options: ImportOptions) -> RawRecord:
    """Read a WFDB record (``ref.path`` is its ``.hea``) into millivolts."""
    base = ref.path.with_suffix("")
    _, lines = read_header_lines(ref.path, ref.name)  # wfdb guesses unreadable rates and gains: check first
    try:
        header = wfdb.rdheader(str(base))
    except Exception as e:  # wfdb raises bare ValueError/HeaderSyntaxError/IndexError on bad headers
        raise DataError(ref.path, f"cannot parse WFDB header ({type(e).__name__}: {e})",
                        record=ref.name) from None
    if getattr(header, "n_seg", None):
        raise DataError(ref.path, "multi-segment WFDB records are not supported", record=ref.name)
    if not header.n_sig:
        raise DataError(ref.path, "header lists no signals", record=ref.name)
    check_signal_files(header, base, ref.name)
    try:
        rec = wfdb.rdrecord(str(base), physical=False, return_res=64)
    except Exception as e:
        raise DataError(ref.path, f"wfdb cannot read the samples ({type(e).__name__}: {e})",
                        record=ref.name) from None
    digital = np.asarray(rec.d_signal, dtype=np.float64)
    if digital.shape[0] != rec.sig_len:
        raise DataError(ref.path, f"header says {rec.sig_len} samples, read {digital.shape[0]}",
                        record=ref.name)
    at_limit, invalid_leads = [], []
    for k, fmt in enumerate(rec.fmt):
        invalid = _signal.INVALID_SAMPLE_VALUE.get(fmt)
        n_invalid = int(np.count_nonzero(rec.d_signal[:, k] == invalid)) if invalid is not None else 0
        if n_invalid:
            invalid_leads.append(f"{rec.sig_name[k]} ({n_invalid})")
        lo, hi = _signal.SAMPLE_VALUE_RANGE.get(fmt, (None, None))
        if hi is not None and (digital[:, k].max() >= hi or digital[:, k].min() <= lo + 1):
            at_limit.append(rec.sig_name[k])
    if invalid_leads:  # WFDB's "no sample here" code: the record has gaps, like NaN samples
        raise DataError(ref.path, f"missing (invalid-code) samples in lead(s) {', '.join(invalid_leads)}",
                        record=ref.name)
    override = options.gain_for(ref)
    gains = usable_gains(lines, override, ref.path, ref.name)  # wfdb reads a gain of 0 as 200
    baseline = np.array(rec.baseline, dtype=np.float64)
    factors = [unit_factor(u) for u in rec.units]
    signal = (digital - baseline) / gains * np.array([f or 1.0 for f in factors])
    fields = comment_fields(rec.comments)
    labels, label_source, extra = header_labels(ref.name, fields, options, ref.path)
    notes = []
    unknown_units = sorted({u for u, f in zip(rec.units, factors, strict=True) if f is None})
    if unknown_units:
        notes.append(f"unknown unit(s) {unknown_units} read as mV")
    meta = {"source_file": ref.relative_path, "gain_used": gain_text(gains), "label_source": label_source,
            "gain_overridden": override is not None, "header_gain": gain_text([g or 0.0 for g in lines.gains]), "notes": notes,
            "at_adc_limit": at_limit,
            **demographics(fields), **extra}
    return RawRecord(ref.name, signal, lines.fs, list(rec.sig_name), labels, meta)


def gain_text(gains) -> float | str:
    """One gain when all leads share it (the usual case), else the per-lead list joined by ';'."""
    unique = sorted({float(g) for g in gains})
    return unique[0] if len(unique) == 1 else ";".join(f"{float(g):g}" for g in gains)
