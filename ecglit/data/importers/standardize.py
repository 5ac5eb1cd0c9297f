"""One RawRecord -> CODE exams: 12 leads in CODE order, 400 Hz, 4096 samples, float32 in 1e-4 V."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecglit.constants import N_SAMPLES, SAMPLE_RATE, UNITS_PER_MV
from ecglit.data.importers.leads import canonical_lead, to_code_leads
from ecglit.data.importers.plausibility import Plausibility, check_record
from ecglit.data.importers.record import RawRecord
from ecglit.data.importers.resample import fit_length, resample_to
from ecglit.errors import DataError

# An ECG is recorded at 100 Hz (PTB-XL's low rate) to a few kHz; a rate outside this range is a header or
# configuration error, and resampling it to 400 Hz would give nothing usable.
RATE_RANGE_HZ = (50.0, 20_000.0)
# A record shorter than this holds no heartbeat at 60 bpm: padding it to 10.24 s would make an empty exam.
MIN_DURATION_S = 1.0


@dataclass
class StandardRecord:
    """The exams made from one record, with what was done to it."""

    raw: RawRecord  # signal dropped after conversion (kept: name, fs, leads, labels, meta)
    exams: list[np.ndarray]  # each (4096, 12) float32, 1e-4 V
    plausibility: Plausibility
    notes: list[str] = field(default_factory=list)
    n_leads_original: int = 0
    duration_s: float = 0.0


def check_finite(raw: RawRecord, path: object = None) -> None:
    """DataError naming the leads that hold NaN/inf samples, or an empty signal."""
    x = raw.signal
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(path, f"empty or malformed signal, shape {x.shape}", record=raw.name)
    bad = ~np.isfinite(x)
    if bad.any():
        per_lead = bad.sum(axis=0)
        leads = [f"{raw.lead_names[j]} ({int(per_lead[j])})" for j in np.flatnonzero(per_lead)]
        raise DataError(path, f"{int(bad.sum())} NaN/inf sample(s) in lead(s) {', '.join(leads)}",
                        record=raw.name)


# Exams are stored as float32 in 1e-4 V; a tenth of float32's range leaves room for resampling overshoot.
MAX_STORABLE_MV = float(np.finfo(np.float32).max) / UNITS_PER_MV / 10


def check_storable(signal: np.ndarray, record: str, path: object = None) -> None:
    """DataError for amplitudes that would overflow float32 (inf) once stored in 1e-4 V."""
    peak = float(np.abs(signal).max()) if signal.size else 0.0
    if peak > MAX_STORABLE_MV:
        raise DataError(path, f"amplitude {peak:.3g} mV cannot be stored as float32 in 1e-4 V (at most "
                              f"{MAX_STORABLE_MV:.3g} mV); check the gain and units", record=record)


def check_timing(raw: RawRecord, path: object = None) -> None:
    """DataError for a sampling rate outside RATE_RANGE_HZ or a record shorter than MIN_DURATION_S."""
    lo, hi = RATE_RANGE_HZ
    if not (np.isfinite(raw.fs) and lo <= raw.fs <= hi):
        raise DataError(path, f"sampling rate {raw.fs:g} Hz is outside {lo:g}-{hi:g} Hz (an ECG's rates); "
                              "check the header or the fs option", record=raw.name)
    if raw.duration_s < MIN_DURATION_S:
        raise DataError(path, f"record is {raw.duration_s:.3g} s long ({raw.n_samples} samples at {raw.fs:g} Hz); "
                              f"at least {MIN_DURATION_S:g} s is needed for an exam", record=raw.name)


def standardize(raw: RawRecord, long_records: str = "crop", path: object = None) -> StandardRecord:
    """Map leads, check plausibility, resample to 400 Hz, fit to 4096 samples, scale to 1e-4 V.

    The signal of ``raw`` is released afterwards (set to an empty array) to keep memory flat when
    many records stream through.
    """
    path = path if path is not None else raw.meta.get("path", raw.meta.get("source_file"))
    check_finite(raw, path)
    check_timing(raw, path)
    signal, derived, dropped = to_code_leads(raw.signal, raw.lead_names, path=path, record=raw.name)
    check_storable(signal, raw.name, path)
    at_limit = [canonical_lead(n) or n for n in raw.meta.get("at_adc_limit", [])]
    plaus = check_record(signal, raw.fs, at_adc_limit=at_limit)
    notes = list(raw.meta.get("notes", []))
    if derived:
        notes.append(f"derived {', '.join(derived)} from DI and DII")
    if dropped:
        notes.append(f"dropped lead(s) {', '.join(dropped)}")
    resampled = resample_to(signal, raw.fs)
    n = resampled.shape[0]
    exams = [(w * UNITS_PER_MV).astype(np.float32) for w in fit_length(resampled, N_SAMPLES, long_records)]
    if n > N_SAMPLES:
        what = "centre crop" if long_records == "crop" else f"{len(exams)} window(s)"
        notes.append(f"{raw.duration_s:.1f} s record: {what} of {N_SAMPLES} samples at {SAMPLE_RATE} Hz")
    result = StandardRecord(raw, exams, plaus, notes, len(raw.lead_names), raw.duration_s)
    raw.signal = np.empty((0, len(raw.lead_names)))
    return result
